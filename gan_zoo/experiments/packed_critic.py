"""How fast does a packed discriminator learn? PacGAN packing (Lin et al. 2018) on grid25.

In our packed grid25 runs (``model.pack=2`` or ``4``, docs/mode_coverage.md) the generator
matches the data's mean and covariance within a few hundred steps, and then the game stalls:
D's loss sits at log 4 (chance) and the samples stay a diffuse cloud with no mode. This
experiment isolates the discriminator's side of that stall. With the generator held fixed, a
fresh NS-GAN discriminator (net/toy2d's 3 x 256 ReLU MLP, DCGAN's Adam(2e-4, betas (0.5,
0.999)), batch 512) learns to tell grid25 from

- ``gaussian`` (default): N(mean, cov) of grid25 itself, i.e. a generator that has matched the
  first two moments and nothing else (grid25: mean 0, covariance 8 I);
- ``--generator CKPT``: the generator of a trained checkpoint (e.g. a stalled packed run);

once for each ``--packs`` value, on the same samples' distribution, seed and budget. It records
D's training loss (NS-GAN's ``discriminator_loss``; 2 log 2 = 1.386 at chance) and its accuracy
on 4,096 held-out real and 4,096 fake samples, grouped into packs as D sees them.

    python -m gan_zoo.experiments.packed_critic --out docs/img
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gan_zoo.data.toy import MIXTURES, sample_mixture
from gan_zoo.experiments import common
from gan_zoo.models import NonSaturatingGAN
from gan_zoo.penalties import eval_mode
from gan_zoo.plotting import new_figure

COLUMNS = ("pack", "step", "loss", "accuracy")
HELD_OUT = 4096  # real and fake samples per accuracy measurement (divisible by every pack)


@torch.no_grad()
def accuracy(model: Any, real: Tensor, fake: Tensor) -> float:
    """Fraction of held-out packs D puts on the right side of 0 (real > 0 > fake)."""
    with eval_mode(model.discriminator) as critic:
        return ((critic(real) > 0).float().mean() + (critic(fake) < 0).float().mean()).item() / 2


def learning_curve(pack: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train one fresh discriminator scoring packs of ``pack``; a row every ``--every`` steps."""
    torch.manual_seed(args.seed)
    modes, std = MIXTURES["grid25"]
    rng = np.random.default_rng(args.seed)
    sample_real = lambda n: sample_mixture(modes, std, n, rng)[0]  # noqa: E731
    sample_fake = common.fixed_generator(args.generator, sample_real(HELD_OUT))
    held_real, held_fake = sample_real(HELD_OUT), sample_fake(HELD_OUT)
    model = common.critic_model(NonSaturatingGAN, 2, args.hidden, 3, args.lr, pack=pack)
    rows: list[dict[str, Any]] = []

    def record(step: int, loss: Tensor) -> None:
        if step % args.every == 0:
            acc = accuracy(model, held_real, held_fake)
            rows.append({"pack": pack, "step": step, "loss": loss.item(), "accuracy": acc})

    common.train_critic(model, sample_real, sample_fake, args.steps, args.batch_size, record)
    return rows


def plot(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Held-out accuracy and training loss against D steps, one line per pack size."""
    figure = new_figure(figsize=(10, 4))
    acc_axes, loss_axes = figure.subplots(1, 2)
    for pack in sorted({row["pack"] for row in rows}):
        mine = [row for row in rows if row["pack"] == pack]
        steps = [row["step"] for row in mine]
        acc_axes.plot(steps, [row["accuracy"] for row in mine], label=f"pack {pack}")
        loss_axes.plot(steps, [row["loss"] for row in mine], label=f"pack {pack}")
    loss_axes.axhline(2 * math.log(2), color="gray", ls="--", label="chance (2 log 2)")
    acc_axes.set(xlabel="discriminator steps", ylabel="held-out accuracy", ylim=(0.45, 1.0))
    loss_axes.set(xlabel="discriminator steps", ylabel="NS-GAN D loss")
    acc_axes.legend()
    loss_axes.legend()
    figure.suptitle("A fresh D against a fixed generator on grid25: packing slows it down")
    figure.savefig(path, dpi=100, bbox_inches="tight")
    return path


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    cli = common.parser("packed_critic", __doc__.splitlines()[0])
    cli.add_argument("--packs", type=int, nargs="+", default=[1, 2, 4])
    cli.add_argument("--steps", type=int, default=3000, help="D steps per pack size")
    cli.add_argument("--every", type=int, default=100, help="record every this many steps")
    cli.add_argument("--batch-size", type=int, default=512, help="samples (not packs) per step")
    cli.add_argument("--hidden", type=int, default=256)
    cli.add_argument("--lr", type=float, default=2e-4)
    cli.add_argument("--generator", type=Path, help="checkpoint whose generator is held fixed")
    args = cli.parse_args(argv)
    if args.quick:
        args.steps, args.every, args.hidden = 40, 20, 32
    for pack in args.packs:
        if pack < 1 or args.batch_size % pack or HELD_OUT % pack:
            cli.error(f"--packs {pack}: must be >= 1 and divide --batch-size and {HELD_OUT}")
    common.setup(args)
    start = time.perf_counter()
    rows = [row for pack in args.packs for row in learning_curve(pack, args)]
    common.write_csv(rows, args.out / "packed_critic.csv", COLUMNS)
    plot(rows, args.out / "packed_critic.png")
    last = {row["pack"]: row for row in rows}
    for pack, row in last.items():
        print(f"pack {pack}: step {row['step']}, loss {row['loss']:.3f}, acc {row['accuracy']:.3f}")
    print(f"{time.perf_counter() - start:.0f} s; wrote {args.out / 'packed_critic.csv'}")
    return rows


if __name__ == "__main__":
    main()
