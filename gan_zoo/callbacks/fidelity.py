"""FID and IS during training, every N generator steps and at the end, from one Inception pass.

``callbacks.fidelity`` (:class:`FidelityCallback`) is on by default, with a switch per metric
(``fid``, ``isc``); both come from one InceptionV3 pass per fake. Fakes come only from
``pl_module.sample(z=...)``, so they use the EMA generator whenever the model samples from it.
Non-image data turns it off. Protocol and cache: docs/metrics.md.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types as at
import lightning.pytorch as pl
import torch
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from pydantic import Strict

from gan_zoo.errors import check
from gan_zoo.metrics import distributed
from gan_zoo.metrics.fidelity import FidelityMetrics
from gan_zoo.metrics.inception import InceptionWeightsError
from gan_zoo.metrics.protocol import (
    fid_name,
    for_names,
    is_name,
    protocol,
    sampled_from,
    score_generator,
)
from gan_zoo.metrics.reference import Reference, prepare_reference, train_set
from gan_zoo.validation import PositiveInt, Seed, StrictBool, validated

log = logging.getLogger(__name__)

# "auto" settings: the paper-style protocol on an accelerator, a cheap indicator on CPU, where one
# InceptionV3 forward costs ~0.25 s (docs/metrics.md has the measured training-time fraction).
AUTO = {
    "gpu": {"every_n_steps": 1000, "num_samples": 10000},
    "cpu": {"every_n_steps": 0, "num_samples": 128},
}
# The way out of a weights error, in train.py's keys (configs/train.yaml, callbacks/default.yaml).
TRAIN_FIX = (
    "set metrics.inception_weights=PATH, or turn the metrics off with callbacks.fidelity=null"
)


def _datamodule(trainer: pl.Trainer) -> Any:
    return getattr(trainer, "datamodule", None)


AtLeastTwo = Annotated[int, Strict(), at.Ge(2)]


class FidelityCallback(pl.Callback):
    """FID (Heusel et al. 2017) and IS (Salimans et al. 2016) of the generator during training.

    Every ``every_n_steps`` generator steps and at the end of training, ``num_samples`` fakes
    (split evenly over DDP ranks) go through one InceptionV3 pass; FID compares them with
    ``num_real`` training images, IS splits them into ``splits`` groups. Logged under names that
    state the protocol: ``val/fid_10k_train`` (``val/fid_<fakes>_train_<real>`` when the counts
    differ), ``val/is_10k`` and ``val/is_10k_std``.

    Args:
        fid: compute FID.
        isc: compute the Inception Score.
        every_n_steps: generator steps between evaluations (0: only at the end); ``auto`` is
            1000 on an accelerator and 0 on CPU.
        num_samples: fakes per evaluation; ``auto`` is 10,000 on an accelerator and 128 on CPU.
        num_real: training images in FID's reference; ``auto`` is min(num_samples, train set).
        splits: IS splits (torch-fidelity's and the paper's 10).
        seed: seed of the fakes' noise, the same at every evaluation.
        batch_size: fakes per generator and InceptionV3 batch.
        inception_weights: local torch-fidelity InceptionV3 weights; null uses the torch hub
            cache and downloads the official file once. Without weights: one warning, no metrics.
        cache_dir: FID's real statistics are cached under ``<cache_dir>/fid_stats/``.
    """

    config_key = "callbacks.fidelity"

    @validated
    def __init__(
        self,
        fid: StrictBool = True,
        isc: StrictBool = True,
        every_n_steps: Annotated[int, Strict(), at.Ge(0)] | Literal["auto"] = "auto",
        num_samples: AtLeastTwo | Literal["auto"] = "auto",
        num_real: AtLeastTwo | Literal["auto"] = "auto",
        splits: PositiveInt = 10,
        seed: Seed = 4321,
        batch_size: PositiveInt = 64,
        inception_weights: str | None = None,
        cache_dir: str = "~/.cache/gan_zoo",
    ) -> None:
        self.fid, self.isc = fid, isc
        self.every_n_steps, self.num_samples, self.num_real_setting = (
            every_n_steps,
            num_samples,
            num_real,
        )
        self.splits, self.seed, self.batch_size = splits, seed, batch_size
        self.inception_weights = inception_weights
        self.cache_dir = str(Path(cache_dir).expanduser())
        # "auto" resolved for the device at setup; the settings above stay as configured.
        self.interval, self.count = 0, 0
        self.num_real: int | None = None
        self.metric: FidelityMetrics | None = None
        self.reference: Reference | None = None
        self.last_values: dict[str, float] = {}
        self._protocol_logged = False

    # ------------------------------------------------------------------ set-up
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or self.metric is not None or not (self.fid or self.isc):
            return
        shape = tuple(getattr(_datamodule(trainer), "sample_shape", ()) or ())
        if len(shape) != 3 or shape[0] not in (1, 3):
            rank_zero_info(f"FID/IS off: data of shape {shape} are not 1- or 3-channel images")
            return
        self._resolve(trainer)
        try:  # every rank loads, and all agree, so no rank is left alone in a later collective
            self.metric = distributed.run_everywhere(self._load)
        except distributed.FidelityError as err:
            rank_zero_warn(f"FID/IS turned off, training goes on: {err}")

    def _load(self) -> FidelityMetrics:
        try:
            return FidelityMetrics(
                fid=self.fid,
                isc=self.isc,
                inception_weights=self.inception_weights,
                isc_splits=self.splits,
                batch_size=self.batch_size,
            )
        except InceptionWeightsError as err:
            raise err.with_fix(TRAIN_FIX) from None

    def _resolve(self, trainer: pl.Trainer) -> None:
        """Settle "auto" for the device and check the counts against the data, before loading."""
        auto = AUTO["cpu" if isinstance(trainer.accelerator, CPUAccelerator) else "gpu"]
        every, num = self.every_n_steps, self.num_samples
        self.interval = int(auto["every_n_steps"] if every == "auto" else every)
        self.count = int(auto["num_samples"] if num == "auto" else num)
        if self.isc:
            valid = f"at most num_samples ({self.count}) so that no split is empty"
            check(self.splits <= self.count, f"{self.config_key}.splits", self.splits, valid)
        if self.fid:
            size = len(train_set(_datamodule(trainer)))  # type: ignore[arg-type]
            if self.num_real_setting == "auto":
                self.num_real = min(self.count, size)
            else:
                key, value = f"{self.config_key}.num_real", self.num_real_setting
                valid = f"'auto' or at most the training set size ({size})"
                check(int(value) <= size, key, value, valid)
                self.num_real = int(value)

    # ------------------------------------------------------------------ schedule
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        if self.metric is not None and self._due(trainer.global_step):
            self._evaluate(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        # The last batch already evaluated a step on the schedule.
        if self.metric is not None and not self._due(trainer.global_step):
            self._evaluate(trainer, pl_module)

    def _due(self, step: int) -> bool:
        return bool(self.interval and step and step % self.interval == 0)

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, trainer: pl.Trainer, pl_module: Any) -> None:
        assert self.metric is not None
        step = trainer.global_step
        if getattr(trainer, "fast_dev_run", False):
            return
        metric = self.metric.to(pl_module.device)
        cuda = [pl_module.device] if pl_module.device.type == "cuda" else []
        # Data loading draws from the global RNG; training must not notice the metrics ran.
        start = time.perf_counter()
        with torch.random.fork_rng(devices=cuda):
            try:
                values = self._compute(trainer, pl_module, metric)
            except distributed.FidelityError as err:
                rank_zero_warn(f"FID/IS at generator step {step} skipped: {err}")
                return
        rank_zero_info(f"FID/IS at generator step {step} took {time.perf_counter() - start:.1f} s")
        self._log(trainer, values, sampled_from(pl_module))

    def _compute(
        self, trainer: pl.Trainer, pl_module: Any, metric: FidelityMetrics
    ) -> dict[str, float]:
        if metric.fid and self.reference is None:
            assert self.num_real is not None
            self.reference = prepare_reference(
                metric, _datamodule(trainer), self.num_real, self.cache_dir, self.batch_size
            )
        return score_generator(
            metric,
            lambda z: pl_module.sample(z.shape[0], batch_size=z.shape[0], z=z),
            pl_module.latent_dim,
            self.count,
            self.seed,
            self.batch_size,
        )

    def metric_names(self, values: dict[str, float]) -> dict[str, float]:
        """``val/fid_10k_train``, ``val/is_10k`` and ``val/is_10k_std`` from computed values."""
        named = {}
        if "fid" in values:
            named[f"val/{fid_name(self.count, self.num_real or 0)}"] = values["fid"]
        if "is_mean" in values:
            name = is_name(self.count)
            named[f"val/{name}"], named[f"val/{name}_std"] = values["is_mean"], values["is_std"]
        return named

    def _log(self, trainer: pl.Trainer, values: dict[str, float], generator: str) -> None:
        named = self.metric_names(values)
        self.last_values = named
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in named.items()})
        if not trainer.is_global_zero:
            return
        log.info(
            "step %d: %s", trainer.global_step, ", ".join(f"{k}={v:.4f}" for k, v in named.items())
        )
        for logger in trainer.loggers:
            logger.log_metrics(named, step=trainer.global_step)
        if not self._protocol_logged:
            self._protocol_logged = True
            assert self.metric is not None
            proto = protocol(
                self.metric, self.count, self.seed, self.reference, self.num_real, generator
            )
            described = {"metric_protocol": for_names(proto, named)}
            for logger in trainer.loggers:
                logger.log_hyperparams(described)
                if isinstance(logger, WandbLogger):
                    logger.experiment.summary.update(described)
