"""PacGAN's mode-coverage statistics of a toy-mixture GAN during training.

``callbacks.mode_coverage`` (:class:`ModeCoverageCallback`) scores the generator on data with
known modes (``data=toy2d`` ring8 and grid25, ``data=toy1d``) with the code of the mode-coverage
experiment, :func:`gan_zoo.metrics.mode_statistics` (Lin et al. 2018, Sec. 5.1). Other data turns
it off with one info line.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from torch import Tensor

from gan_zoo.callbacks.protocol_log import log_metric_protocols
from gan_zoo.metrics.mode_coverage import (
    PACGAN_MIN_COUNT,
    PACGAN_NUM_STD,
    PACGAN_SAMPLES,
    mode_metric_names,
    mode_statistics,
)
from gan_zoo.metrics.protocol import sampled_from
from gan_zoo.validation import NonNegativeInt, PositiveInt, Seed, validated

log = logging.getLogger(__name__)


class ModeCoverageCallback(pl.Callback):
    """Modes covered, high-quality share and reverse KL of ``num_samples`` fixed-noise samples.

    Every ``every_n_steps`` generator steps and at the end of training (once, if the last step
    is on the schedule), the generator (its EMA copy when the model keeps one) maps the same
    ``(num_samples, latent_dim)`` noise to samples ``(num_samples, D)``, scored against the data
    module's ``modes`` ``(K, D)`` and ``mode_std``: a sample is high quality within 3 stds of its
    nearest mode, a mode is covered by at least 20 high-quality samples, and the reverse KL is
    KL(high-quality mode histogram || uniform) in nats. Logged as ``val/modes_covered_2500``,
    ``val/hq_pct_2500`` (percent) and ``val/reverse_kl_2500``, the protocol under
    ``metric_protocol``.

    The noise comes from a private generator seeded with ``seed``, never from the global RNG,
    and scoring runs on global rank 0 only without any collective (like ``SampleGrid``), so the
    callback leaves training bitwise unchanged.

    Args:
        every_n_steps: generator steps between evaluations (0: only at the end).
        num_samples: samples per evaluation (PacGAN and VEEGAN: 2,500).
        seed: seed of the fixed noise, independent of the training seed.
    """

    @validated
    def __init__(
        self,
        every_n_steps: NonNegativeInt = 500,
        num_samples: PositiveInt = PACGAN_SAMPLES,
        seed: Seed = 2500,
    ) -> None:
        self.every_n_steps, self.num_samples, self.seed = every_n_steps, num_samples, seed
        self.modes: Tensor | None = None  # (K, D), from the data module at setup
        self.mode_std: float | None = None
        self.last_values: dict[str, float] = {}
        self.logged_protocol: dict[str, Any] = {}

    def fixed_noise(self, latent_dim: int) -> Tensor:
        """``(num_samples, latent_dim)`` noise from the callback's seed: the same every time."""
        generator = torch.Generator().manual_seed(self.seed)
        return torch.randn(self.num_samples, latent_dim, generator=generator)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        data = getattr(trainer, "datamodule", None)
        modes, std = getattr(data, "modes", None), getattr(data, "mode_std", None)
        if modes is None or std is None:
            name = type(data).__name__ if data is not None else "the training data"
            rank_zero_info(f"Mode coverage off: {name} has no known modes (modes, mode_std)")
            return
        self.modes, self.mode_std = modes.detach().cpu(), float(std)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        if self._due(trainer.global_step):
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if not self._due(trainer.global_step):  # the last batch scored a step on the schedule
            self.evaluate(trainer, pl_module)

    def _due(self, step: int) -> bool:
        return bool(self.every_n_steps and step and step % self.every_n_steps == 0)

    @rank_zero_only
    def evaluate(self, trainer: pl.Trainer, pl_module: Any) -> None:
        """Score the generator now and log the statistics at the current generator step."""
        if self.modes is None or self.mode_std is None or getattr(trainer, "fast_dev_run", False):
            return
        samples = pl_module.sample(self.num_samples, z=self.fixed_noise(pl_module.latent_dim))
        stats = mode_statistics(samples, self.modes, self.mode_std)  # samples (N, D)
        named = {f"val/{k}": v for k, v in mode_metric_names(stats, self.num_samples).items()}
        self.last_values = named
        step = trainer.global_step
        log.info("step %d: %s", step, ", ".join(f"{k}={v:.4g}" for k, v in named.items()))
        for logger in trainer.loggers:
            logger.log_metrics(named, step=step)
        if not self.logged_protocol:
            proto = self.protocol(sampled_from(pl_module))
            self.logged_protocol = {name: proto for name in named}
            log_metric_protocols(trainer)

    def protocol(self, generator: str) -> dict[str, Any]:
        """How the numbers are made, for the logger's ``metric_protocol``."""
        assert self.modes is not None and self.mode_std is not None
        return {
            "metric": "PacGAN mode coverage (Lin et al. 2018, Sec. 5.1)",
            "num_samples": self.num_samples,
            "noise_seed": self.seed,
            "generator": generator,
            "num_modes": len(self.modes),
            "mode_std": self.mode_std,
            "high_quality": f"within {PACGAN_NUM_STD:g} std of the nearest mode",
            "covered": f">= {PACGAN_MIN_COUNT} high-quality samples",
            "reverse_kl": "KL(high-quality mode histogram || uniform), nats",
        }
