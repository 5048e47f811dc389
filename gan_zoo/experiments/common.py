"""Plumbing shared by the experiments: the command line, a critic-only training loop, CSV, plots."""

from __future__ import annotations

import argparse
import csv
import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gan_zoo.callbacks.lipschitz import eval_mode
from gan_zoo.checkpointing import load_model
from gan_zoo.models.base import GAN, OptimizerFactory
from gan_zoo.nets import MLPDiscriminator

Sampler = Callable[[int], Tensor]  # n -> (n, *S) samples


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The options every experiment takes: ``--out``, ``--quick``, ``--seed``, ``--threads``."""
    cli = argparse.ArgumentParser(
        prog=f"python -m gan_zoo.experiments.{name}", description=description
    )
    cli.add_argument("--out", type=Path, default=Path("outputs/experiments"), help="output folder")
    cli.add_argument(
        "--quick", action="store_true", help="a seconds-long run with tiny budgets (for tests)"
    )
    cli.add_argument("--seed", type=int, default=0)
    # Tiny MLPs gain nothing from intra-op threads, and on a shared 2-core machine extra threads
    # oversubscribe the cores and make every step several times slower.
    cli.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    return cli


def setup(args: argparse.Namespace) -> None:
    """Apply ``--seed`` and ``--threads``, quiet Lightning's banners and create ``--out``."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path, columns: Sequence[str]) -> Path:
    """Write ``rows`` (dicts with at least ``columns``) as a CSV with exactly those columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(row[k]) for k in columns})
    return path


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


def fixed_generator(checkpoint: Path | None, real: Tensor) -> Sampler:
    """``n -> (n, D)`` samples of a generator held fixed: a trained checkpoint's, or (None)
    N(mean, cov) of ``real`` ``(N, D)``, one that matched the data's first two moments only."""
    if checkpoint is not None:
        model = load_model(checkpoint).eval()
        return lambda n: model.sample(n).detach()
    mean, cov = real.mean(0).double(), torch.cov(real.T.double())
    gaussian = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)
    return lambda n: gaussian.sample((n,)).float()


def with_lr(factory: OptimizerFactory, lr: float) -> OptimizerFactory:
    """The same optimizer ``functools.partial`` with another learning rate."""
    assert isinstance(factory, functools.partial), "variants declare optimizers as partials"
    return functools.partial(factory.func, *factory.args, **{**factory.keywords, "lr": lr})


def critic_model(
    variant: type[GAN],
    in_dim: int,
    hidden: int,
    depth: int,
    lr: float,
    pack: int = 1,
    **kwargs: Any,
) -> GAN:
    """A variant around an MLP critic (scoring packs of ``pack`` samples), with its paper
    optimizer at learning rate ``lr``.

    The generator is a placeholder (``nn.Identity``): these experiments hold the "generator"
    distribution fixed and only train the critic.
    """
    optimizer = with_lr(variant.default_optimizer, lr)
    critic = MLPDiscriminator(in_dim=in_dim, hidden=hidden, depth=depth, norm="none", pack=pack)
    return variant(
        nn.Identity(),
        critic,
        latent_dim=in_dim,
        discriminator_optimizer=optimizer,
        pack=pack,
        **kwargs,
    )


def train_critic(
    model: GAN,
    sample_real: Sampler,
    sample_fake: Sampler,
    steps: int,
    batch_size: int,
    after_step: Callable[[int, Tensor], None] | None = None,
) -> None:
    """Train only ``model``'s critic against fixed real and fake distributions.

    The same hooks in the same order as one critic step of the training loop
    (``GAN._discriminator_step``): loss, penalty, optimizer step, ``after_discriminator_step``
    (weight clipping for WGAN), each step on fresh samples. ``after_step(step, loss)``, if
    given, runs after each (1-based) step, e.g. to record a learning curve.
    """
    critic = model.discriminator.train()
    optimizer = model.discriminator_optimizer(critic.parameters())
    for step in range(1, steps + 1):
        real, fake = sample_real(batch_size), sample_fake(batch_size)  # (B, *S) each
        loss = model.discriminator_loss(critic(real), critic(fake))
        loss = loss + model.discriminator_penalty(real, fake)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.after_discriminator_step()
        if after_step is not None:
            after_step(step, loss.detach())


@torch.no_grad()
def divergence_estimates(model: GAN, real: Tensor, fake: Tensor) -> dict[str, float]:
    """The variant's ``divergence_estimates`` on ``(N, *S)`` held-out samples, as floats.

    The inputs go along with the scores, as in the training loop, so that the Wasserstein
    variants add ``w1_normalized`` (their dual divided by the critic's measured Lipschitz
    constant, which needs input gradients and so the points themselves).
    """
    with eval_mode(model.discriminator) as critic:
        estimates = model.divergence_estimates(critic(real), critic(fake), real, fake)
    return {name: value.item() for name, value in estimates.items()}


def markdown_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub-flavoured markdown table of ``rows`` restricted to ``columns``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(_fmt(row[c])) for c in columns) + " |")
    return "\n".join(lines) + "\n"
