"""Sample-quality metrics of a checkpoint, on one or several processes; used by ``evaluate.py``.

Two networks score the same fakes: InceptionV3 (FID, IS and, on request, KID, precision/recall,
density/coverage) and, for MNIST-shaped checkpoints, the shipped MNIST network (Fréchet distance
in its feature space, class coverage, and the same optional metrics), which needs no download.
The model comes from :func:`gan_zoo.load_model` (weights only, no pickled code) and the real
reference from the run config stored in the checkpoint, whose ``data`` node rebuilds the data
module. With ``trainer.devices=K`` (K > 1) Lightning Fabric spawns K processes (gloo on CPU,
NCCL on GPUs); each generates ``num_samples / K`` fakes and the statistics are summed or
gathered, so the result equals the 1-process one (docs/metrics.md).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Annotated, Any, Literal

import annotated_types as at
from hydra.utils import instantiate
from lightning.fabric import Fabric
from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel, ConfigDict, Strict

from gan_zoo.checkpointing import CONFIG_KEY, CheckpointError, load_model, read_checkpoint
from gan_zoo.distributed import close_process_group
from gan_zoo.errors import ConfigError, check
from gan_zoo.metrics import distributed
from gan_zoo.metrics.fidelity import FidelityMetrics
from gan_zoo.metrics.inception import InceptionWeightsError
from gan_zoo.metrics.mnist_net import EXTRACTOR_NAME as MNIST
from gan_zoo.metrics.mnist_net import INPUT_SHAPE as MNIST_SHAPE
from gan_zoo.metrics.protocol import (
    metric_names,
    mnist_metrics,
    protocol,
    sampled_from,
    score_generator,
)
from gan_zoo.metrics.reference import prepare_reference, train_set
from gan_zoo.settings import validate_settings
from gan_zoo.validation import PositiveInt, Seed, StrictBool

# The way out of a weights error, in evaluate.py's keys: every InceptionV3 metric needs the file.
EVALUATE_FIX = "set metrics.inception_weights=PATH (evaluate.py needs InceptionV3 for FID and IS)"
# On MNIST-shaped data the MNIST network's metrics need no download.
EVALUATE_FIX_MNIST = (
    "set metrics.inception_weights=PATH, or turn the InceptionV3 metrics off "
    "(metrics.fid=false metrics.isc=false) for the MNIST network's metrics alone"
)
# FidelityMetrics.compute() keys reported at the top level of the JSON when switched on.
INCEPTION_KEYS = ("fid", "is_mean", "is_std")
FEATURE_SET_KEYS = ("kid_mean", "kid_std", "precision", "recall", "density", "coverage")


class EvaluateSettings(BaseModel):
    """``metrics`` of ``configs/evaluate.yaml``; every rule about them is here, and those that
    need the data (``mnist``, something to compute) in :meth:`networks`. ``num_real`` is bounded
    by the training set where the reference is built."""

    model_config = ConfigDict(extra="forbid", strict=True)

    fid: StrictBool = True
    isc: StrictBool = True
    kid: StrictBool = False
    precision_recall: StrictBool = False
    density_coverage: StrictBool = False
    mnist: StrictBool | Literal["auto"] = "auto"
    mnist_kid: StrictBool = False
    mnist_precision_recall: StrictBool = False
    mnist_density_coverage: StrictBool = False
    num_samples: Annotated[int, Strict(), at.Ge(2)] = 50000
    num_real: Annotated[int, Strict(), at.Ge(2)] | Literal["auto"] = "auto"
    isc_splits: PositiveInt = 10
    seed: Seed = 0
    batch_size: PositiveInt = 100
    inception_weights: str | None = None
    cache_dir: str = "~/.cache/gan_zoo"

    @property
    def inception(self) -> bool:
        """Whether any InceptionV3 metric is on."""
        return self.fid or self.isc or self.kid or self.precision_recall or self.density_coverage

    def networks(self, shape: tuple[int, ...]) -> tuple[bool, bool]:
        """``(InceptionV3, MNIST network)``: which score a checkpoint whose samples are ``shape``.

        ``mnist: auto`` is on for ``(1, 28, 28)`` data; ``true`` on other data is refused, and
        so is a choice that computes nothing.
        """
        mnist_data = shape == MNIST_SHAPE
        if self.mnist is True:
            valid = f"false or 'auto' for samples of shape {shape} (the MNIST network reads "
            check(mnist_data, "metrics.mnist", True, valid + f"{MNIST_SHAPE} digits)")
        mnist = mnist_data if self.mnist == "auto" else self.mnist
        self.check_something(mnist)
        return self.inception, mnist

    def check_something(self, mnist: bool) -> None:
        """Refuse settings that compute nothing, with the MNIST network on or off."""
        others = "metrics.isc, kid, precision_recall or density_coverage"
        valid = f"true, or another metric on ({others}; or metrics.mnist on MNIST-shaped data)"
        check(self.inception or mnist, "metrics.fid", self.fid, valid + ": nothing to compute")


def check_settings(metrics: dict[str, Any]) -> EvaluateSettings:
    """Refuse bad ``metrics.*`` values before any process starts."""
    settings = validate_settings(EvaluateSettings, metrics, "metrics")
    check(
        not settings.isc or settings.isc_splits <= settings.num_samples,
        "metrics.isc_splits",
        settings.isc_splits,
        f"at most metrics.num_samples ({settings.num_samples})",
    )
    if settings.mnist is False:  # then known before the checkpoint's data is read
        settings.check_something(mnist=False)
    return settings


def _run_config(ckpt_path: str, data_overrides: dict[str, Any]) -> dict[str, Any]:
    checkpoint = read_checkpoint(ckpt_path)
    config = checkpoint.get(CONFIG_KEY)
    if not isinstance(config, dict) or "data" not in config:
        raise CheckpointError(
            f"checkpoint {ckpt_path} has no '{CONFIG_KEY}': not written by gan_zoo's train.py"
        )
    data = OmegaConf.merge(OmegaConf.create(config["data"]), OmegaConf.create(data_overrides))
    return OmegaConf.to_container(data, resolve=True)  # type: ignore[return-value]


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """The metrics of ``cfg.ckpt_path`` (configs/evaluate.yaml): ``{"fid", "is_mean", "is_std",
    "protocol"}`` (plus the optional InceptionV3 metrics) when InceptionV3 runs, and ``"mnist":
    {<protocol-stating names>: ..., "protocol": ...}`` when the MNIST network does."""
    settings = check_settings(OmegaConf.to_container(cfg.metrics, resolve=True))  # type: ignore[arg-type]
    data_cfg = _run_config(cfg.ckpt_path, OmegaConf.to_container(cfg.data, resolve=True))  # type: ignore[arg-type]
    devices = cfg.trainer.devices
    check(isinstance(devices, int) and devices >= 1, "trainer.devices", devices, "an integer >= 1")
    datamodule = instantiate(data_cfg)
    shape = tuple(getattr(datamodule, "sample_shape", ()))
    check(
        len(shape) == 3 and shape[0] in (1, 3),
        "ckpt_path",
        cfg.ckpt_path,
        f"a checkpoint of an image GAN (1 or 3 channels); its data has shape {shape}",
    )
    inception, mnist = settings.networks(shape)
    metrics = {**settings.model_dump(), "inception": inception, "mnist": mnist}
    metrics["fix"] = EVALUATE_FIX_MNIST if shape == MNIST_SHAPE else EVALUATE_FIX
    datamodule.prepare_data()  # downloads once, in this process, before any worker starts
    fabric = Fabric(
        accelerator=cfg.trainer.accelerator,
        devices=devices,
        strategy="ddp_spawn" if devices > 1 else "auto",
    )
    result = fabric.launch(_worker, str(cfg.ckpt_path), data_cfg, metrics)  # type: ignore[arg-type]
    if "error" in result:
        raise distributed.FidelityError(result["error"])
    return result


def _worker(
    fabric: Fabric, ckpt_path: str, data_cfg: dict[str, Any], metrics: dict[str, Any]
) -> dict[str, Any]:
    """Runs on every rank; returns the values, or ``{"error": ...}``, the same on all ranks."""
    if not logging.getLogger().handlers:  # a spawned worker: Hydra configured only the parent
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON line only
        try:
            return _score(fabric, ckpt_path, data_cfg, metrics)
        except (distributed.FidelityError, ConfigError, CheckpointError) as err:
            return {"error": str(err)}
        finally:
            close_process_group()  # Fabric leaves a gloo group to interpreter shutdown


def _load_metric(metrics: dict[str, Any], fix: str = EVALUATE_FIX) -> FidelityMetrics:
    """The InceptionV3 metrics that ``metrics`` switches on."""
    try:
        return FidelityMetrics(
            fid=metrics["fid"],
            isc=metrics["isc"],
            inception_weights=metrics["inception_weights"],
            isc_splits=metrics["isc_splits"],
            batch_size=metrics["batch_size"],
            kid=metrics.get("kid", False),
            precision_recall=metrics.get("precision_recall", False),
            density_coverage=metrics.get("density_coverage", False),
        )
    except InceptionWeightsError as err:
        raise err.with_fix(fix) from None


def _load_mnist_metric(metrics: dict[str, Any], num_classes: int = 0) -> FidelityMetrics:
    """The MNIST network's metrics that ``metrics`` switches on (see :func:`mnist_metrics`)."""
    return mnist_metrics(
        num_classes,
        metrics["batch_size"],
        kid=metrics["mnist_kid"],
        precision_recall=metrics["mnist_precision_recall"],
        density_coverage=metrics["mnist_density_coverage"],
    )


