"""Store the resolved run config in every checkpoint, so a checkpoint alone rebuilds its model."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

CONFIG_KEY = "gan_zoo_config"


class ConfigInCheckpoint(pl.Callback):
    """Adds ``checkpoint["gan_zoo_config"]``: the run's resolved config as plain dicts and lists.

    Plain containers load under ``torch.load(weights_only=True)``, so :func:`gan_zoo.load_model`
    never has to unpickle code to rebuild the model.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[CONFIG_KEY] = self.config
