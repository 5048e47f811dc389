"""Build everything a config describes and run ``Trainer.fit``; used by ``train.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from omegaconf import DictConfig, OmegaConf

from gan_zoo.callbacks import ConfigInCheckpoint
from gan_zoo.checkpoint import read_checkpoint
from gan_zoo.checkpoint_io import AtomicCheckpointIO
from gan_zoo.distributed import choose_strategy
from gan_zoo.errors import ConfigValueError
from gan_zoo.loggers import ResumableWandbLogger, redact_hydra_files, redact_secrets
from gan_zoo.models.base import GAN
from gan_zoo.resume import WANDB_ID_KEY, ResumeState, check_resumable, resolve_ckpt_path
from gan_zoo.schemas import validate_config


def instantiate_group(node: Any, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` whose :class:`ConfigValueError` names the full config key."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause: BaseException | None = err
        while cause is not None and not isinstance(cause, ConfigValueError):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, ConfigValueError):
            raise cause.with_prefix(key) from None
        raise
    except ConfigValueError as err:
        raise err.with_prefix(key) from None


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


def _strategy(trainer_cfg: DictConfig) -> Any:
    """The ``trainer.strategy`` to run: :class:`GANDDPStrategy` for every DDP run.

    ``ddp``, and ``auto`` on more than one device in all (``devices`` as Lightning parses it,
    times ``num_nodes``); plain DDP wraps the LightningModule and rejects a critic step that
    leaves the generator's parameters without gradients (Lightning issues 20328, 20866).
    Lightning's other parallel strategies are refused; see ``gan_zoo.distributed``.
    """
    trainer = OmegaConf.to_container(trainer_cfg, resolve=True)
    assert isinstance(trainer, dict)
    try:
        return choose_strategy(
            trainer.get("strategy", "auto"),
            trainer.get("accelerator", "auto"),
            trainer.get("devices", "auto"),
            trainer.get("num_nodes", 1),
        )
    except ConfigValueError as err:
        raise err.with_prefix("trainer") from None


def build(cfg: DictConfig) -> tuple[pl.LightningDataModule, GAN]:
    """Instantiate the data module and the model (with its nets) and check they fit together."""
    datamodule = instantiate_group(cfg.data, "data")
    generator = instantiate_group(cfg.net.generator, "net.generator")
    discriminator = instantiate_group(cfg.net.discriminator, "net.discriminator")
    model = instantiate_group(cfg.model, "model", generator=generator, discriminator=discriminator)
    check_shapes(datamodule, model.generator, model.discriminator)
    return datamodule, model


def read_data_index(datamodule: pl.LightningDataModule) -> None:
    """Set the data up now when that needs no download, so an empty folder or unreadable images
    (``strict``) fail before anything trains, with the ``data.`` key. Lightning's own ``setup``
    call is then a no-op; data that downloads is set up by Lightning after ``prepare_data``.
    """
    if type(datamodule).prepare_data is not pl.LightningDataModule.prepare_data:
        return
    try:
        datamodule.setup("fit")
    except ConfigValueError as err:
        raise err.with_prefix("data") from None


def fault_tolerance(cfg: DictConfig) -> tuple[list[pl.Callback], list[Any]]:
    """Callbacks and plugins of docs/fault_tolerance.md, in the order training needs them.

    ``nan_guard`` and ``preemption`` (top-level config nodes, so ``callbacks=none`` keeps them)
    come after the config's callbacks, then :class:`ResumeState`, then the preemption handler,
    which must save after every other callback has finished the batch.
    """
    callbacks: list[pl.Callback] = []
    if cfg.get("nan_guard") is not None:
        callbacks.append(instantiate_group(cfg.nan_guard, "nan_guard"))
    callbacks.append(ResumeState())
    if cfg.get("preemption") is not None:
        callbacks.append(instantiate_group(cfg.preemption, "preemption"))
    io_node = cfg.get("checkpoint_io")
    checkpoint_io = instantiate_group(io_node, "checkpoint_io") if io_node else AtomicCheckpointIO()
    return callbacks, [checkpoint_io]


def resume_from(cfg: DictConfig) -> tuple[str | None, dict[str, Any] | None]:
    """The checkpoint to resume from (``ckpt_path``, ``last`` resolved) and a cheap look at it."""
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), cfg.paths.output_dir)
    return ckpt_path, (read_checkpoint(ckpt_path, mmap=True) if ckpt_path else None)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train the run ``cfg`` describes. Returns the run directory and the last checkpoint path.

    Every config value is checked first (:mod:`gan_zoo.schemas`), and the checkpoint to resume
    from is read safely and matched against the model, before anything is trained.
    """
    redact_hydra_files(cfg.paths.output_dir)  # Hydra wrote the command line before we ran
    resolved = redact_secrets(validate_config(cfg))
    strategy = _strategy(cfg.trainer)  # refuses unsupported parallel strategies before any work
    ckpt_path, checkpoint = resume_from(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule, model = build(cfg)
    read_data_index(datamodule)
    datamodule.shuffle_seed = cfg.seed  # type: ignore[attr-defined]  # a GANDataModule
    if checkpoint is not None:
        check_resumable(checkpoint, model, str(ckpt_path))
    # `callbacks.fid=null` (Hydra's way to drop a node) leaves a None entry: skip it.
    callbacks = [
        instantiate_group(c, f"callbacks.{k}") for k, c in cfg.callbacks.items() if c is not None
    ]
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    callbacks.append(ConfigInCheckpoint(resolved))
    safety_callbacks, plugins = fault_tolerance(cfg)
    loggers = [instantiate_group(c, f"logger.{k}") for k, c in cfg.logger.items() if c is not None]
    for logger in loggers:
        if checkpoint is not None and isinstance(logger, ResumableWandbLogger):
            logger.continue_run(checkpoint.get(WANDB_ID_KEY), ckpt_path)
    trainer: pl.Trainer = instantiate_group(
        cfg.trainer,
        "trainer",
        callbacks=callbacks + safety_callbacks,
        logger=loggers or False,
        strategy=strategy,
        plugins=plugins,
    )
    for logger in loggers:
        logger.log_hyperparams(resolved)
    del checkpoint  # the look is over; Lightning reads the file itself
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    return {"run_dir": cfg.paths.output_dir, "last_ckpt": str(last) if last.exists() else None}