def _score(
    fabric: Fabric, ckpt_path: str, data_cfg: dict[str, Any], metrics: dict[str, Any]
) -> dict[str, Any]:
    model = distributed.run_everywhere(lambda: load_model(ckpt_path, map_location=fabric.device))
    datamodule = distributed.run_everywhere(lambda: instantiate(data_cfg))
    result: dict[str, Any] = {}
    if metrics["inception"]:
        metric = distributed.run_everywhere(
            lambda: _load_metric(metrics, metrics["fix"]).to(fabric.device)
        )
        values, proto = _score_with(metric, model, datamodule, metrics)
        result.update({key: values.get(key) for key in INCEPTION_KEYS})
        result.update({key: values[key] for key in FEATURE_SET_KEYS if key in values})
        result["protocol"] = {**proto, "devices": fabric.world_size}
    if metrics["mnist"]:
        classes = getattr(model, "num_classes", 0)
        metric = distributed.run_everywhere(
            lambda: _load_mnist_metric(metrics, classes).to(fabric.device)
        )
        values, proto = _score_with(metric, model, datamodule, metrics)
        named = metric_names(values, metrics["num_samples"], proto.get("real_n", 0), MNIST)
        result["mnist"] = {**named, "protocol": {**proto, "devices": fabric.world_size}}
    return result


def _score_with(
    metric: FidelityMetrics, model: Any, datamodule: Any, metrics: dict[str, Any]
) -> tuple[dict[str, float], dict[str, Any]]:
    """Collective: ``metric``'s values on the checkpoint's fakes, and their protocol."""
    num, num_real, reference = metrics["num_samples"], None, None
    if metric.needs_real:
        size = len(distributed.run_everywhere(lambda: train_set(datamodule)))  # type: ignore[arg-type]
        num_real = min(num, size) if metrics["num_real"] == "auto" else metrics["num_real"]
        reference = prepare_reference(
            metric, datamodule, num_real, metrics["cache_dir"], metrics["batch_size"]
        )
    values = score_generator(
        metric,
        lambda z, labels=None: model.sample(z.shape[0], batch_size=z.shape[0], z=z, labels=labels),
        model.latent_dim,
        num,
        metrics["seed"],
        metrics["batch_size"],
        num_classes=getattr(model, "num_classes", 0),
    )
    return values, protocol(metric, num, metrics["seed"], reference, num_real, sampled_from(model))
