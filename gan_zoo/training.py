"""Build everything a config describes and run ``Trainer.fit``; used by ``train.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.strategies import DDPStrategy
from omegaconf import DictConfig, OmegaConf

from gan_zoo.callbacks import ConfigInCheckpoint
from gan_zoo.errors import ConfigValueError, check
from gan_zoo.models.base import GAN


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
    """DDP for multi-device runs.

    The discriminator step leaves the generator's parameters without gradients, which plain DDP
    rejects (Lightning issues 20328, 20866), hence ``find_unused_parameters=True`` for now.
    """
    strategy = trainer_cfg.get("strategy", "auto")
    devices, nodes = trainer_cfg.get("devices", 1), trainer_cfg.get("num_nodes", 1)
    many = nodes > 1 or (isinstance(devices, int) and (devices > 1 or devices == -1))
    many = many or (not isinstance(devices, (int, str)) and len(devices) > 1)
    if strategy == "auto" and many:
        return DDPStrategy(find_unused_parameters=True)
    return strategy


def validate(cfg: DictConfig) -> None:
    """Checks on keys no constructor sees, before any work starts."""
    max_steps = cfg.trainer.get("max_steps", -1)
    check(
        isinstance(max_steps, int) and (max_steps >= 1 or max_steps == -1),
        "trainer.max_steps",
        max_steps,
        "an integer >= 1 (generator steps), or -1 for no limit",
    )
    check(isinstance(cfg.seed, int), "seed", cfg.seed, "an integer")


def build(cfg: DictConfig) -> tuple[pl.LightningDataModule, GAN]:
    """Instantiate the data module and the model (with its nets) and check they fit together."""
    datamodule = instantiate_group(cfg.data, "data")
    generator = instantiate_group(cfg.net.generator, "net.generator")
    discriminator = instantiate_group(cfg.net.discriminator, "net.discriminator")
    model = instantiate_group(cfg.model, "model", generator=generator, discriminator=discriminator)
    check_shapes(datamodule, model.generator, model.discriminator)
    return datamodule, model


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train the run ``cfg`` describes. Returns the run directory and the last checkpoint path."""
    validate(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule, model = build(cfg)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(resolved, dict)
    callbacks = [instantiate_group(c, f"callbacks.{k}") for k, c in cfg.callbacks.items()]
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    callbacks.append(ConfigInCheckpoint(resolved))
    loggers = [instantiate_group(c, f"logger.{k}") for k, c in cfg.logger.items()]
    trainer: pl.Trainer = instantiate_group(
        cfg.trainer,
        "trainer",
        callbacks=callbacks,
        logger=loggers or False,
        strategy=_strategy(cfg.trainer),
    )
    for logger in loggers:
        logger.log_hyperparams(resolved)
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    return {"run_dir": cfg.paths.output_dir, "last_ckpt": str(last) if last.exists() else None}
