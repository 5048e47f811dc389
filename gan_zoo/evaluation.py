"""FID and IS of a checkpoint, on one or several processes; used by ``evaluate.py``.

The model comes from :func:`gan_zoo.load_model` (weights only, no pickled code) and the real
reference from the run config stored in the checkpoint, whose ``data`` node rebuilds the data
module. With ``trainer.devices=K`` (K > 1) Lightning Fabric spawns K processes (gloo on CPU,
NCCL on GPUs); each generates ``num_samples / K`` fakes and the statistics are summed, so the
result equals the 1-process one (docs/metrics.md).
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
from gan_zoo.errors import ConfigError, check
from gan_zoo.metrics import distributed
from gan_zoo.metrics.fidelity import FidelityMetrics
from gan_zoo.metrics.inception import InceptionWeightsError
from gan_zoo.metrics.protocol import protocol, sampled_from, score_generator
from gan_zoo.metrics.reference import prepare_reference, train_set
from gan_zoo.validation import PositiveInt, Seed, StrictBool, validate_settings

# The way out of a weights error, in evaluate.py's keys: it has no switch that avoids InceptionV3
# (metrics.fid and metrics.isc both need it, and at least one must be on).
EVALUATE_FIX = "set metrics.inception_weights=PATH (evaluate.py needs InceptionV3 for FID and IS)"


class EvaluateSettings(BaseModel):
    """``metrics`` of ``configs/evaluate.yaml``; ``num_real`` and ``isc_splits`` are bounded by
    ``num_samples`` and the data in :func:`_score`, where those meet."""

    model_config = ConfigDict(extra="forbid", strict=True)

    fid: StrictBool = True
    isc: StrictBool = True
    num_samples: Annotated[int, Strict(), at.Ge(2)] = 50000
    num_real: Annotated[int, Strict(), at.Ge(2)] | Literal["auto"] = "auto"
    isc_splits: PositiveInt = 10
    seed: Seed = 0
    batch_size: PositiveInt = 100
    inception_weights: str | None = None
    cache_dir: str = "~/.cache/gan_zoo"


def check_settings(metrics: dict[str, Any]) -> EvaluateSettings:
    """Refuse bad ``metrics.*`` values before any process starts."""
    settings = validate_settings(EvaluateSettings, metrics, "metrics")
    check(settings.fid or settings.isc, "metrics.fid", settings.fid, "true, or metrics.isc=true")
    check(
        settings.isc_splits <= settings.num_samples,
        "metrics.isc_splits",
        settings.isc_splits,
        f"at most metrics.num_samples ({settings.num_samples})",
    )
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
    """``{"fid", "is_mean", "is_std", "protocol"}`` of ``cfg.ckpt_path`` (configs/evaluate.yaml)."""
    metrics: dict[str, Any] = OmegaConf.to_container(cfg.metrics, resolve=True)  # type: ignore
    metrics = check_settings(metrics).model_dump()
    data_cfg = _run_config(cfg.ckpt_path, OmegaConf.to_container(cfg.data, resolve=True))  # type: ignore[arg-type]
    devices = cfg.trainer.devices
    check(isinstance(devices, int) and devices >= 1, "trainer.devices", devices, "an integer >= 1")
    datamodule = instantiate(data_cfg)
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


def _load_metric(metrics: dict[str, Any]) -> FidelityMetrics:
    try:
        return FidelityMetrics(
            fid=metrics["fid"],
            isc=metrics["isc"],
            inception_weights=metrics["inception_weights"],
            isc_splits=metrics["isc_splits"],
            batch_size=metrics["batch_size"],
        )
    except InceptionWeightsError as err:
        raise err.with_fix(EVALUATE_FIX) from None


def _score(
    fabric: Fabric, ckpt_path: str, data_cfg: dict[str, Any], metrics: dict[str, Any]
) -> dict[str, Any]:
    model = distributed.run_everywhere(lambda: load_model(ckpt_path, map_location=fabric.device))
    datamodule = distributed.run_everywhere(lambda: instantiate(data_cfg))
    shape = tuple(getattr(datamodule, "sample_shape", ()))
    check(
        len(shape) == 3 and shape[0] in (1, 3),
        "ckpt_path",
        ckpt_path,
        f"a checkpoint of an image GAN (1 or 3 channels); its data has shape {shape}",
    )
    metric = distributed.run_everywhere(lambda: _load_metric(metrics).to(fabric.device))
    num, num_real, reference = metrics["num_samples"], None, None
    if metric.fid:
        size = len(distributed.run_everywhere(lambda: train_set(datamodule)))  # type: ignore[arg-type]
        num_real = min(num, size) if metrics["num_real"] == "auto" else metrics["num_real"]
        reference = prepare_reference(
            metric, datamodule, num_real, metrics["cache_dir"], metrics["batch_size"]
        )
    values = score_generator(
        metric,
        lambda z: model.sample(z.shape[0], batch_size=z.shape[0], z=z),
        model.latent_dim,
        num,
        metrics["seed"],
        metrics["batch_size"],
    )
    proto = protocol(metric, num, metrics["seed"], reference, num_real, sampled_from(model))
    proto["devices"] = fabric.world_size
    return {
        "fid": values.get("fid"),
        "is_mean": values.get("is_mean"),
        "is_std": values.get("is_std"),
        "protocol": proto,
    }
