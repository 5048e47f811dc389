"""Studies: many runs, one report (Lucic et al. 2018, "Are GANs Created Equal? A Large-Scale
Study", NeurIPS): a variant is the distribution of its scores over seeds, not one run, so the
report is a box plot per variant and a table of per-run final metrics.

A study is a Hydra multirun of ``train.py``: any launcher runs it (``hydra/launcher=joblib`` on
one machine, ``submitit_slurm`` on a cluster) and any sweeper drives it (the basic grid, Optuna).
This module only reads the run directories it leaves (:mod:`gan_zoo.experiments.sweep_runs`):

    python train.py -m experiment=study_mnist hydra/launcher=joblib hydra.launcher.n_jobs=2
    python -m gan_zoo.experiments.study multirun/study_mnist/<date> --out docs/img

``experiment=study_mnist`` writes the report into the sweep directory when the multirun ends
(:class:`StudyReport`, a Hydra callback); the command writes it again for any sweep
directories, finished, partial or several merged. Outputs: ``<name>_runs.csv`` (one row per
run: variant, seed, completion, overrides, the final value of every ``val/*`` metric),
``<name>_summary.csv`` (per variant: runs, completed runs, mean, std, min, median, max of the
score) and ``<name>.png`` (the box plot). See docs/studies.md.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from gan_zoo.cli import fail
from gan_zoo.errors import ConfigError, ConfigValueError
from gan_zoo.experiments import common
from gan_zoo.experiments.sweep_runs import (
    OVERRIDES,
    RunRecord,
    override_key,
    override_value,
    read_sweeps,
)
from gan_zoo.plotting import new_figure

log = logging.getLogger(__name__)

DEFAULT_METRIC = "val/fd_mnist_2k_train"  # Fréchet distance in the MNIST network's features
SEED_KEY = "seed"
RUN_COLUMNS = ("variant", "seed", "complete", "step", "max_steps", "run_dir", "overrides")
SUMMARY_COLUMNS = ("variant", "runs", "complete", "mean", "std", "min", "median", "max")


def variant_keys(runs: Sequence[RunRecord], by: Sequence[str] | None = None) -> list[str]:
    """The override keys that name a variant: ``by``, or else every key whose value differs
    between runs, except ``seed`` (the repeats of one variant), in order of appearance."""
    if by:
        return list(by)
    parsed = [{override_key(o): override_value(o) for o in run.overrides} for run in runs]
    keys = list(dict.fromkeys(k for overrides in parsed for k in overrides))
    return [
        k for k in keys if k != SEED_KEY and len({overrides.get(k) for overrides in parsed}) > 1
    ]


def variant_label(run: RunRecord, keys: Sequence[str]) -> str:
    """``model=ns_gan`` (one key), ``model=ns_gan data.batch_size=32`` (several), or ``all``."""
    overrides = {override_key(o): override_value(o) for o in run.overrides}
    return " ".join(f"{k}={overrides.get(k, 'default')}" for k in keys) or "all"


def run_rows(
    runs: Sequence[RunRecord], keys: Sequence[str], metric: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per run and the CSV columns: :data:`RUN_COLUMNS`, the score ``metric``, then
    every other final ``val/*`` metric any run logged."""
    others = sorted({n for r in runs for n in r.final if n.startswith("val/") and n != metric})
    rows = []
    for run in runs:
        row: dict[str, Any] = {
            "variant": variant_label(run, keys),
            "seed": "" if run.seed is None else run.seed,
            "complete": run.complete(metric),
            "step": run.final_step.get(metric, ""),
            "max_steps": "" if run.max_steps is None else run.max_steps,
            "run_dir": str(run.run_dir),
            "overrides": " ".join(run.overrides),
        }
        row.update({name: run.final.get(name, "") for name in (metric, *others)})
        rows.append(row)
    rows.sort(key=lambda r: (r["variant"], str(r["seed"]), r["run_dir"]))
    return rows, [*RUN_COLUMNS, metric, *others]


def scores(rows: Sequence[dict[str, Any]], metric: str) -> dict[str, list[float]]:
    """Variant -> the finite final scores of its complete runs. A run that stopped before its
    last evaluation (diverged, killed) has no comparable score and counts only as a run."""
    out: dict[str, list[float]] = {}
    for row in rows:
        values = out.setdefault(row["variant"], [])
        value = row[metric]
        if row["complete"] and isinstance(value, float) and math.isfinite(value):
            values.append(value)
    return out


