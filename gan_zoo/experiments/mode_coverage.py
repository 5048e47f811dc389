"""Mode coverage of every variant on ring8 and grid25, over seeds, under the PacGAN protocol.

Lin et al. 2018 ("PacGAN", Sec. 5.1), after Srivastava et al. 2017 ("VEEGAN", Sec. 5.1): draw
2,500 samples; a sample is *high quality* when it lies within 3 standard deviations of its
nearest mode; a mode is *covered* when at least 20 high-quality samples fall on it; and the
*reverse KL* is KL(mode histogram of the high-quality samples || uniform).

Each variant is one Hydra multirun of ``train.py`` over ``data.name`` x ``seed``, run by Hydra's
joblib launcher (``--jobs`` runs at a time), so every run is exactly

    python train.py model=<variant> data=toy2d data.name=<ring8|grid25> seed=<s>

at the shipped settings and budget (``configs/tuned/toy2d_<model>.yaml`` where one exists; 5,000
generator steps), plus ``--max-steps`` and ``--override`` if given. The scores are the final
values the ``callbacks.mode_coverage`` callback logged (``val/modes_covered_2500``, ...), read
back from the run directories (:mod:`gan_zoo.experiments.sweep_runs`); the scatter plot samples
each variant's seed-0 checkpoint. Outputs in ``--out``: ``runs/<variant>/`` (the run
directories), ``mode_coverage_runs.csv`` (one row per run), ``mode_coverage.csv`` (mean and
sample std per variant and data set), ``mode_coverage.md`` and ``mode_coverage.png``. A variant
whose sweep the NaN guard stopped (a run diverged) gets a "diverged" line in the table, with
the guard's message, and the experiment goes on with the others.

    python -m gan_zoo.experiments.mode_coverage --out docs/img
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gan_zoo.checkpointing import load_model
from gan_zoo.cli import CONFIG_DIR
from gan_zoo.data.toy import MIXTURES
from gan_zoo.experiments import common
from gan_zoo.experiments.sweep_runs import RunRecord, override_key, override_value, read_sweeps
from gan_zoo.metrics.mode_coverage import PACGAN_SAMPLES
from gan_zoo.plotting import new_figure

TRAIN = CONFIG_DIR.parent / "train.py"
# label -> train.py overrides; FGAN twice (mode-covering KL, mode-seeking reverse KL), and
# PacGAN4 on the tuned NS-GAN, with 5 D steps per G step: with one, the packed D never leaves
# chance at this budget (docs/mode_coverage.md, "Packing").
VARIANTS: dict[str, list[str]] = {
    "minimax_gan": ["model=minimax_gan"],
    "ns_gan": ["model=ns_gan"],
    "wgan_clip": ["model=wgan_clip"],
    "wgan_gp": ["model=wgan_gp"],
    "sngan": ["model=sngan"],
    "lsgan": ["model=lsgan"],
    "hinge_gan": ["model=hinge_gan"],
    "fgan_kl": ["model=fgan", "model.divergence=kl"],
    "fgan_reverse_kl": ["model=fgan", "model.divergence=reverse_kl"],
    "ns_gan_pack4": ["model=ns_gan", "model.pack=4", "data.batch_size=512", "model.n_critic=5"],
}
DATASETS = ("ring8", "grid25")
# How train.py reports a run stopped by the NaN guard (a diverged variant is a result to report).
DIVERGED = "error: non-finite"
# (CSV stem, metric the callback logs)
SCORES = (
    ("modes_covered", f"val/modes_covered_{PACGAN_SAMPLES}"),
    ("high_quality_pct", f"val/hq_pct_{PACGAN_SAMPLES}"),
    ("reverse_kl", f"val/reverse_kl_{PACGAN_SAMPLES}"),
)
RUN_COLUMNS = ("variant", "dataset", "seed", "step", *(stem for stem, _ in SCORES), "run_dir")
COLUMNS = (
    "variant",
    "dataset",
    "runs",
    *(f"{stem}_{kind}" for stem, _ in SCORES for kind in ("mean", "std")),
    "sweep_seconds",
)
QUICK = ["debug=fast", "net.generator.hidden=16", "net.discriminator.hidden=16"]


def sweep_command(variant: str, args: Any) -> list[str]:
    """The ``train.py -m`` command of one variant: every data set x seed, ``--jobs`` at once."""
    budget = [f"trainer.max_steps={args.max_steps}"] if args.max_steps else []
    return [
        sys.executable, str(TRAIN), "-m", *VARIANTS[variant], "data=toy2d",
        f"data.name={','.join(args.datasets)}", f"seed={','.join(map(str, args.seeds))}",
        "logger=csv", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        "hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}",
        f"hydra.sweep.dir={args.out / 'runs' / variant}", *budget, *args.override,
    ]  # fmt: skip


def run_rows(variant: str, runs: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One row per run of ``variant``: its data set, seed, last step and final scores."""
    rows = []
    for run in runs:
        overrides = {override_key(o): override_value(o) for o in run.overrides}
        missing = [metric for _, metric in SCORES if not run.complete(metric)]
        if missing:
            raise RuntimeError(f"{run.run_dir}: no final {missing[0]}; see its train.log")
        row = {stem: run.final[metric] for stem, metric in SCORES}
        step = run.final_step[SCORES[0][1]]
        dataset, seed = overrides["data.name"], run.seed
        rows.append({"variant": variant, "dataset": dataset, "seed": seed, "step": step,
                     "run_dir": str(run.run_dir), **row})  # fmt: skip
    return rows


