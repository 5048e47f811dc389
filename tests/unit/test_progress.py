"""GANProgressBar: Lightning's own bar, one tick per generator step, with the latest losses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from gan_zoo.callbacks import GANProgressBar
from gan_zoo.data import Toy2DDataModule
from gan_zoo.models import NonSaturatingGAN
from gan_zoo.nets import MLPDiscriminator, MLPGenerator


def _fit(bar: GANProgressBar, tmp_path: Path, n_critic: int, steps: int, **kwargs: Any) -> None:
    """A tiny GAN on 160 toy2d points in critic batches of 16."""
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
    ).fit(gan, Toy2DDataModule(num_samples=160, batch_size=16))


def test_the_bar_shows_the_latest_losses(tmp_path: Path) -> None:
    bar = GANProgressBar(refresh_rate=1)
    _fit(bar, tmp_path, n_critic=1, steps=6, log_every_n_steps=2)  # logged at steps 2, 4, 6
    metrics = bar.trainer.callback_metrics
    shown = bar.train_progress_bar.postfix
    assert f"g_loss={float(metrics['train/g_loss']):.4g}" in shown
    assert f"d_loss={float(metrics['train/d_loss']):.4g}" in shown and "v_num" not in shown


def test_the_bar_counts_generator_steps_with_n_critic_5(tmp_path: Path) -> None:
    """5 generator steps of n_critic 5 on 160 points: epochs of 2 steps each (2, 2, then 1)."""
    seen: list[tuple[int, int]] = []
    bar = GANProgressBar(refresh_rate=1)

    class Record(pl.Callback):
        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
            seen.append((bar.train_progress_bar.n, bar.train_progress_bar.total))

    _fit(bar, tmp_path, n_critic=5, steps=5, callbacks=[Record()])
    assert seen == [(2, 2), (2, 2), (1, 1)]
