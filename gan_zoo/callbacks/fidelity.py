"""Sample-quality metrics during training, every N generator steps and at the end, one pass each.

:class:`FidelityCallback` wraps :class:`~gan_zoo.metrics.FidelityMetrics`. Two entries of
``configs/callbacks/default.yaml`` use it: ``callbacks.fidelity`` (FID and IS from one
InceptionV3 pass) and ``callbacks.mnist_metrics`` (the shipped MNIST network: Fréchet distance in
its feature space and class coverage), with a switch per metric (``fid``, ``isc``, ``kid``,
``precision_recall``, ``density_coverage``, ``classes``). Fakes come only from
``pl_module.sample(z=...)``, so they use the EMA generator whenever the model samples from it.
Data that the network cannot read turns the entry off. Protocol and cache: docs/metrics.md.
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
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from pydantic import Strict

from gan_zoo.callbacks.protocol_log import log_metric_protocols
from gan_zoo.errors import check
from gan_zoo.metrics import distributed
from gan_zoo.metrics.fidelity import FidelityMetrics
from gan_zoo.metrics.inception import EXTRACTOR_NAME as INCEPTION
from gan_zoo.metrics.inception import InceptionWeightsError
from gan_zoo.metrics.mnist_net import EXTRACTOR_NAME as MNIST
from gan_zoo.metrics.mnist_net import INPUT_SHAPE as MNIST_SHAPE
from gan_zoo.metrics.protocol import (
    for_names,
    metric_names,
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
# The entries of configs/callbacks/default.yaml that use each network: the keys that errors found
# once the data is known (at setup, after train.py has prefixed constructor errors) name.
CONFIG_KEYS = {INCEPTION: "callbacks.fidelity", MNIST: "callbacks.mnist_metrics"}
LABELS = {INCEPTION: "FID/IS", MNIST: "MNIST metrics"}  # how log lines name each entry


def readable_by(extractor: str, shape: tuple[int, ...]) -> str | None:
    """None when ``extractor`` reads samples of ``shape``, else what it reads, in words.

    >>> readable_by("mnist-cnn", (1, 28, 28)), readable_by("mnist-cnn", (3, 32, 32))
    (None, '(1, 28, 28) digits')
    """
    if extractor == MNIST:
        return None if shape == MNIST_SHAPE else f"{MNIST_SHAPE} digits"
    return None if len(shape) == 3 and shape[0] in (1, 3) else "1- or 3-channel images"


def _datamodule(trainer: pl.Trainer) -> Any:
    return getattr(trainer, "datamodule", None)


AtLeastTwo = Annotated[int, Strict(), at.Ge(2)]


class FidelityCallback(pl.Callback):
    """FID (Heusel et al. 2017), IS (Salimans et al. 2016), KID (Bińkowski et al. 2018),
    precision/recall (Kynkäänniemi et al. 2019), density/coverage (Naeem et al. 2020) and class
    coverage (VEEGAN, Srivastava et al. 2017) of the generator during training.

    Every ``every_n_steps`` generator steps and at the end of training, ``num_samples`` fakes
    (split over DDP ranks) go through one pass of the ``extractor`` network; metrics against real
    data use ``num_real`` training images (computed once, cached). Logged under names stating the
    protocol (``gan_zoo.metrics.metric_names``): ``val/fid_10k_train``, ``val/is_10k``,
    ``val/is_10k_std``, ``val/fd_mnist_2k_train``, ``val/classes_mnist_2k``, ...

    Args:
        fid: Fréchet distance of the features (FID with InceptionV3, ``fd_mnist`` with mnist-cnn).
        isc: the Inception Score (InceptionV3 only).
        every_n_steps: generator steps between evaluations (0: only at the end); ``auto`` is
            1000 on an accelerator and 0 on CPU.
        num_samples: fakes per evaluation; ``auto`` is 10,000 on an accelerator and 128 on CPU.
        num_real: training images in the real reference; ``auto`` is min(num_samples, train set).
        splits: IS splits (torch-fidelity's and the paper's 10).
        seed: seed of the fakes' noise, the same at every evaluation.
        batch_size: fakes per generator and network batch.
        inception_weights: local torch-fidelity InceptionV3 weights; null: the torch hub cache,
            downloading the official file once. Without weights: one warning, no metrics.
        cache_dir: the real reference is cached under ``<cache_dir>/fid_stats/``.
        extractor: ``inception-v3-compat`` (1- or 3-channel images of any size) or ``mnist-cnn``
            (``(1, 28, 28)`` digits). Other data turns the callback off, with one info line.
        kid, precision_recall, density_coverage: those metrics, in the extractor's features.
        classes: classes covered, KL(class histogram || uniform), mean confidence (mnist-cnn).
    """

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
        extractor: Literal["inception-v3-compat", "mnist-cnn"] = "inception-v3-compat",
        kid: StrictBool = False,
        precision_recall: StrictBool = False,
        density_coverage: StrictBool = False,
        classes: StrictBool = False,
    ) -> None:
        # IS reads InceptionV3's logits and the class metrics the MNIST network's (the rule
        # FidelityMetrics applies too), refused here so train.py fails before training.
        valid = f"false with extractor={extractor} (IS needs inception-v3-compat)"
        check(not isc or extractor == INCEPTION, "isc", isc, valid)
        valid = f"false with extractor={extractor} (class metrics need mnist-cnn)"
        check(not classes or extractor == MNIST, "classes", classes, valid)
        self.fid, self.isc, self.kid, self.classes = fid, isc, kid, classes
        self.precision_recall, self.density_coverage = precision_recall, density_coverage
        self.extractor = extractor
        self.every_n_steps, self.num_samples = every_n_steps, num_samples
        self.num_real_setting = num_real
        self.splits, self.seed, self.batch_size = splits, seed, batch_size
        self.inception_weights = inception_weights
        self.cache_dir = str(Path(cache_dir).expanduser())
        self.config_key, self.label = CONFIG_KEYS[extractor], LABELS[extractor]
        # "auto" resolved for the device at setup; the settings above stay as configured.
        self.interval, self.count = 0, 0
        self.num_real: int | None = None
        self.metric: FidelityMetrics | None = None
        self.reference: Reference | None = None
        self.last_values: dict[str, float] = {}
        self.logged_protocol: dict[str, Any] = {}

    @property
    def switches(self) -> dict[str, bool]:
        """The metric switches, as FidelityMetrics takes them."""
        return dict(fid=self.fid, isc=self.isc, kid=self.kid, classes=self.classes,
                    precision_recall=self.precision_recall,
                    density_coverage=self.density_coverage)  # fmt: skip

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or self.metric is not None:
            return
        if not any(self.switches.values()):
            rank_zero_info(f"{self.label} off: every metric switch of {self.config_key} is false")
            return
        shape = tuple(getattr(_datamodule(trainer), "sample_shape", ()) or ())
        reads = readable_by(self.extractor, shape)
        if reads is not None:
            rank_zero_info(
                f"{self.label} off: {self.extractor} reads {reads}, the data's samples are {shape}"
            )
            return
        self._resolve(trainer)
        # Building a network draws its initial layer weights from the global RNG before loading
        # the real ones: without the fork, turning a metric on would change every training step.
        try:  # every rank loads, and all agree, so no rank is left alone in a later collective
            with torch.random.fork_rng(devices=[]):
                classes = getattr(pl_module, "num_classes", 0)
                self.metric = distributed.run_everywhere(lambda: self._load(classes))
        except distributed.FidelityError as err:
            rank_zero_warn(f"{self.label} turned off, training goes on: {err}")

    def _load(self, num_classes: int = 0) -> FidelityMetrics:
        # A conditional model on MNIST also gets the intra-class Fréchet distance (10 classes of
        # 128-d statistics); with InceptionV3 it would hold 2 x K covariances of 2048 x 2048.
        intra = num_classes if self.fid and self.extractor == MNIST else 0
        try:
            return FidelityMetrics(
                intra_fd_classes=intra,
                inception_weights=self.inception_weights,
                isc_splits=self.splits,
                batch_size=self.batch_size,
                extractor=self.extractor,
                **self.switches,
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
        size = len(train_set(_datamodule(trainer)))  # type: ignore[arg-type]
        if self.num_real_setting == "auto":
            self.num_real = min(self.count, size)
        else:
            key, value = f"{self.config_key}.num_real", self.num_real_setting
            valid = f"'auto' or at most the training set size ({size})"
            check(int(value) <= size, key, value, valid)
            self.num_real = int(value)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        if self.metric is not None and self._due(trainer.global_step):
            self._evaluate(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        # The last batch already evaluated a step on the schedule.
        if self.metric is not None and not self._due(trainer.global_step):
            self._evaluate(trainer, pl_module)

    def _due(self, step: int) -> bool:
        return bool(self.interval and step and step % self.interval == 0)

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
                rank_zero_warn(f"{self.label} at generator step {step} skipped: {err}")
                return
        seconds = time.perf_counter() - start
        rank_zero_info(f"{self.label} at generator step {step} took {seconds:.1f} s")
        self._log(trainer, values, sampled_from(pl_module))

    def _compute(
        self, trainer: pl.Trainer, pl_module: Any, metric: FidelityMetrics
    ) -> dict[str, float]:
        if metric.needs_real and self.reference is None:
            assert self.num_real is not None
            self.reference = prepare_reference(
                metric, _datamodule(trainer), self.num_real, self.cache_dir, self.batch_size
            )
        return score_generator(
            metric,
            lambda z, labels=None: pl_module.sample(
                z.shape[0], batch_size=z.shape[0], z=z, labels=labels
            ),
            pl_module.latent_dim,
            self.count,
            self.seed,
            self.batch_size,
            num_classes=getattr(pl_module, "num_classes", 0),
        )

    def metric_names(self, values: dict[str, float]) -> dict[str, float]:
        """``compute()``'s values as logged: ``val/fid_10k_train``, ``val/is_10k``, ...,
        ``val/fd_mnist_2k_train``, ``val/classes_mnist_2k`` (``gan_zoo.metrics.metric_names``)."""
        num_real = self.num_real or self.count
        named = metric_names(values, self.count, num_real, self.extractor)
        return {f"val/{name}": value for name, value in named.items()}

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
        if not self.logged_protocol:
            assert self.metric is not None
            real = (self.reference, self.num_real if self.reference is not None else None)
            proto = protocol(self.metric, self.count, self.seed, *real, generator)
            self.logged_protocol = for_names(proto, named)
            log_metric_protocols(trainer)
