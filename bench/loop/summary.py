"""The workers' chunk answers turned into medians and ratios: time, memory, DDP throughput."""

from __future__ import annotations

import statistics
from typing import Any

from bench.loop.jobs import BATCH, Job


def _per_step_ms(seconds: list[float], chunks: tuple[int, ...]) -> list[float]:
    return [1e3 * s / n for s, n in zip(seconds, chunks)]


def memory_summary(a: dict[str, Any], b: dict[str, Any], device: str) -> dict[str, Any]:
    """Peak-memory figures of two workers (MiB) and the ratio the target is judged on.

    GPU: ``torch.cuda.max_memory_allocated`` over the timed chunks. CPU: tensor state plus the
    profiled transient peak of one cycle (the allocator's view); RSS figures for context.
    """
    mib = 1 / 2**20
    out: dict[str, Any] = {}
    if device == "cuda":
        out["peak"] = [a["cuda_peak_bytes"] * mib, b["cuda_peak_bytes"] * mib]
    else:
        out["transient"] = [m["tensor_transient_bytes"] * mib for m in (a, b)]
        out["state"] = [m["tensor_state_bytes"] * mib for m in (a, b)]
        out["peak"] = [s + t for s, t in zip(out["state"], out["transient"])]
    if a.get("rss_peak_kib") and a.get("rss_peak_reset"):
        out["rss_peak"] = [m["rss_peak_kib"] / 1024 for m in (a, b)]
        out["rss_growth"] = [(m["rss_peak_kib"] - m["rss_start_kib"]) / 1024 for m in (a, b)]
    out["ratio"] = out["peak"][0] / out["peak"][1]
    return out


def _compare(a: list[float], b: list[float], chunks: tuple[int, ...]) -> dict[str, Any]:
    """Medians of per-step ms of ``a`` and ``b`` and of their paired ratios and differences."""
    a_ms, b_ms = _per_step_ms(a, chunks), _per_step_ms(b, chunks)
    ratios = [x / y if y else float("nan") for x, y in zip(a_ms, b_ms)]
    return {
        "a_ms": statistics.median(a_ms),
        "b_ms": statistics.median(b_ms),
        "ratio": statistics.median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
        "diff_ms": statistics.median([x - y for x, y in zip(a_ms, b_ms)]),
    }


def pair_row(name: str, job: Job, a: dict, b: dict, n_critic: int) -> dict[str, Any]:
    """Timing and memory of configuration ``a`` against ``b`` (paired chunk by chunk).

    Top level: wall-clock; ``cpu``: process CPU time; ``inner``: the runners' inner parts
    (gan_zoo: ``training_step``; reference: fetching batches), wall and CPU.
    """
    row: dict[str, Any] = {"name": name, "n_critic": n_critic, "width": job.width}
    row.update(_compare(a["seconds"], b["seconds"], job.chunks))
    row["cpu"] = _compare(a["cpu_seconds"], b["cpu_seconds"], job.chunks)
    row["inner"] = _compare(a["inner"], b["inner"], job.chunks)
    row["inner_cpu"] = _compare(a["inner_cpu"], b["inner_cpu"], job.chunks)
    row.update(steps=sum(job.chunks), pairs=len(job.chunks), threads=a["threads"] + b["threads"])
    row["faults_per_step"] = [sum(x["faults"]) / sum(job.chunks) for x in (a, b)]
    row["images_per_s"] = [BATCH * n_critic * 1e3 / ms for ms in (row["a_ms"], row["b_ms"])]
    row["memory"] = memory_summary(a["memory"], b["memory"], job.device)
    return row


def ddp_row(variant: str, job: Job, one: dict, two: dict, n_critic: int, batch: int) -> dict:
    """Throughput of 1 process against 2 (each rank: ``batch`` per critic step)."""
    rows, per_step = {}, {}
    for world, result in ((1, one), (2, two)):
        per_step[world] = [s / n for s, n in zip(result["seconds"], job.chunks)]
        steps_per_s = 1 / statistics.median(per_step[world])
        rows[world] = {
            "threads": result["threads"],
            "steps_per_s": steps_per_s,
            "images_per_s": steps_per_s * batch * n_critic * world,
            "cpu_ms": statistics.median(_per_step_ms(result["cpu_seconds"], job.chunks)),
        }
    speedups = [2 * x / y for x, y in zip(per_step[1], per_step[2])]  # images/s, paired
    row = {"variant": variant, "n_critic": n_critic, "steps": sum(job.chunks), "runs": rows}
    row.update(speedup=statistics.median(speedups), speedup_range=[min(speedups), max(speedups)])
    return row


def fixed_cost_estimate(row: dict[str, Any], tiny: dict[str, Any] | None, basis: str) -> float:
    """The ratio the width-8 probe predicts: (reference + gan_zoo's extra ms) / reference.

    gan_zoo's extra work (hooks, logging, wrappers) does not depend on the nets' width, and
    at width 8 it is not buried in compute noise.
    """
    if tiny is None:
        return float("nan")
    ref_ms = row["cpu"]["b_ms"] if basis == "cpu" else row["b_ms"]
    extra = tiny["cpu"]["diff_ms"] if basis == "cpu" else tiny["diff_ms"]
    return (ref_ms + extra) / ref_ms


def breakdown(row: dict[str, Any], basis: str) -> dict[str, float]:
    """gan_zoo's extra ms per generator step, split at ``training_step`` (``basis``: cpu|wall).

    outside = (gan_zoo total - its training_step) - the reference's batch fetching;
    inside = gan_zoo's training_step - (reference total - its batch fetching).
    """
    total, inner = (row["cpu"], row["inner_cpu"]) if basis == "cpu" else (row, row["inner"])
    return {
        "extra": total["diff_ms"],
        "outside": (total["a_ms"] - inner["a_ms"]) - inner["b_ms"],
        "inside": inner["a_ms"] - (total["b_ms"] - inner["b_ms"]),
    }
