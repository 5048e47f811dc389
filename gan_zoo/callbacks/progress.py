"""A progress bar showing the latest critic and generator losses."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar

SHOWN_LOSSES = ("train/d_loss", "train/g_loss")


class GANProgressBar(TQDMProgressBar):
    """Lightning's bar (one tick per training batch, i.e. per generator step) with the latest
    ``d_loss`` and ``g_loss``.

    The losses are read from ``trainer.callback_metrics`` only when the bar refreshes (every
    ``refresh_rate`` batches): one host read per refresh. Logging them with ``prog_bar=True``
    instead would convert them to Python floats, a device sync on a GPU, on every step.
    """

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        shown = {
            key.split("/")[1]: f"{float(trainer.callback_metrics[key]):.4g}"
            for key in SHOWN_LOSSES
            if key in trainer.callback_metrics
        }
        return {**shown, **items}
