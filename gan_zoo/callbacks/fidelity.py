"""FID and IS during training, every N generator steps and at the end, from one Inception pass.

``callbacks.fid`` (:class:`FIDCallback`) and ``callbacks.is`` (:class:`ISCallback`) are on by
default. When their schedules agree (``every_n_steps``, ``num_samples``, ``seed``,
``batch_size``, ``inception_weights``), the first one computes both metrics from one InceptionV3
pass per fake and the other does nothing itself. Fakes come only from ``pl_module.sample(z=...)``,
so they use the EMA generator whenever the model samples from it. Non-image data turns both off.
Protocol and cache: docs/metrics.md.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, ClassVar

import lightning.pytorch as pl
import torch
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

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

log = logging.getLogger(__name__)

# "auto" settings: the paper-style protocol on an accelerator, a cheap indicator on CPU, where one
# InceptionV3 forward costs ~0.25 s (docs/metrics.md has the measured training-time fraction).
AUTO = {
    "gpu": {"every_n_steps": 1000, "num_samples": 10000},
    "cpu": {"every_n_steps": 0, "num_samples": 128},
}
# The way out of a weights error, in train.py's keys (configs/train.yaml, callbacks/default.yaml).
TRAIN_FIX = (
    "set metrics.inception_weights=PATH, or turn the metrics off with ~callbacks.fid ~callbacks.is"
)


def _datamodule(trainer: pl.Trainer) -> Any:
    return getattr(trainer, "datamodule", None)


def _auto_or_int(value: Any, key: str, minimum: int) -> None:
    ok = value == "auto" or (
        isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    )
    check(ok, key, value, f"'auto' or an integer >= {minimum}")


class FidelityCallback(pl.Callback):
    """Shared schedule of :class:`FIDCallback` and :class:`ISCallback`.

    Args:
        every_n_steps: generator steps between evaluations (0: only at the end); ``auto`` is
            1000 on an accelerator and 0 on CPU.
        num_samples: fakes per evaluation, split evenly over DDP ranks; ``auto`` is 10,000 on
            an accelerator and 128 on CPU.
        seed: seed of the fakes' noise, the same at every evaluation.
        batch_size: fakes per generator and InceptionV3 batch.
        inception_weights: local torch-fidelity InceptionV3 weights; null uses the torch hub
            cache and downloads the official file once. Without weights: one warning, no metrics.
    """

    config_key: ClassVar[str]

    def __init__(
        self,
        every_n_steps: int | str = "auto",
        num_samples: int | str = "auto",
        seed: int = 4321,
        batch_size: int = 64,
        inception_weights: str | None = None,
    ) -> None:
        # Bare keys: train.py prefixes errors raised here with the callback's config key.
        _auto_or_int(every_n_steps, "every_n_steps", 0)
        _auto_or_int(num_samples, "num_samples", 2)
        check(isinstance(seed, int) and seed >= 0, "seed", seed, "an integer >= 0")
        positive = isinstance(batch_size, int) and batch_size >= 1
        check(positive, "batch_size", batch_size, "an integer >= 1")
        self.every_n_steps, self.num_samples = every_n_steps, num_samples
        self.seed, self.batch_size, self.inception_weights = seed, batch_size, inception_weights
        # "auto" resolved for the device at setup; the settings above stay as configured.
        self.interval, self.count = 0, 0
        self.splits, self.cache_dir = 10, ""
        self.metric: FidelityMetrics | None = None
        self.reference: Reference | None = None
        self.num_real: int | None = None
        self.last_values: dict[str, float] = {}
        self._last_step = -1
        self._protocol_logged = False

    def schedule(self) -> tuple[Any, ...]:
        return (
            self.every_n_steps,
            self.num_samples,
            self.seed,
            self.batch_size,
            self.inception_weights,
        )

    # ------------------------------------------------------------------ set-up
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or self.metric is not None:
            return
        group = [
            c
            for c in trainer.callbacks  # type: ignore[attr-defined]
            if isinstance(c, FidelityCallback) and c.schedule() == self.schedule()
        ]
        if group[0] is not self:
            return  # the first of the group runs it for all
        shape = tuple(getattr(_datamodule(trainer), "sample_shape", ()) or ())
        if len(shape) != 3 or shape[0] not in (1, 3):
            rank_zero_info(f"FID/IS off: data of shape {shape} are not 1- or 3-channel images")
            return
        self._resolve(trainer, group)
        fid = any(isinstance(c, FIDCallback) for c in group)
        isc = any(isinstance(c, ISCallback) for c in group)
        try:  # every rank loads, and all agree, so no rank is left alone in a later collective
            self.metric = distributed.run_everywhere(lambda: self._load(fid, isc))
        except distributed.FidelityError as err:
            rank_zero_warn(f"FID/IS turned off, training goes on: {err}")

    def _load(self, fid: bool, isc: bool) -> FidelityMetrics:
        try:
            return FidelityMetrics(
                fid=fid,
                isc=isc,
                inception_weights=self.inception_weights,
                isc_splits=self.splits,
                batch_size=self.batch_size,
            )
        except InceptionWeightsError as err:
            raise err.with_fix(TRAIN_FIX) from None

    def _resolve(self, trainer: pl.Trainer, group: list[FidelityCallback]) -> None:
        """Settle "auto" for the device and check the counts against the data, before loading."""
        auto = AUTO["cpu" if isinstance(trainer.accelerator, CPUAccelerator) else "gpu"]
        every, num = self.every_n_steps, self.num_samples
        self.interval = int(auto["every_n_steps"] if every == "auto" else every)
        self.count = int(auto["num_samples"] if num == "auto" else num)
        self.splits = next((c.splits for c in group if isinstance(c, ISCallback)), 10)
        check(
            self.splits <= self.count,
            f"{ISCallback.config_key}.splits",
            self.splits,
            f"at most num_samples ({self.count}) so that no split is empty",
        )
        fid_member = next((c for c in group if isinstance(c, FIDCallback)), None)
        if fid_member is not None:
            self.num_real = fid_member.resolve_num_real(trainer, self.count)
            self.cache_dir = fid_member.cache_dir

    # ------------------------------------------------------------------ checkpoint state
    def state_dict(self) -> dict[str, Any]:
        """The last evaluated generator step, so a resumed run does not score that step again.

        With ``n_critic > 1`` (or a mid-cycle preemption checkpoint) the first batches after a
        resume end at the checkpoint's generator step; without this they would log it twice.
        """
        return {"last_step": self._last_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._last_step = int(state_dict.get("last_step", -1))

    # ------------------------------------------------------------------ schedule
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        step, every = trainer.global_step, self.interval
        if self.metric is not None and every and step and step % every == 0:
            if step != self._last_step:  # one generator step spans n_critic batches
                self._evaluate(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if self.metric is not None and trainer.global_step != self._last_step:
            self._evaluate(trainer, pl_module)

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, trainer: pl.Trainer, pl_module: Any) -> None:
        assert self.metric is not None
        step = self._last_step = trainer.global_step
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


class FIDCallback(FidelityCallback):
    """FID of ``num_samples`` fakes against ``num_real`` training images (Heusel et al. 2017).

    Logged as ``val/fid_<fakes>_train`` (``val/fid_<fakes>_train_<real>`` when the counts
    differ). Extra args:
        num_real: training images in the reference; ``auto`` is min(num_samples, train set).
        cache_dir: reference statistics are cached under ``<cache_dir>/fid_stats/``.
    """

    config_key = "callbacks.fid"

    def __init__(
        self,
        every_n_steps: int | str = "auto",
        num_samples: int | str = "auto",
        num_real: int | str = "auto",
        seed: int = 4321,
        batch_size: int = 64,
        inception_weights: str | None = None,
        cache_dir: str = "~/.cache/gan_zoo",
    ) -> None:
        super().__init__(every_n_steps, num_samples, seed, batch_size, inception_weights)
        _auto_or_int(num_real, "num_real", 2)
        self.num_real_setting, self.cache_dir = num_real, str(Path(cache_dir).expanduser())

    def resolve_num_real(self, trainer: pl.Trainer, num_samples: int) -> int:
        size = len(train_set(_datamodule(trainer)))  # type: ignore[arg-type]
        if self.num_real_setting == "auto":
            return min(num_samples, size)
        check(
            self.num_real_setting <= size,  # type: ignore[operator]
            f"{self.config_key}.num_real",
            self.num_real_setting,
            f"'auto' or at most the training set size ({size})",
        )
        return int(self.num_real_setting)


class ISCallback(FidelityCallback):
    """Inception Score of ``num_samples`` fakes (Salimans et al. 2016), as ``val/is_<fakes>``.

    Extra arg:
        splits: IS splits (torch-fidelity's and the paper's 10); ``val/is_<fakes>_std`` is the
            standard deviation over them.
    """

    config_key = "callbacks.is"

    def __init__(
        self,
        every_n_steps: int | str = "auto",
        num_samples: int | str = "auto",
        splits: int = 10,
        seed: int = 4321,
        batch_size: int = 64,
        inception_weights: str | None = None,
    ) -> None:
        super().__init__(every_n_steps, num_samples, seed, batch_size, inception_weights)
        check(isinstance(splits, int) and splits >= 1, "splits", splits, "an integer >= 1")
        self.splits = splits
