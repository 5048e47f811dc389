"""The markdown tables of the report, and the targets their verdicts are judged against."""

from __future__ import annotations

from typing import Any

from bench.loop.summary import breakdown, fixed_cost_estimate

TARGET_TIME, TARGET_MEMORY, TARGET_GP = 1.05, 1.01, 3.0


def verdict(value: float, target: float) -> str:
    return "yes" if value <= target else f"**no** (+{100 * (value / target - 1):.1f}% over)"


def ratio_text(c: dict[str, Any]) -> str:
    return f"{c['ratio']:.3f}× [{c['ratio_range'][0]:.3f}–{c['ratio_range'][1]:.3f}]"


def variant_table(rows: list[dict], tiny: dict[str, dict], control: dict, basis: str) -> list[str]:
    """One row per variant and the control; on CPU, time is judged on wall, CPU and estimate."""
    lines = [
        "| variant | n_critic | gan_zoo ms/step | reference ms/step | time ratio (wall), "
        "median [min–max] of pairs | CPU-time ratio, median [min–max] | fixed-cost estimate | "
        "gan_zoo − reference ms/step | peak memory ratio | images/s gan_zoo / reference | "
        "time ≤ 1.05×? | memory ≤ 1.01×? |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in [*rows, control]:
        estimate = fixed_cost_estimate(r, tiny.get(r["name"]), basis)
        time_ok = verdict(r["ratio"], TARGET_TIME)
        if basis == "cpu":
            time_ok = f"wall {time_ok}, CPU {verdict(r['cpu']['ratio'], TARGET_TIME)}"
        if estimate == estimate:  # not nan
            time_ok += f", estimate {verdict(estimate, TARGET_TIME)}"
        memory_ok = verdict(r["memory"]["ratio"], TARGET_MEMORY)
        if r is control:
            time_ok = memory_ok = "(noise floor)"
        lines.append(
            f"| {r['name']} | {r['n_critic']} | {r['a_ms']:.1f} | {r['b_ms']:.1f} | "
            f"{ratio_text(r)} of {r['pairs']} | {ratio_text(r['cpu'])} | "
            + (f"{estimate:.3f}×" if estimate == estimate else "—")
            + f" | {r['diff_ms']:+.2f} | {r['memory']['ratio']:.4f}× | "
            f"{r['images_per_s'][0]:.0f} / {r['images_per_s'][1]:.0f} | {time_ok} | {memory_ok} |"
        )
    return lines


def memory_table(rows: list[dict]) -> list[str]:
    def pair(m: dict, key: str) -> str:
        return f"{m[key][0]:.1f} / {m[key][1]:.1f}" if key in m else "n/a"

    cpu = "transient" in rows[0]["memory"]
    head = ["tensor state", "transient peak of one cycle"] if cpu else []
    tail = ["RSS peak", "RSS growth", "page faults per generator step"]
    lines = [
        "| variant | peak (judged) | " + " | ".join(head + tail) + " |",
        "|---|---|" + "---|" * (len(head) + len(tail)),
    ]
    for r in rows:
        m, cells = r["memory"], [pair(r["memory"], "peak")]
        cells += [pair(m, "state"), pair(m, "transient")] if cpu else []
        cells += [pair(m, "rss_peak"), pair(m, "rss_growth")]
        cells.append("{:.0f} / {:.0f}".format(*r["faults_per_step"]))
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    return lines


def overhead_table(rows: list[dict], basis: str) -> list[str]:
    lines = [
        f"| variant (width 8) | n_critic | gan_zoo ms/step ({basis}) | reference ms/step | "
        "ratio | extra ms per generator step | of which outside `training_step` | of which "
        "inside | of which `self.log` | ratio with `self.log` a no-op |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t, b = (r["cpu"] if basis == "cpu" else r), breakdown(r, basis)
        log = r["log"]["cpu"] if basis == "cpu" else r["log"]  # gan_zoo vs without self.log
        lines.append(
            f"| {r['name']} | {r['n_critic']} | {t['a_ms']:.2f} | {t['b_ms']:.2f} | "
            f"{ratio_text(t)} | {b['extra']:+.2f} | {b['outside']:+.2f} | {b['inside']:+.2f} | "
            f"{log['diff_ms']:+.2f} | {log['b_ms'] / t['b_ms']:.3f}× |"
        )
    return lines


def ddp_table(rows: list[dict]) -> list[str]:
    lines = [
        "| variant | processes × threads | generator steps/s | real images/s | CPU ms per "
        "generator step (rank 0) | 2-process speed-up (images/s), median [min–max] |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["speedup_range"]
        for world, run in r["runs"].items():
            speedup = f"{r['speedup']:.2f}× [{lo:.2f}–{hi:.2f}]" if world == 2 else "baseline"
            lines.append(
                f"| {r['variant']} | {world} × {run['threads'][0]} | "
                f"{run['steps_per_s']:.2f} | {run['images_per_s']:.0f} | {run['cpu_ms']:.1f} | "
                f"{speedup} |"
            )
    return lines
