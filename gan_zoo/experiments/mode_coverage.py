"""Mode coverage of every variant on ring8 and grid25, under the PacGAN protocol.

Lin et al. 2018 ("PacGAN", Sec. 5.1), after Srivastava et al. 2017 ("VEEGAN", Sec. 5.1): draw
2,500 samples; a sample is *high quality* when it lies within 3 standard deviations of its
nearest mode; a mode is *covered* when at least 20 high-quality samples fall on it; and the
*reverse KL* is KL(mode histogram of the high-quality samples || uniform).

Each variant is trained through the real stack: the Hydra configs (``configs/model/*.yaml`` with
``data=toy2d``), ``gan_zoo.training.build`` and a Lightning ``Trainer``, so a row is what

    python train.py model=<variant> data=toy2d data.name=<ring8|grid25> trainer.max_steps=<steps>

would give with the smaller nets and budget set here (see ``--help``). Every run gets the same
number of training batches (3,000 critic steps by default, a few minutes for all runs on two
cores), far below the papers' budgets (see docs/mode_coverage.md).

    python -m gan_zoo.experiments.mode_coverage --out docs/img
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from hydra import compose, initialize_config_dir

from gan_zoo.cli import CONFIG_DIR
from gan_zoo.data import Toy2DDataModule
from gan_zoo.experiments import common
from gan_zoo.metrics.mode_coverage import mode_statistics
from gan_zoo.plotting import new_figure
from gan_zoo.training import build

# label -> config overrides; FGAN twice, for the mode-covering KL and the mode-seeking reverse KL.
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
}
DATASETS = ("ring8", "grid25")
COLUMNS = (
    "variant",
    "dataset",
    "modes_covered",
    "num_modes",
    "high_quality_pct",
    "reverse_kl",
    "generator_steps",
    "seconds",
)


def overrides_for(args: argparse.Namespace, variant: str, dataset: str) -> list[str]:
    """The ``train.py`` overrides of one run (model, data and the smaller CPU nets)."""
    return [
        *VARIANTS[variant],
        "data=toy2d",
        f"data.name={dataset}",
        f"data.batch_size={args.batch_size}",
        f"data.num_samples={args.num_data}",
        f"net.generator.hidden={args.hidden}",
        f"net.discriminator.hidden={args.hidden}",
        *args.override,
    ]


def run_one(args: argparse.Namespace, variant: str, dataset: str) -> dict[str, Any]:
    """Train one variant on one dataset through the real config stack and score its samples.

    The budget is ``args.critic_steps`` training batches (= critic steps), so a variant with
    ``n_critic = 5`` takes a fifth as many generator steps: every run costs about the same.
    """
    common.setup(args)  # again, for worker processes
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides_for(args, variant, dataset))
    pl.seed_everything(args.seed, workers=True, verbose=False)
    datamodule, model = build(cfg)
    assert isinstance(datamodule, Toy2DDataModule) and datamodule.modes is not None
    steps = max(1, args.critic_steps // model.n_critic)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    seconds = time.perf_counter() - start
    samples = model.sample(args.num_samples)  # (2500, 2)
    stats = mode_statistics(samples, datamodule.modes, float(datamodule.mode_std or 0.0))
    return {"variant": variant, "dataset": dataset, "generator_steps": steps,
            "seconds": seconds, "samples": samples, "modes": datamodule.modes, **stats}  # fmt: skip


def plot(results: Sequence[dict[str, Any]], path: Path) -> Path:
    """One scatter per (dataset, variant): 2,500 samples (dots) over the modes (crosses)."""
    variants = list(dict.fromkeys(r["variant"] for r in results))
    datasets = list(dict.fromkeys(r["dataset"] for r in results))
    fig = new_figure(figsize=(2.4 * len(variants), 2.6 * len(datasets)))
    axes = fig.subplots(len(datasets), len(variants), squeeze=False)
    for r in results:
        ax = axes[datasets.index(r["dataset"])][variants.index(r["variant"])]
        modes, samples = r["modes"], r["samples"]
        lim = float(modes.abs().max()) * 1.5
        ax.scatter(samples[:, 0], samples[:, 1], s=1, alpha=0.3)
        ax.scatter(modes[:, 0], modes[:, 1], marker="x", s=12, c="red")
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
        ax.set_title(
            f"{r['variant']}\n{r['modes_covered']}/{r['num_modes']} modes, "
            f"{r['high_quality_pct']:.0f}% HQ",
            fontsize=8,
        )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def table(results: Sequence[dict[str, Any]]) -> str:
    """Markdown: one line per variant, the two datasets side by side."""
    by_key = {(r["variant"], r["dataset"]): r for r in results}
    variants = list(dict.fromkeys(r["variant"] for r in results))
    datasets = list(dict.fromkeys(r["dataset"] for r in results))
    header = ["variant"]
    for d in datasets:
        header += [f"{d} modes", f"{d} HQ %", f"{d} rev. KL"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for v in variants:
        cells = [v]
        for d in datasets:
            r = by_key[(v, d)]
            cells += [
                f"{r['modes_covered']}/{r['num_modes']}",
                f"{r['high_quality_pct']:.1f}",
                f"{r['reverse_kl']:.2f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    cli = common.parser("mode_coverage", __doc__.splitlines()[0])
    cli.add_argument(
        "--critic-steps", type=int, default=3000, help="training batches (critic steps) per run"
    )
    cli.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="processes")
    cli.add_argument("--batch-size", type=int, default=256)
    cli.add_argument("--hidden", type=int, default=128, help="width of both MLPs (3 layers)")
    cli.add_argument("--num-data", type=int, default=20_000, help="training set size")
    cli.add_argument("--num-samples", type=int, default=2500, help="PacGAN: 2,500")
    cli.add_argument(
        "--override", nargs="*", default=[], help="extra train.py overrides for every run"
    )
    cli.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    cli.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    args = cli.parse_args(argv)
    if args.quick:
        args.critic_steps, args.hidden, args.num_data, args.batch_size = 5, 16, 512, 64
        args.jobs = 1  # worker start-up would dominate
    common.setup(args)
    start = time.perf_counter()
    runs = [(args, v, d) for d in args.datasets for v in args.variants]
    if args.jobs > 1:
        context = multiprocessing.get_context("spawn")  # fork after torch init is fragile
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            results = list(pool.map(run_one, *zip(*runs)))
    else:
        results = [run_one(*run) for run in runs]
    for row in results:
        print(", ".join(f"{k}={row[k]}" for k in COLUMNS), flush=True)
    common.write_csv(results, args.out / "mode_coverage.csv", COLUMNS)
    (args.out / "mode_coverage.md").write_text(table(results))
    plot(results, args.out / "mode_coverage.png")
    print(f"wrote {args.out}/mode_coverage.{{csv,md,png}} in {time.perf_counter() - start:.0f} s")
    return results


if __name__ == "__main__":
    main()