def summarize(rows: Sequence[dict[str, Any]], seconds: dict[str, float]) -> list[dict[str, Any]]:
    """Mean and sample std (0 for one run) of each score per (variant, data set)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["variant"], row["dataset"]), []).append(row)
    summary = []
    for (variant, dataset), group in groups.items():
        out: dict[str, Any] = {"variant": variant, "dataset": dataset, "runs": len(group)}
        for stem, _ in SCORES:
            values = [float(r[stem]) for r in group]
            out[f"{stem}_mean"] = statistics.fmean(values)
            out[f"{stem}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summary.append({**out, "sweep_seconds": seconds[variant]})
    return summary


def table(summary: Sequence[dict[str, Any]], diverged: dict[str, str] | None = None) -> str:
    """Markdown: one line per variant, modes and HQ % (mean ± std) per data set side by side;
    then one line per ``diverged`` variant with the NaN guard's message."""
    datasets = list(dict.fromkeys(s["dataset"] for s in summary)) or list(DATASETS)
    by_key = {(s["variant"], s["dataset"]): s for s in summary}
    header = ["variant", *(f"{d} {c}" for d in datasets for c in ("modes", "HQ %", "rev. KL"))]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant in dict.fromkeys(s["variant"] for s in summary):
        cells = [variant]
        for dataset in datasets:
            s, k = by_key[(variant, dataset)], len(MIXTURES[dataset][0])
            cells += [
                f"{s['modes_covered_mean']:.1f} ± {s['modes_covered_std']:.1f} / {k}",
                f"{s['high_quality_pct_mean']:.1f} ± {s['high_quality_pct_std']:.1f}",
                f"{s['reverse_kl_mean']:.2f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    for variant, reason in (diverged or {}).items():  # the sweep stops at its first NaN
        lines.append(f"| {variant} | diverged: {reason} |" + " |" * (len(header) - 2))
    return "\n".join(lines) + "\n"


@torch.no_grad()
def plot(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """One scatter per (data set, variant), its lowest seed: 2,500 samples over the modes."""
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r["seed"]):
        first.setdefault((row["variant"], row["dataset"]), row)
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig = new_figure(figsize=(2.4 * len(variants), 2.6 * len(datasets)))
    axes = fig.subplots(len(datasets), len(variants), squeeze=False)
    for (variant, dataset), row in first.items():
        ax = axes[datasets.index(dataset)][variants.index(variant)]
        model = load_model(Path(row["run_dir"]) / "checkpoints" / "last.ckpt").eval()
        samples, modes = model.sample(PACGAN_SAMPLES), MIXTURES[dataset][0]  # (2500, 2), (K, 2)
        # widen the view to the samples (99th percentile) so that a generator collapsed off
        # the modes shows up instead of leaving an empty panel
        lim = max(float(modes.abs().max()) * 1.5, float(samples.abs().quantile(0.99)) * 1.1)
        ax.scatter(samples[:, 0], samples[:, 1], s=1, alpha=0.3)
        ax.scatter(modes[:, 0], modes[:, 1], marker="x", s=12, c="red")
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
        ax.set_title(f"{variant}, seed {row['seed']}\n{row['modes_covered']:.0f}/{len(modes)} "
                     f"modes, {row['high_quality_pct']:.0f}% HQ", fontsize=8)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    cli = common.parser("mode_coverage", __doc__.splitlines()[0])
    cli.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    cli.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    cli.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    cli.add_argument("--jobs", type=int, default=2, help="runs at a time (joblib launcher)")
    cli.add_argument("--max-steps", type=int, help="generator steps (default: the shipped ones)")
    cli.add_argument("--override", nargs="*", default=[], help="extra train.py overrides")
    args = cli.parse_args(argv)
    if args.quick:
        args.max_steps, args.override = args.max_steps or 4, [*QUICK, *args.override]
    common.setup(args)
    rows: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}
    diverged: dict[str, str] = {}  # variant -> the NaN guard's line
    for variant in args.variants:
        start = time.perf_counter()
        # --threads (default 1) per job: the toy MLPs gain nothing from more, and on a 2-core
        # machine two jobs of 2 threads each oversubscribe the cores.
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        done = subprocess.run(sweep_command(variant, args), env=env, capture_output=True, text=True)
        seconds[variant] = time.perf_counter() - start
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or ["no error output"]
            reason = next((ln for ln in reversed(lines) if ln.startswith("error: ")), lines[-1])
            if reason.startswith(DIVERGED):  # a result, not an error: report it, go on
                diverged[variant] = reason.removeprefix("error: ")
                print(f"{variant}: diverged, {diverged[variant]}", flush=True)
                continue
            sys.exit(f"mode_coverage: {variant}'s sweep failed ({args.out / 'runs' / variant}): "
                     f"{reason}")  # fmt: skip
        rows += run_rows(variant, read_sweeps([args.out / "runs" / variant]))
        print(f"{variant}: {len(rows)} runs so far, {seconds[variant]:.0f} s", flush=True)
    summary = summarize(rows, seconds)
    common.write_csv(rows, args.out / "mode_coverage_runs.csv", RUN_COLUMNS)
    common.write_csv(summary, args.out / "mode_coverage.csv", COLUMNS)
    (args.out / "mode_coverage.md").write_text(table(summary, diverged))
    if rows:
        plot(rows, args.out / "mode_coverage.png")
    print(
        table(summary, diverged),
        f"wrote {args.out}/mode_coverage.* in {sum(seconds.values()):.0f} s",
    )
    return summary


if __name__ == "__main__":
    main()
