"""What one benchmark worker runs: its ``Job``, the data, and the two loops being compared.

gan_zoo's side is the real ``Trainer.fit`` of a variant's class with the extras off; the
reference's side is :class:`bench.reference_loop.ReferenceLoop`. Both get the same nets,
optimizers and in-memory synthetic data.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from bench.loop.clock import Clock
from bench.reference_loop import (
    IMAGE_SHAPE,
    LATENT_DIM,
    VARIANTS,
    ReferenceLoop,
    Variant,
    build_nets,
)
from gan_zoo.distributed import GANDDPStrategy
from gan_zoo.models import GAN, SNGAN, WGANGP, MinimaxGAN, NonSaturatingGAN, WGANClip

BATCH = 64
DATASET_BATCHES = 64  # 4,096 synthetic images: both loops cross an epoch every 64 batches
GAN_ZOO: dict[str, Callable[..., GAN]] = {
    "minimax_gan": MinimaxGAN,
    "ns_gan": NonSaturatingGAN,
    "wgan_clip": functools.partial(WGANClip, clip_value=0.01),
    "wgan_gp": functools.partial(WGANGP, gp_weight=10.0),
    "sngan": functools.partial(SNGAN, loss="hinge"),
}
# The WGAN-GP critic step, and the same step without the penalty (same nets and optimizer).
CRITIC_STEPS = {
    "wgan_gp": VARIANTS["wgan_gp"],
    "wgan_no_penalty": dataclasses.replace(VARIANTS["wgan_gp"], gp_weight=None),
}


@dataclasses.dataclass(frozen=True)
class Job:
    """One worker: ``impl`` in RUNNERS, ``variant`` a key of VARIANTS (CRITIC_STEPS for critic)."""

    impl: str
    variant: str
    device: str
    warmup: int
    chunks: tuple[int, ...]  # timed steps per turn
    width: int = 64
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0 leaves torch's default
    world: int = 1  # gan_zoo under GANDDPStrategy (gloo) when > 1
    rank: int = 0
    port: int = 0


def make_loader(device: str, seed: int) -> DataLoader:
    """Shuffled batches ``(BATCH, 1, 28, 28)`` of one fixed in-memory synthetic tensor."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(DATASET_BATCHES * BATCH, *IMAGE_SHAPE, generator=gen) * 2 - 1
    return DataLoader(  # a Tensor is a map-style dataset: __getitem__ and __len__
        images,  # type: ignore[arg-type]
        BATCH,
        shuffle=True,
        drop_last=True,
        generator=gen,
        pin_memory=device == "cuda",
    )


def endless(loader: DataLoader, device: torch.device, clock: Clock | None = None) -> Iterator:
    """The reference's data path: the same loader, epoch after epoch, moved to ``device``.

    With a ``clock``, the time spent fetching batches is its ``inner`` part.
    """
    while True:
        batches = iter(loader)
        for _ in range(len(loader)):
            start = Clock.now()
            batch = next(batches).to(device, non_blocking=True)  # (B, 1, 28, 28)
            if clock is not None:
                clock.add_inner(start)
            yield batch


def gan_zoo_model(variant: str, width: int = 64, seed: int = 0) -> GAN:
    """The gan_zoo variant with the nets and optimizers the reference uses."""
    spec = VARIANTS[variant]
    generator, discriminator = build_nets(spec, width, seed)
    return GAN_ZOO[variant](
        generator,
        discriminator,
        latent_dim=LATENT_DIM,
        n_critic=spec.n_critic,
        generator_optimizer=spec.optimizer,
        discriminator_optimizer=spec.optimizer,
    )


def reference_loop(
    spec: Variant, device: torch.device, width: int = 64, seed: int = 0
) -> ReferenceLoop:
    """The reference on ``device``, nets built (and spectrally normalised) as gan_zoo's are."""
    loop = ReferenceLoop(spec, *build_nets(spec, width, seed))  # spectral norm before .to()
    loop.generator.to(device)
    loop.discriminator.to(device)
    return loop


def trainer(job: Job, max_steps: int, callbacks: list[pl.Callback]) -> pl.Trainer:
    """What a user gets with the extras off: no logger, progress bar, checkpoints or summary."""
    ddp = job.world > 1
    return pl.Trainer(
        accelerator=job.device,
        devices=job.world,
        strategy=GANDDPStrategy(process_group_backend="gloo") if ddp else "auto",
        max_steps=max_steps,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )
