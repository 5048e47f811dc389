"""Build everything a config describes and run ``Trainer.fit``; used by ``train.py``.

Every value is checked by what consumes it (:mod:`gan_zoo.validation`): the run-level keys by
:class:`RunSettings`, every ``_target_`` node by its constructor. Building is free of side
effects, so a bad value anywhere stops the run before anything is written.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.strategies import DDPStrategy
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_zoo.checkpointing import (
    AtomicCheckpointIO,
    ConfigInCheckpoint,
    ResumeState,
    check_resumable,
    read_checkpoint,
    resolve_ckpt_path,
)
from gan_zoo.checkpointing.load import locate
from gan_zoo.distributed import GAN_EQUIVALENT, STRATEGY_NAME, check_strategy
from gan_zoo.errors import ConfigError, ConfigValueError
from gan_zoo.loggers import continuation, redact_hydra_files, redact_secrets, wandb_logger
from gan_zoo.models.base import GAN
from gan_zoo.settings import RunSettings, validate_settings
from gan_zoo.validation import check_arguments

MISSING = "???"


def resolve(cfg: DictConfig, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The config (or its top-level ``keys``) as plain containers, every interpolation resolved
    and no key left ``???``."""
    try:
        if keys is None:
            resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
        else:
            resolved = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in keys}
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "config"
        reason = str(err).strip().splitlines()[0]
        raise ConfigValueError(key, "(unresolvable)", f"a resolvable value: {reason}") from None
    assert isinstance(resolved, dict)
    _refuse_missing(resolved, "")
    return {str(k): v for k, v in resolved.items()}


def _refuse_missing(node: Any, key: str) -> None:
    if node == MISSING:
        raise ConfigValueError(key, MISSING, "a value: the key is mandatory")
    if isinstance(node, dict):
        for name, child in node.items():
            _refuse_missing(child, f"{key}.{name}" if key else str(name))


def instantiate_node(node: Any, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node, **kwargs)`` whose errors are one line naming ``key``.

    gan_zoo's own targets check their arguments themselves (:func:`gan_zoo.validation.validated`);
    for third-party ones (Lightning, torch, loggers) the names and types are checked against the
    signature first, and their own range errors are passed on as one line.
    """
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    target = locate(node.get("_target_")) if isinstance(node, dict) else None
    if isinstance(node, dict) and target is None:
        valid = "an importable class or function"
        raise ConfigValueError(f"{key}._target_", node.get("_target_"), valid)
    if target is not None and not getattr(target, "__module__", "").startswith("gan_zoo."):
        check_arguments(target, {k: v for k, v in node.items() if k not in kwargs}, key)
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as err:
        raise _one_line(err, key) from None
    except ConfigValueError as err:
        raise err.with_prefix(key) from None


def _one_line(err: BaseException, key: str) -> ConfigError:
    cause: BaseException | None = err
    while cause is not None and isinstance(cause, InstantiationException):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ConfigValueError):
        return cause.with_prefix(key)
    if isinstance(cause, ConfigError):
        return cause
    reason = str(cause or err).strip().splitlines()
    return ConfigError(f"{key}: {reason[0] if reason else type(cause).__name__}")


def check_shapes(
    datamodule: Any, generator: torch.nn.Module, discriminator: torch.nn.Module
) -> None:
    """Refuse data whose sample shape the nets were not built for, before any training."""
    data_shape = tuple(getattr(datamodule, "sample_shape", ()))
    for key, net, attr in (
        ("net.generator", generator, "output_shape"),
        ("net.discriminator", discriminator, "input_shape"),
    ):
        net_shape = tuple(getattr(net, attr, data_shape))
        if data_shape and net_shape != data_shape:
            raise ConfigValueError(
                key,
                f"{type(net).__name__} with {attr} {net_shape}",
                f"nets for the data's sample shape {data_shape} (check image_size/channels)",
            )


def build(cfg: DictConfig | dict[str, Any]) -> tuple[pl.LightningDataModule, GAN]:
    """Instantiate the data module and the model (with its nets) and check they fit together."""
    config = resolve(cfg, ("data", "net", "model")) if isinstance(cfg, DictConfig) else cfg
    datamodule = instantiate_node(config["data"], "data")
    generator = instantiate_node(config["net"]["generator"], "net.generator")
    discriminator = instantiate_node(config["net"]["discriminator"], "net.discriminator")
    nets = {"generator": generator, "discriminator": discriminator}
    model = instantiate_node(config["model"], "model", **nets)
    check_shapes(datamodule, model.generator, model.discriminator)
    return datamodule, model


def read_data_index(datamodule: pl.LightningDataModule, n_critic: int) -> None:
    """Set the data up now when that needs no download, so an empty folder, unreadable images
    (``strict``) or a batch the data cannot fill fail before anything trains, with the ``data.``
    key. Lightning's own ``setup`` call is then a no-op; data that downloads is set up by
    Lightning after ``prepare_data``, and checked then.
    """
    if type(datamodule).prepare_data is not pl.LightningDataModule.prepare_data:
        return
    try:
        datamodule.setup("fit")
        check_fits = getattr(datamodule, "check_fits", None)
        if check_fits is not None:
            check_fits(n_critic)
    except ConfigValueError as err:
        raise err.with_prefix("data") from None


def checkpoint_dir(config: dict[str, Any]) -> Path:
    """Where the run writes checkpoints: the model checkpoint's ``dirpath`` (else the
    preemption handler's, else ``<run dir>/checkpoints``); ``ckpt_path=last`` looks there."""
    for node in ((config.get("callbacks") or {}).get("model_checkpoint"), config.get("preemption")):
        if isinstance(node, dict) and node.get("dirpath"):
            return Path(node["dirpath"])
    return Path(config["paths"]["output_dir"]) / "checkpoints"


def choose_strategy(trainer_node: dict[str, Any]) -> Any:
    """The strategy to run: gan_zoo's ``gan_ddp`` wherever Lightning would run its own DDP.

    ``ddp`` names Lightning's DDP, and ``auto`` picks it for several devices or nodes; both
    become ``gan_ddp``. Which one ``auto`` picks is Lightning's own decision, read off a Trainer
    built with the same accelerator, devices and nodes (its start-up lines silenced).
    """
    requested = trainer_node.get("strategy", "auto")
    if requested != "auto" or not isinstance(requested, str):
        return GAN_EQUIVALENT.get(requested, requested) if isinstance(requested, str) else requested
    probe = {
        k: trainer_node[k] for k in ("accelerator", "devices", "num_nodes") if k in trainer_node
    }
    quiet = logging.getLogger("lightning.pytorch")
    level, quiet.level = quiet.level, logging.WARNING
    try:
        with warnings.catch_warnings():  # the real Trainer repeats what is worth saying
            warnings.simplefilter("ignore")
            chosen = pl.Trainer(**probe, logger=False, enable_checkpointing=False).strategy
    except Exception:  # Lightning refuses the devices: the real Trainer says why, with our prefix
        return requested
    finally:
        quiet.setLevel(level)
    return STRATEGY_NAME if isinstance(chosen, DDPStrategy) else requested


def build_callbacks(config: dict[str, Any], record: dict[str, Any]) -> list[pl.Callback]:
    """The config's callbacks (null entries skipped), the run config ``record`` for checkpoints,
    then the fault-tolerance ones in the order training needs them: ``nan_guard``,
    :class:`ResumeState`, and the preemption handler last, which must save after every other
    callback has finished the batch."""
    nodes = config.get("callbacks") or {}
    callbacks = [instantiate_node(c, f"callbacks.{k}") for k, c in nodes.items() if c is not None]
    if not config["trainer"].get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    callbacks.append(ConfigInCheckpoint(record))
    if config.get("nan_guard") is not None:
        callbacks.append(instantiate_node(config["nan_guard"], "nan_guard"))
    callbacks.append(ResumeState())
    if config.get("preemption") is not None:
        callbacks.append(instantiate_node(config["preemption"], "preemption"))
    return callbacks


def build_loggers(config: dict[str, Any], ckpt_path: str | None) -> list[Any]:
    """The config's loggers; a W&B logger continues the run of the checkpoint resumed from."""
    loggers = []
    for name, node in (config.get("logger") or {}).items():
        if node is None:
            continue
        extra: dict[str, Any] = {}
        if ckpt_path is not None and locate(node.get("_target_")) is wandb_logger:
            extra = continuation(node.get("save_dir", "."), ckpt_path)
        loggers.append(instantiate_node(node, f"logger.{name}", **extra))
    return loggers


@dataclass
class Run:
    """Everything a training run needs, built and checked; :func:`train` fits it."""

    trainer: pl.Trainer
    model: GAN
    datamodule: pl.LightningDataModule
    ckpt_path: str | None
    checkpoint_dir: Path
    config: dict[str, Any]  # resolved, secrets redacted: what checkpoints and loggers record


def prepare(cfg: DictConfig) -> Run:
    """Check every value and build the run, writing nothing.

    The checkpoint to resume from is read safely and matched against the model.
    """
    config = resolve(cfg)
    validate_settings(RunSettings, config)
    folder = checkpoint_dir(config)
    ckpt_path = resolve_ckpt_path(config.get("ckpt_path"), folder)
    checkpoint = read_checkpoint(ckpt_path, mmap=True) if ckpt_path else None
    pl.seed_everything(config["seed"], workers=True)
    datamodule, model = build(config)
    read_data_index(datamodule, model.n_critic)
    datamodule.shuffle_seed = config["seed"]  # type: ignore[attr-defined]  # a GANDataModule
    if checkpoint is not None:
        check_resumable(checkpoint, model, str(ckpt_path))
    del checkpoint  # the look is over; Lightning reads the file itself
    record = redact_secrets(config)
    callbacks = build_callbacks(config, record)
    loggers = build_loggers(config, ckpt_path)
    io_node = config.get("checkpoint_io")
    checkpoint_io = instantiate_node(io_node, "checkpoint_io") if io_node else AtomicCheckpointIO()
    trainer_node = {**config["trainer"], "strategy": choose_strategy(config["trainer"])}
    trainer: pl.Trainer = instantiate_node(
        trainer_node,
        "trainer",
        callbacks=callbacks,
        logger=loggers or False,
        plugins=[checkpoint_io],
    )
    try:
        check_strategy(trainer.strategy)
    except ConfigValueError as err:
        raise err.with_prefix("trainer") from None
    return Run(trainer, model, datamodule, ckpt_path, folder, record)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train the run ``cfg`` describes (:func:`prepare`, then ``Trainer.fit``).

    Returns the run directory, the path of the last checkpoint and the final value of every
    logged metric (``trainer.callback_metrics``: the last losses and the last evaluation).
    """
    redact_hydra_files(cfg.paths.output_dir)  # Hydra wrote the command line before we ran
    run = prepare(cfg)
    for logger in run.trainer.loggers:
        logger.log_hyperparams(run.config)
    run.trainer.fit(
        run.model, datamodule=run.datamodule, ckpt_path=run.ckpt_path, weights_only=True
    )
    last = run.checkpoint_dir / "last.ckpt"
    run_dir = run.config["paths"]["output_dir"]
    metrics = {name: float(value) for name, value in run.trainer.callback_metrics.items()}
    return {
        "run_dir": run_dir,
        "last_ckpt": str(last) if last.exists() else None,
        "metrics": metrics,
    }
