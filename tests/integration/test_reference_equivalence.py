"""gan_zoo's ``Trainer.fit`` computes what the raw-PyTorch loop of ``bench/reference_loop.py``
computes: the same losses, weights and buffers, for every paper variant.

This is what makes ``python -m bench.bench_loop`` a fair race: both loops do the same work.
Same seed, nets (DCGAN 28 px at width 8), data order and noise stream; gan_zoo's training batch
``t`` is the concatenation of the reference's critic batches ``t * n_critic ... t * n_critic +
n_critic - 1``.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from bench.reference_loop import IMAGE_SHAPE, LATENT_DIM, VARIANTS, ReferenceLoop, build_nets
from gan_zoo.models import GAN, SNGAN, WGANGP, MinimaxGAN, NonSaturatingGAN, WGANClip

CLASSES: dict[str, type[GAN]] = {
    "minimax_gan": MinimaxGAN,
    "ns_gan": NonSaturatingGAN,
    "wgan_clip": WGANClip,
    "wgan_gp": WGANGP,
    "sngan": SNGAN,
}
B, STEPS, WIDTH, SEED = 8, 2, 8, 1  # batch per critic step, generator steps, net width, seed
TOLERANCE = 1e-6  # absolute; on CPU the two loops agree bit for bit


class _Reseed(pl.Callback):
    """Seeds the noise stream where the reference seeds it: just before the first step."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        torch.manual_seed(SEED)


def _state(generator: nn.Module, discriminator: nn.Module) -> dict[str, Tensor]:
    """Every weight and buffer of both nets (spectral norm's ``u``, ``v``, BatchNorm stats)."""
    return {
        **{f"G.{k}": v for k, v in generator.state_dict().items()},
        **{f"D.{k}": v for k, v in discriminator.state_dict().items()},
    }


def _run_gan_zoo(variant: str, critic_batches: list[Tensor]) -> tuple[list[Tensor], GAN]:
    """Trainer.fit on one training batch per generator step; returns every loss, in order."""
    model = CLASSES[variant](*build_nets(VARIANTS[variant], WIDTH), latent_dim=LATENT_DIM)
    assert model.n_critic == VARIANTS[variant].n_critic  # the reference restates the defaults
    losses: list[Tensor] = []

    def recorded(hook: Any) -> Any:  # the loss hooks, recording what they return
        def record(*args: Tensor) -> Tensor:
            loss = hook(*args)
            losses.append(loss.detach().clone())
            return loss

        return record

    model.discriminator_loss = recorded(model.discriminator_loss)  # type: ignore[method-assign]
    model.generator_loss = recorded(model.generator_loss)  # type: ignore[method-assign]
    n = model.n_critic
    batches = [torch.cat(critic_batches[t * n : (t + 1) * n]) for t in range(STEPS)]  # (n B, ...)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=STEPS,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[_Reseed()],
    )
    # batch_size=None: each item is a training batch already. Its own generator: iter() of a
    # DataLoader draws a seed, which must not come from the noise stream.
    loader = DataLoader(batches, batch_size=None, generator=torch.Generator())  # type: ignore[arg-type]
    trainer.fit(model, loader)
    return losses, model


@pytest.mark.parametrize("variant", list(CLASSES))
def test_gan_zoo_matches_the_reference_loop(variant: str) -> None:
    n_critic = VARIANTS[variant].n_critic
    data = torch.rand(STEPS * n_critic, B, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(0))
    critic_batches = list(data * 2 - 1)  # STEPS * n_critic batches (B, 1, 28, 28) in [-1, 1]

    ours, model = _run_gan_zoo(variant, critic_batches)

    loop = ReferenceLoop(VARIANTS[variant], *build_nets(VARIANTS[variant], WIDTH))
    torch.manual_seed(SEED)
    reals, theirs = iter(critic_batches), []
    for _ in range(STEPS):
        d_losses, g_loss = loop.train_cycle(reals)
        theirs += [*d_losses, g_loss]

    assert len(ours) == len(theirs) == STEPS * (n_critic + 1)
    torch.testing.assert_close(torch.stack(ours), torch.stack(theirs), rtol=0, atol=TOLERANCE)
    ours_state = _state(model.generator, model.discriminator)
    theirs_state = _state(loop.generator, loop.discriminator)
    assert ours_state.keys() == theirs_state.keys()
    diffs = {
        k: (v.double() - theirs_state[k].double()).abs().max().item() for k, v in ours_state.items()
    }
    assert max(diffs.values()) <= TOLERANCE, diffs
