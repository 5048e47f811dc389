"""The small-data runs' table and plot, from their run directories, in one command.

    python -m bench.small_data runs/small/* --out docs/img

The command behind docs/conditional.md's "Small data" tables. Each argument is the run
directory of a ``python train.py experiment=small_data_mnist ...`` run (its CSV logs and the
checkpoint it keeps every 1,000 steps). For every step in ``--steps`` whose checkpoint the run
kept (``checkpoints/step<k>.ckpt``) it writes one row:

- what the run is, from the config stored in the checkpoint: ``digits`` (``data.subset``, or
  ``all``), ``augmentation`` (``none`` or the augmentation module as it prints itself, e.g.
  ``DiffAugment(policy='translation')``) and ``seed``;
- the judge of ``bench.sample_quality``: FD, precision and recall of ``--num-samples`` fakes
  against as many of the 5,000 digits, in the shipped MNIST network's features, the same
  reference for every run whatever it trained on, and the classes in the final grid;
- at ``--gap-steps``, D's overfitting as ``bench.discriminator_gap`` measures it: the gap of
  ``E[sign D]`` between the run's training digits and digits it never saw (ADA's Fig. 1; empty
  for a run that trained on every digit);
- from the run's CSV log: D's JS estimate (``divergence/js``) and loss averaged over the
  ``--window`` generator steps up to the step (how well D still tells real from fake), and the
  ADA probability ``augment/p`` logged at the step (empty without ADA).

Outputs in ``--out``: ``small_data_runs.csv`` and ``small_data_fd.png`` (FD against steps, one
panel per data size, one line per augmentation and seed). With ``--cache FILE`` a checkpoint
judged before (same file, same settings) is not judged again: runs can be scored as they
finish, or by several processes at once, and the table then written in seconds.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import statistics
from pathlib import Path
from typing import Any

from bench import checkpoints, discriminator_gap, sample_quality
from gan_zoo.checkpointing.load import read_checkpoint
from gan_zoo.checkpointing.run_config import CONFIG_KEY
from gan_zoo.experiments.sweep_runs import metric_history
from gan_zoo.metrics import FidelityMetrics
from gan_zoo.metrics.reference import Reference
from gan_zoo.models import GAN
from gan_zoo.plotting import new_figure

# the experiment's 15,000 steps, and beyond for runs trained on (ckpt_path=last): a step a run
# did not keep is skipped
STEPS = (3000, 5000, 7000, 10000, 12000, 15000, 20000, 25000, 30000)
GAP_STEPS = (5000, 10000, 15000)
COLUMNS = (
    "digits",
    "augmentation",
    "seed",
    "step",
    "fd_mnist_train",
    "precision",
    "recall",
    "grid_classes",
    "sign_gap",
    "ada_p",
    "js_window",
    "d_loss_window",
    "checkpoint",
)


@functools.cache
def judge(num_classes: int, num_samples: int) -> tuple[FidelityMetrics, Reference]:
    """``bench.sample_quality``'s metrics and reference, built once per run of the command."""
    return sample_quality.judge(num_classes, num_samples)


def describe(path: Path, model: GAN) -> dict[str, Any]:
    """``digits``, ``augmentation`` and ``seed`` of the run that wrote checkpoint ``path``."""
    config = read_checkpoint(path)[CONFIG_KEY]
    augment = model.augment
    subset = config["data"].get("subset")
    return {
        "digits": "all" if subset is None else subset,
        "augmentation": "none"
        if augment is None
        else f"{type(augment).__name__}({augment.extra_repr()})",
        "seed": config.get("seed"),
    }


def window_mean(history: dict[int, float], step: int, window: int) -> float | str:
    """Mean of the values logged in ``(step - window, step]``; empty when there are none."""
    values = [value for at, value in history.items() if step - window < at <= step]
    return round(statistics.mean(values), 4) if values else ""


def judge_checkpoint(path: Path, gap: bool, args: argparse.Namespace) -> dict[str, Any]:
    """The run's description, the sample quality and (if ``gap``) D's gap of checkpoint
    ``path``: the expensive part of a row, about 15 s of one CPU core."""
    model = checkpoints.load(path)
    shape = tuple(model.sample(1).shape[1:])
    if shape != (1, 28, 28):
        raise SystemExit(f"error: {path} samples {shape}; the MNIST judge needs (1, 28, 28)")
    metric, _ = judge(model.num_classes, args.num_samples)
    quality = sample_quality.score(metric, model, args.num_samples, args.seed)
    fd, precision, recall = (
        next(v for k, v in quality.items() if k.startswith(prefix))
        for prefix in ("fd_mnist_", "precision_mnist_", "recall_mnist_")
    )
    measured = discriminator_gap.measure(str(path), args.num_gap, args.seed) if gap else {}
    return {
        **describe(path, model),
        "fd_mnist_train": fd,
        "precision": precision,
        "recall": recall,
        "grid_classes": quality["grid_classes"],
        "sign_gap": measured.get("gap", {}).get("sign", ""),
    }


def cached_judgement(path: Path, gap: bool, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`judge_checkpoint`, looked up in / appended to ``args.cache`` (JSON lines) when
    given: keyed by the checkpoint's path, size and modification time and the settings, so
    adding a run to the table, or scoring runs in parallel processes, does not rescore the rest."""
    if args.cache is None:
        return judge_checkpoint(path, gap, args)
    stat = path.stat()  # the resolved path: runs/x and ./runs/x are the same checkpoint
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{args.num_samples}|{args.seed}|"
    key += f"{args.num_gap if gap else 0}"
    if args.cache.exists():
        for number, line in enumerate(args.cache.read_text().splitlines(), 1):
            try:
                entry = json.loads(line)
                found = entry["key"] == key
            except (ValueError, TypeError, KeyError):
                raise SystemExit(
                    f"error: --cache {args.cache} line {number} is not a judged checkpoint "
                    '(a JSON object with "key" and "row"); fix or remove the file'
                ) from None
            if found:
                return dict(entry["row"])
    row = judge_checkpoint(path, gap, args)
    with open(args.cache, "a") as handle:
        handle.write(json.dumps({"key": key, "row": row}) + "\n")
    return row


def measure_run(run_dir: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One row per kept checkpoint of ``run_dir`` at ``args.steps``."""
    kept = [(s, run_dir / "checkpoints" / f"step{s:06d}.ckpt") for s in args.steps]
    kept = [(step, path) for step, path in kept if path.exists()]
    if not kept:
        steps = ", ".join(map(str, args.steps))
        raise SystemExit(f"error: {run_dir} has no checkpoints/step<k>.ckpt for k in {steps}")
    js = metric_history(run_dir, "divergence/js")
    d_loss = metric_history(run_dir, "train/d_loss")
    ada_p = metric_history(run_dir, "augment/p")
    return [
        {
            **cached_judgement(path, step in args.gap_steps, args),
            "step": step,
            "ada_p": round(ada_p[step], 4) if step in ada_p else "",
            "js_window": window_mean(js, step, args.window),
            "d_loss_window": window_mean(d_loss, step, args.window),
            "checkpoint": str(path),
        }
        for step, path in kept
    ]


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """FD against steps: one panel per data size, one line per augmentation and seed (one
    color per augmentation, one line style per seed, so an arm's seeds read together)."""
    sizes = list(dict.fromkeys(row["digits"] for row in rows))
    colors = {a: f"C{i}" for i, a in enumerate(dict.fromkeys(r["augmentation"] for r in rows))}
    styles = {
        s: ("-", "--", ":", "-.")[i % 4] for i, s in enumerate(sorted({r["seed"] for r in rows}))
    }
    fig = new_figure(figsize=(5.5 * len(sizes), 4))
    for i, size in enumerate(sizes):
        ax = fig.add_subplot(1, len(sizes), i + 1)
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for row in (r for r in rows if r["digits"] == size):
            runs.setdefault((row["augmentation"], row["seed"]), []).append(row)
        for (augmentation, seed), mine in runs.items():
            steps, fds = [r["step"] for r in mine], [r["fd_mnist_train"] for r in mine]
            ax.plot(steps, fds, marker="o", color=colors[augmentation], linestyle=styles[seed],
                    label=f"{augmentation}, seed {seed}")  # fmt: skip
        ax.set(xlabel="generator steps", title=f"NS-GAN on {size} MNIST digits")
        ax.set_ylabel("FD_mnist vs the 5,000 digits (lower is better)")
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, nargs="+", default=STEPS)
    parser.add_argument("--gap-steps", type=int, nargs="+", default=GAP_STEPS)
    parser.add_argument("--window", type=int, default=1000, help="generator steps averaged")
    parser.add_argument("--num-samples", type=int, default=2000, help="fakes per checkpoint")
    parser.add_argument("--num-gap", type=int, default=500, help="digits per set, D's gap")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, help="JSON lines of checkpoints already judged")
    args = parser.parse_args(argv)
    rows = [row for run_dir in args.run_dirs for row in measure_run(run_dir, args)]
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "small_data_runs.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.out / "small_data_fd.png")
    print(f"wrote {args.out / 'small_data_runs.csv'} ({len(rows)} rows) and small_data_fd.png")


if __name__ == "__main__":
    main()