def summarize(rows: Sequence[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Per variant, best median first: runs, complete runs and the statistics of their scores
    (sample standard deviation; NaN where there are too few scores)."""
    nan = float("nan")
    summary = []
    for variant, values in scores(rows, metric).items():
        summary.append(
            {
                "variant": variant,
                "runs": sum(row["variant"] == variant for row in rows),
                "complete": len(values),
                "mean": statistics.fmean(values) if values else nan,
                "std": statistics.stdev(values) if len(values) > 1 else nan,
                "min": min(values, default=nan),
                "median": statistics.median(values) if values else nan,
                "max": max(values, default=nan),
            }
        )
    summary.sort(key=lambda s: (math.isnan(s["median"]), s["median"]))
    return summary


def box_plot(
    summary: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    metric: str,
    keys: Sequence[str],
    path: Path,
) -> Path:
    """Lucic et al.'s figure: one box per variant (in ``summary``'s order) with every run's
    score drawn over it; a variant with runs that did not finish says how many did."""
    by_variant = scores(rows, metric)
    # With a single key the ticks show its values and the axis names the key.
    prefix = f"{keys[0]}=" if len(keys) == 1 else ""
    labels = []
    for entry in summary:
        label = entry["variant"].removeprefix(prefix)
        if entry["complete"] < entry["runs"]:
            label += f"\n({entry['complete']} of {entry['runs']} finished)"
        labels.append(label)
    fig = new_figure(figsize=(max(4.0, 1.3 * len(summary) + 1.5), 4.2))
    ax = fig.subplots()
    data = [by_variant[entry["variant"]] for entry in summary]
    positions = list(range(1, len(summary) + 1))
    ax.boxplot(data, positions=positions, widths=0.5, showfliers=False)
    for position, values in zip(positions, data):
        xs = [position + offset for offset in _spread(len(values))]
        ax.scatter(xs, values, s=14, zorder=3, color="tab:red")
    ax.set_xticks(positions, labels, rotation=0 if prefix or len(summary) < 4 else 20)
    ax.set_xlabel(keys[0] if prefix else "variant")
    ax.set_ylabel(f"final {metric}")
    steps = {row["max_steps"] for row in rows}
    budget = f", {steps.pop()} generator steps each" if len(steps) == 1 else ""
    ax.set_title(f"{len(rows)} runs{budget}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def _spread(n: int, width: float = 0.24) -> list[float]:
    """``n`` evenly spaced offsets centred on 0: points side by side, and (unlike random
    jitter) the same report draws the same figure."""
    return [0.0] * n if n < 2 else [width * (i / (n - 1) - 0.5) for i in range(n)]


def write_report(
    sweep_dirs: Sequence[Path],
    out: Path,
    metric: str = DEFAULT_METRIC,
    by: Sequence[str] | None = None,
    name: str = "study",
) -> dict[str, Any]:
    """Read every run under ``sweep_dirs`` and write ``<out>/<name>_runs.csv``,
    ``<name>_summary.csv`` and ``<name>.png``. Returns their paths and the summary.

    Raises :class:`ConfigValueError` when a folder holds no run or no run logged ``metric``.
    """
    for sweep in sweep_dirs:
        if not any(Path(sweep).rglob(OVERRIDES)):
            raise ConfigValueError("sweep_dir", str(sweep), f"a folder holding runs ({OVERRIDES})")
    runs = read_sweeps(Path(s) for s in sweep_dirs)
    logged = sorted({n for run in runs for n in run.final})
    if metric not in logged:
        valid = f"a metric the runs logged: {', '.join(logged) or 'none (logger=csv?)'}"
        raise ConfigValueError("metric", metric, valid)
    keys = variant_keys(runs, by)
    rows, columns = run_rows(runs, keys, metric)
    summary = summarize(rows, metric)
    return {
        "runs": common.write_csv(rows, out / f"{name}_runs.csv", columns),
        "summary_csv": common.write_csv(summary, out / f"{name}_summary.csv", SUMMARY_COLUMNS),
        "plot": box_plot(summary, rows, metric, keys, out / f"{name}.png"),
        "summary": summary,
    }


def summary_table(summary: Sequence[dict[str, Any]]) -> str:
    """The summary as a markdown table, ``mean ± std`` per variant."""
    rows = [
        {
            **s,
            "runs": f"{s['complete']}/{s['runs']}",
            "mean ± std": f"{s['mean']:.4g} ± {s['std']:.2g}",
        }
        for s in summary
    ]
    return common.markdown_table(rows, ("variant", "runs", "mean ± std", "median", "min", "max"))


class StudyReport(Callback):
    """Hydra callback: write the study report into the sweep directory when a multirun ends.

    ``hydra.callbacks.study_report: {_target_: gan_zoo.experiments.study.StudyReport}``
    (``configs/experiment/study_mnist.yaml``). A report it cannot write (no run logged the
    metric) is a warning: the runs are on disk and the command can report them later.
    """

    def __init__(
        self, metric: str = DEFAULT_METRIC, by: Sequence[str] | None = None, name: str = "study"
    ) -> None:
        self.metric, self.name = metric, name
        self.by = [str(k) for k in by] if by else None  # a ListConfig from Hydra

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            report = write_report([sweep_dir], sweep_dir, self.metric, self.by, self.name)
        except ConfigError as err:
            log.warning(f"study report not written: {err}")
            return
        log.info(f"study report: {report['plot']}\n{summary_table(report['summary'])}")


def main(argv: Sequence[str] | None = None) -> None:
    cli = argparse.ArgumentParser(
        prog="python -m gan_zoo.experiments.study",
        description="Report a study: final metrics of every run of Hydra sweep directories, a "
        "per-variant summary and a box plot (Lucic et al. 2018).",
    )
    cli.add_argument("sweep_dir", nargs="+", type=Path, help="hydra.sweep.dir of train.py -m")
    cli.add_argument("--metric", default=DEFAULT_METRIC, help="score (default: %(default)s)")
    cli.add_argument(
        "--by",
        nargs="+",
        metavar="KEY",
        help="override keys that name a variant (default: every key that varies, except seed)",
    )
    cli.add_argument("--out", type=Path, help="output folder (default: the first sweep_dir)")
    cli.add_argument("--name", default="study", help="file name stem (default: %(default)s)")
    args = cli.parse_args(argv)
    try:
        report = write_report(
            args.sweep_dir, args.out or args.sweep_dir[0], args.metric, args.by, args.name
        )
    except ConfigValueError as err:
        key = "--metric" if err.key == "metric" else err.key  # as the command line names it
        fail(str(ConfigValueError(key, err.value, err.valid)))
    print(summary_table(report["summary"]), end="")
    print(f"wrote {report['runs']}, {report['summary_csv']}, {report['plot']}")


if __name__ == "__main__":
    main()
