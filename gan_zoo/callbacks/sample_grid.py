"""Render samples from fixed noise during training: an image grid, or a scatter for toy data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor

from gan_zoo.plotting import save_image_grid, save_scatter
from gan_zoo.validation import NonNegativeInt, PositiveInt, Seed, validated

SCATTER_POINTS = 2000  # samples (and real points) in a toy-data plot


class SampleGrid(pl.Callback):
    """Every ``every_n_steps`` generator steps (and at the end), draw samples from fixed noise.

    Images are saved as ``<run_dir>/samples/step_000500.png`` (``final.png`` at the end) and logged
    to W&B / TensorBoard; a class-conditional GAN's grid has one row per class. Low-dimensional data
    gets a matplotlib plot of real data against ``SCATTER_POINTS`` samples instead. Rendering runs
    on global rank 0 only and uses no collective.

    All noise comes from a private generator seeded with ``seed``, never from the global RNG, so
    rendering (or not, or at another interval, or on rank 0 only) leaves training bitwise
    unchanged.

    Args:
        every_n_steps: interval in generator steps (0 renders only at the end).
        num_samples: samples per grid.
        seed: seed of the fixed noise, independent of the training seed.
    """

    @validated
    def __init__(
        self, every_n_steps: NonNegativeInt = 500, num_samples: PositiveInt = 64, seed: Seed = 1234
    ) -> None:
        self.every_n_steps, self.num_samples, self.seed = every_n_steps, num_samples, seed
        self.last_path: Path | None = None

    def fixed_noise(self, n: int, latent_dim: int) -> Tensor:
        """``(n, latent_dim)`` noise from the callback's seed: the same at every render."""
        gen = torch.Generator().manual_seed(self.seed)
        return torch.randn(n, latent_dim, generator=gen)  # (n, latent_dim)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        step = trainer.global_step
        if self.every_n_steps and step % self.every_n_steps == 0:
            self._render(trainer, pl_module, f"step_{step:06d}")

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._render(trainer, pl_module, "final")

    def fixed_labels(self, n: int, num_classes: int, per_class: bool) -> Tensor | None:
        """A conditional GAN's classes for ``n`` samples, fixed too: ``per_class`` consecutive
        runs of each class (a grid's rows), else cycling through them; None if unconditional."""
        if not num_classes:
            return None
        index = torch.arange(n)
        return index // (n // num_classes) if per_class else index % num_classes

    @rank_zero_only
    def _render(self, trainer: pl.Trainer, pl_module: Any, name: str) -> None:
        step, latent_dim = trainer.global_step, pl_module.latent_dim
        classes = int(getattr(pl_module, "num_classes", 0))
        # A conditional GAN's grid: one row per class, of num_samples // classes samples.
        per_row = max(1, self.num_samples // classes) if classes else None
        count = per_row * classes if per_row else self.num_samples
        noise = self.fixed_noise(count, latent_dim)  # (N, latent_dim)
        labels = self.fixed_labels(count, classes, per_class=True)
        samples = pl_module.sample(count, z=noise, labels=labels)
        out = Path(trainer.default_root_dir) / "samples" / f"{name}.png"
        if samples.dim() == 4:  # (N, C, H, W) images in [-1, 1]
            save_image_grid(samples, out, nrow=per_row)
        else:  # (N, D) points: a denser cloud, from fixed noise too
            z = self.fixed_noise(SCATTER_POINTS, latent_dim)
            labels = self.fixed_labels(SCATTER_POINTS, classes, per_class=False)
            fake = pl_module.sample(SCATTER_POINTS, z=z, labels=labels)
            save_scatter(_real_samples(trainer, SCATTER_POINTS), fake, out, title=f"step {step}")
        self.last_path = out
        _log_image(trainer, out, step)


def _real_samples(trainer: pl.Trainer, n: int) -> Tensor | None:
    datamodule = getattr(trainer, "datamodule", None)
    if datamodule is None or not hasattr(datamodule, "real_samples"):
        return None
    dataset = getattr(datamodule, "dataset", None)
    size = len(dataset) if dataset is not None else n  # type: ignore[arg-type]
    return datamodule.real_samples(min(n, size))


def _log_image(trainer: pl.Trainer, path: Path, step: int) -> None:
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key="samples", images=[str(path)], step=step)
        elif isinstance(logger, TensorBoardLogger):
            import numpy as np
            from PIL import Image

            image = np.asarray(Image.open(path).convert("RGB"))  # (H, W, 3)
            logger.experiment.add_image("samples", image, step, dataformats="HWC")
