"""GANProgressBar: losses converted to text only when a new value is logged, and a total that
counts the critic batches actually left."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor

import gan_zoo.callbacks.progress as progress
from gan_zoo.callbacks import GANProgressBar
from gan_zoo.data import Toy2DDataModule
from gan_zoo.models import NonSaturatingGAN
from gan_zoo.nets import MLPDiscriminator, MLPGenerator


def _fit(bar: GANProgressBar, tmp_path: Path, n_critic: int, steps: int, **kwargs: Any) -> None:
    """A tiny GAN on 64 toy2d points in batches of 16: 4 batches an epoch."""
    torch.manual_seed(0)
    gen = MLPGenerator(latent_dim=2, hidden=8, depth=1)
    gan = NonSaturatingGAN(
        gen, MLPDiscriminator(hidden=8, depth=1), latent_dim=2, n_critic=n_critic
    )
    pl.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[bar, *kwargs.pop("callbacks", [])],
        **kwargs,
    ).fit(gan, Toy2DDataModule(num_samples=64, batch_size=16))


def test_losses_are_converted_once_per_logged_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """6 steps with a refresh on every batch; the losses are logged at steps 2, 4 and 6."""
    conversions: list[float] = []
    to_float = torch.Tensor.__float__

    def counting(self: Tensor) -> float:
        value = to_float(self)
        if sys._getframe(1).f_code.co_filename == progress.__file__:
            conversions.append(value)
        return value

    monkeypatch.setattr(torch.Tensor, "__float__", counting)
    bar = GANProgressBar(refresh_rate=1)
    _fit(bar, tmp_path, n_critic=1, steps=6, log_every_n_steps=2)
    # Without the cache: 2 losses at each of 5 refreshes from step 2 on, and 2 epoch ends.
    assert len(conversions) == 2 * 3
    metrics = bar.trainer.callback_metrics
    assert conversions[-2:] == [float(metrics["train/d_loss"]), float(metrics["train/g_loss"])]
    shown = bar.train_progress_bar.postfix
    assert f"g_loss={float(metrics['train/g_loss']):.4g}" in shown and "g_step=6" in shown


def test_a_new_tensor_at_the_old_address_is_never_mistaken_for_the_old_value() -> None:
    bar = GANProgressBar()
    first = torch.tensor(1.5)
    assert bar._text("train/d_loss", first.detach()) == "1.5"
    assert bar._text("train/d_loss", first.detach()) == "1.5"  # a fresh view: cached
    first.fill_(2.5)  # changed in place: a new version
    assert bar._text("train/d_loss", first.detach()) == "2.5"
    del first  # the bar still holds it, so the next tensor cannot reuse its memory
    assert bar._text("train/d_loss", torch.tensor(3.25)) == "3.25"


@pytest.mark.parametrize(
    ("batches", "max_steps", "global_step", "in_cycle", "expected"),
    [
        (100, 2, 0, 0, 10),  # Lightning's own total: min(100, 2) = 2
        (4, 2, 0, 0, 4),
        (4, 2, 0, 4, 4),  # epoch 1 starts mid-cycle: 6 batches left
        (4, 2, 1, 3, 2),  # epoch 2: 2 batches left
        (4, 2, 2, 0, 0),
        (4, -1, 7, 1, 4),  # no step limit
    ],
)
def test_total_is_the_critic_batches_left_in_the_epoch(
    batches: int, max_steps: int, global_step: int, in_cycle: int, expected: int
) -> None:
    bar = GANProgressBar()
    module = SimpleNamespace(n_critic=5, critic_steps_in_cycle=in_cycle)
    bar._trainer = SimpleNamespace(  # type: ignore[assignment]
        num_training_batches=batches,
        max_steps=max_steps,
        global_step=global_step,
        lightning_module=module,
    )
    assert bar.total_train_batches == expected


def test_the_bar_fills_every_epoch_with_n_critic_5(tmp_path: Path) -> None:
    """2 generator steps of n_critic 5: 10 batches, over epochs of 4, 4 and 2."""
    seen: list[tuple[int, int]] = []
    bar = GANProgressBar(refresh_rate=1)

    class Record(pl.Callback):
        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
            seen.append((bar.train_progress_bar.n, bar.train_progress_bar.total))

    _fit(bar, tmp_path, n_critic=5, steps=2, callbacks=[Record()])
    assert seen == [(4, 4), (4, 4), (2, 2)]
