"""Render samples from fixed noise during training: an image grid, or a scatter for toy data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor

from gan_zoo.errors import check
from gan_zoo.plotting import save_image_grid, save_scatter


class SampleGrid(pl.Callback):
    """Every ``every_n_steps`` generator steps (and at the end), draw samples from fixed noise.

    Images are saved as ``<run_dir>/samples/step_000500.png`` (``final.png`` at the end) and
    logged to W&B / TensorBoard. Low-dimensional data gets a matplotlib plot of real data against
    samples instead. Rendering runs on global rank 0 only and uses no collective.

    Args:
        every_n_steps: interval in generator steps (0 renders only at the end).
        num_samples: samples per grid.
        seed: seed of the fixed noise, independent of the training seed.
    """

    def __init__(self, every_n_steps: int = 500, num_samples: int = 64, seed: int = 1234) -> None:
        check(every_n_steps >= 0, "every_n_steps", every_n_steps, "an integer >= 0")
        check(num_samples >= 1, "num_samples", num_samples, "an integer >= 1")
        self.every_n_steps, self.num_samples, self.seed = every_n_steps, num_samples, seed
        self._last_step = -1
        self.last_path: Path | None = None

    def _noise(self, latent_dim: int) -> Tensor:
        gen = torch.Generator().manual_seed(self.seed)
        return torch.randn(self.num_samples, latent_dim, generator=gen)  # (N, latent_dim)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        step = trainer.global_step
        if (
            self.every_n_steps
            and step
            and step % self.every_n_steps == 0
            and step != self._last_step
        ):
            self._render(trainer, pl_module, f"step_{step:06d}")

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._render(trainer, pl_module, "final")

    @rank_zero_only
    def _render(self, trainer: pl.Trainer, pl_module: Any, name: str) -> None:
        self._last_step = trainer.global_step
        samples = pl_module.sample(self.num_samples, z=self._noise(pl_module.latent_dim))
        out = Path(trainer.default_root_dir) / "samples" / f"{name}.png"
        if samples.dim() == 4:  # (N, C, H, W) images in [-1, 1]
            save_image_grid(samples, out)
        else:  # (N, D) points
            real = _real_samples(trainer, 2000)
            save_scatter(
                real, pl_module.sample(2000, z=None), out, title=f"step {trainer.global_step}"
            )
        self.last_path = out
        _log_image(trainer, out, trainer.global_step)


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
