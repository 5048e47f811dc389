"""Where does a trained critic send the generator's samples? Clipping vs penalty on grid25.

Gulrajani et al. 2017 (Sec. 3, Fig. 1) train critics to optimality against a fixed generator
and find that weight clipping "fails to capture higher moments of the data distribution": the
clipped critic is a simple function, where the gradient-penalty critic follows the data. A
Wasserstein generator moves its samples along the critic's input gradient, so on grid25 what
matters is whether ∇ₓD at a sample between modes points towards a mode.

This experiment measures exactly that. The generator is held fixed:

- ``gaussian`` (default): N(mean, cov) of grid25, a generator that matched the first two
  moments and nothing else (``common.fixed_generator``, as in ``packed_critic``);
- ``--generator CKPT``: the generator of a trained checkpoint (e.g. a run that stalled).

For each ``--critics`` entry a fresh critic is built from the shipped toy config exactly as
``python train.py model=<critic> data=toy2d data.name=grid25`` builds it (its net, loss,
penalty, clipping, optimizer and batch) and trained with the variant's own critic hooks for
``--steps`` steps. Every ``--every`` steps, at 2,500 held-out generator samples lying more than
3 std from every mode (the PacGAN protocol's "not high quality"), it records the cosine between
∇ₓD(x) and the direction to x's nearest mode: mean, and share above 0.5 (within 60° of the mode;
random directions give 1/3), with the dual value E[D(real)] - E[D(fake)].

    python -m gan_zoo.experiments.critic_pull --out docs/img

``--critics`` takes any model config: ``--critics ns_gan lsgan`` shows the least-squares critic
losing its pull as it trains (docs/mode_coverage.md, "LSGAN on the grid").
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from torch import Tensor

from gan_zoo.cli import CONFIG_DIR
from gan_zoo.data.toy import MIXTURES, sample_mixture
from gan_zoo.experiments import common
from gan_zoo.models import GAN
from gan_zoo.penalties import eval_mode, input_gradients
from gan_zoo.plotting import new_figure
from gan_zoo.training import build

COLUMNS = ("critic", "step", "cos_mean", "share_towards", "dual")
PROBES = 2500  # generator samples per measurement (the PacGAN protocol's sample count)
HQ_STDS = 3.0  # a sample within 3 std of a mode is high quality (PacGAN, Sec. 5.1)


def shipped_critic(name: str) -> tuple[GAN, int]:
    """The variant and its batch size as ``train.py model=<name> data=toy2d data.name=grid25``
    builds them (``configs/tuned/toy2d_<name>.yaml`` included)."""
    overrides = [f"model={name}", "data=toy2d", "data.name=grid25"]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    _, model = build(cfg)
    return model, int(cfg.data.batch_size)


def pull(model: GAN, probes: Tensor, modes: Tensor) -> dict[str, float]:
    """Cosine between ∇ₓD and the direction to the nearest mode at ``probes`` ``(N, 2)``."""
    towards = modes[torch.cdist(probes, modes).argmin(1)] - probes  # (N, 2)
    with eval_mode(model.discriminator) as critic:
        grads = input_gradients(critic, probes)
    cos = torch.nn.functional.cosine_similarity(grads, towards, dim=1)
    return {"cos_mean": cos.mean().item(), "share_towards": (cos > 0.5).float().mean().item()}


def curve(name: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], GAN]:
    """Train one fresh shipped critic against the fixed generator: a row every ``--every``
    steps, and the trained model (for its value surface)."""
    torch.manual_seed(args.seed)
    modes, std = MIXTURES["grid25"]
    rng = np.random.default_rng(args.seed)
    sample_real = lambda n: sample_mixture(modes, std, n, rng)[0]  # noqa: E731
    sample_fake = common.fixed_generator(args.generator, sample_real(4096))
    held_real, held_fake = sample_real(PROBES), sample_fake(4 * PROBES)
    off_mode = torch.cdist(held_fake, modes).min(1).values > HQ_STDS * std
    probes = held_fake[off_mode][:PROBES]
    if len(probes) == 0:
        sys.exit(
            "critic_pull: every generator sample lies within 3 std of a mode: nothing to probe"
        )
    model, batch_size = shipped_critic(name)
    rows: list[dict[str, Any]] = []

    def record(step: int, _: Tensor) -> None:
        if step % args.every == 0:
            with eval_mode(model.discriminator) as critic, torch.no_grad():
                dual = (critic(held_real).mean() - critic(held_fake).mean()).item()
            rows.append({"critic": name, "step": step, **pull(model, probes, modes), "dual": dual})

    common.train_critic(model, sample_real, sample_fake, args.steps, batch_size, record)
    return rows, model


def plot(rows: Sequence[dict[str, Any]], models: dict[str, GAN], path: Path) -> Path:
    """Mean cosine against critic steps, and each final critic's value surface with the modes."""
    names = list(dict.fromkeys(row["critic"] for row in rows))
    figure = new_figure(figsize=(4 * (len(names) + 1), 3.8))
    axes = figure.subplots(1, len(names) + 1)
    for name in names:
        mine = [row for row in rows if row["critic"] == name]
        axes[0].plot([r["step"] for r in mine], [r["cos_mean"] for r in mine], label=name)
    axes[0].axhline(0.0, color="gray", ls="--", label="no pull (random directions)")
    axes[0].set(xlabel="critic steps", ylabel="mean cos(∇D, to nearest mode)", ylim=(-0.3, 1))
    axes[0].legend(fontsize=8)
    ticks = torch.linspace(-5.5, 5.5, 111)
    grid = torch.cartesian_prod(ticks, ticks)  # (111 * 111, 2), x varies slowest
    modes = MIXTURES["grid25"][0]
    for ax, name in zip(axes[1:], names):
        with eval_mode(models[name].discriminator) as critic, torch.no_grad():
            surface = critic(grid).reshape(len(ticks), len(ticks)).T  # rows: y
        ax.contourf(ticks, ticks, surface.numpy(), levels=30, cmap="viridis")
        ax.scatter(modes[:, 0], modes[:, 1], s=8, c="red")
        ax.set(title=f"{name}: D(x) after {rows[-1]['step']} steps", aspect="equal")
    figure.savefig(path, dpi=100, bbox_inches="tight")
    return path


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    cli = common.parser("critic_pull", __doc__.splitlines()[0])
    models = sorted(path.stem for path in (CONFIG_DIR / "model").glob("*.yaml"))
    cli.add_argument(
        "--critics", nargs="+", default=["wgan_clip", "wgan_gp", "sngan"], choices=models
    )
    cli.add_argument("--steps", type=int, default=10_000, help="critic steps per critic")
    cli.add_argument("--every", type=int, default=500, help="record every this many steps")
    cli.add_argument("--generator", type=Path, help="checkpoint whose generator is held fixed")
    args = cli.parse_args(argv)
    if args.quick:
        args.steps, args.every = 20, 10
    if args.steps < args.every or args.every < 1:
        cli.error(f"--steps {args.steps} / --every {args.every}: need steps >= every >= 1")
    common.setup(args)
    start = time.perf_counter()
    trained = {name: curve(name, args) for name in args.critics}
    rows = [row for curve_rows, _ in trained.values() for row in curve_rows]
    common.write_csv(rows, args.out / "critic_pull.csv", COLUMNS)
    plot(rows, {name: model for name, (_, model) in trained.items()}, args.out / "critic_pull.png")
    for row in (curve_rows[-1] for curve_rows, _ in trained.values()):
        print(
            f"{row['critic']}: step {row['step']}, mean cos {row['cos_mean']:.3f}, "
            f"share towards a mode {row['share_towards']:.2f}, dual {row['dual']:.3g}"
        )
    print(f"{time.perf_counter() - start:.0f} s; wrote {args.out / 'critic_pull.csv'}")
    return rows


if __name__ == "__main__":
    main()
