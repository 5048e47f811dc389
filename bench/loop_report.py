"""The markdown report of ``python -m bench.bench_loop``: its tables, header and RESULTS.md block.

Kept apart from the benchmark itself so that the measuring code (worker processes, interleaved
timing) reads on its own; the results' shape is ``bench_loop.benchmarks``' return value.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
from pathlib import Path
from typing import Any

import lightning
import torch

from bench.reference_loop import VARIANTS

TARGET_TIME, TARGET_MEMORY, TARGET_GP = 1.05, 1.01, 3.0
SECTION = "## Training loop"


def row(*cells: object) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


def ratio(c: dict[str, Any], scale: float = 1.0) -> str:
    """``scale`` × the paired ratios: median [min–max]."""
    return f"{scale * c['ratio']:.3f}× [{scale * c['lo']:.3f}–{scale * c['hi']:.3f}]"


def verdict(value: float, target: float) -> str:
    return "yes" if value <= target else "**no**"


def report(results: dict[str, Any], args: argparse.Namespace, head: str) -> str:
    """The markdown block of this run: one table per comparison."""
    memory = "CPU tensor bytes" if args.device == "cpu" else "`torch.cuda.max_memory_allocated`"
    lines = [
        head,
        f"\n#### gan_zoo vs the raw-PyTorch reference, per generator step ({args.device})\n",
        f"DCGAN 28 px nets (width {args.width}, latent 64), batch 64 per critic step, paper "
        "optimizers; a generator step is `n_critic` critic steps and one generator step. Ratios: "
        f"gan_zoo / reference, median [min–max] over {args.pairs} interleaved pairs of chunks of "
        f"{args.chunk} generator step(s). Peak memory: {memory}; peak RSS for context. Targets: "
        f"time ≤ {TARGET_TIME}×, peak memory ≤ {TARGET_MEMORY}×.\n",
        row("variant", "n_critic", "gan_zoo ms", "reference ms", "time ratio (wall)",
            "time ratio (CPU time)", "peak MiB gan_zoo / reference (+)", "memory ratio",
            "RSS ratio", f"time ≤ {TARGET_TIME}×?", f"memory ≤ {TARGET_MEMORY}×?"),
        "|---" * 11 + "|",
    ]  # fmt: skip
    for r in results["variants"]:
        (ours, ref), wall, cpu = r["memory"], r["wall"], r["cpu"]
        mem = ours["peak_mib"] / ref["peak_mib"]
        ok = f"wall {verdict(wall['ratio'], TARGET_TIME)}, CPU {verdict(cpu['ratio'], TARGET_TIME)}"
        control = r["name"] == "control"
        lines.append(row(
            "control: reference vs itself (ns_gan)" if control else r["name"],
            VARIANTS["ns_gan" if control else r["name"]].n_critic,
            f"{wall['a_ms']:.1f}", f"{wall['b_ms']:.1f}", ratio(wall), ratio(cpu),
            f"{ours['peak_mib']:.1f} / {ref['peak_mib']:.1f} "
            f"({ours['peak_mib'] - ref['peak_mib']:+.2f})", f"{mem:.4f}×",
            f"{ours['rss_mib'] / ref['rss_mib']:.3f}×",
            "(noise floor)" if control else ok,
            "(noise floor)" if control else verdict(mem, TARGET_MEMORY),
        ))  # fmt: skip
    control = results["variants"][-1]
    lines.append(
        f"\nNoise floor: the reference against itself measured {ratio(control['wall'])} (wall) "
        f"and {ratio(control['cpu'])} (CPU time); ratios closer to 1 than that are not resolved."
    )
    gp = results["gp"]
    lines += [
        "\n#### WGAN-GP critic step vs the same critic step without the penalty\n",
        f"Same nets (critic without norm), Adam and batch; target ≤ {TARGET_GP}×.\n",
        row("GP ms", "no-penalty ms", "ratio (wall)", "ratio (CPU time)", f"≤ {TARGET_GP}×?"),
        "|---" * 5 + "|",
        row(f"{gp['wall']['a_ms']:.1f}", f"{gp['wall']['b_ms']:.1f}", ratio(gp["wall"]),
            ratio(gp["cpu"]), verdict(gp["wall"]["ratio"], TARGET_GP)),
    ]  # fmt: skip
    if results["ddp"]:
        lines += [
            "\n#### DDP on CPU: gan_zoo on 1 vs 2 processes (`gan_ddp`, gloo, 1 thread each)\n",
            "64 images per rank and critic step, so 2 processes train on twice the images per "
            "generator step. Speed-up in real images/s: 2 × (1-process time / 2-process time), "
            "median [min–max] over the interleaved pairs. CPU ms: rank 0's.\n",
            row("variant", "ms per generator step, 1 / 2 processes", "CPU ms, 1 / 2",
                "speed-up (images/s)"),
            "|---" * 4 + "|",
        ]  # fmt: skip
        for d in results["ddp"]:
            wall, cpu = d["wall"], d["cpu"]
            lines.append(row(d["name"], f"{wall['a_ms']:.1f} / {wall['b_ms']:.1f}",
                             f"{cpu['a_ms']:.1f} / {cpu['b_ms']:.1f}", ratio(wall, 2)))  # fmt: skip
    return "\n".join(lines) + "\n"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    info = Path("/proc/cpuinfo")
    cpus = re.findall(r"model name\s*:\s*(.*)", info.read_text()) if info.exists() else []
    return cpus[0] if cpus else platform.processor() or platform.machine()


def header(args: argparse.Namespace, load: tuple[float, float], minutes: float) -> str:
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    argv = f"--pairs {args.pairs} --chunk {args.chunk} --warmup {args.warmup} --threads "
    argv += f"{args.threads} --width {args.width} --variants {','.join(args.variants)}"
    return (
        f"### Run on {args.device}\n\n`python -m bench.bench_loop {argv}` on "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; device **{device}**; CPU "
        f"{cpu_model()}, {len(os.sched_getaffinity(0))} cores; "
        f"torch {torch.__version__}, Lightning {lightning.__version__}, Python "
        f"{platform.python_version()}; 1-minute load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end; {minutes:.1f} min. Method and limits: `bench/README.md`."
    )


def write_section(path: Path, device: str, block: str) -> None:
    """Replace this device's block in the "## Training loop" section of ``path``.

    Blocks of other devices and the file's other sections stay; a missing block or section is
    appended.
    """
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    begin, end = f"<!-- bench_loop: {device} -->", f"<!-- /bench_loop: {device} -->"
    block = f"{begin}\n{block.strip()}\n{end}"
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    elif (start := text.find(f"\n{SECTION}")) >= 0:
        stop = text.find("\n## ", start + 1)
        stop = len(text) if stop < 0 else stop
        text = f"{text[:stop].rstrip()}\n\n{block}\n{text[stop:]}"
    else:
        text = f"{text.rstrip()}\n\n{SECTION}\n\n{block}\n"
    path.write_text(text.rstrip("\n") + "\n")
