"""A progress bar that shows the generator step, the unit gan_zoo counts training in."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar


class GANProgressBar(TQDMProgressBar):
    """Lightning's bar (which counts batches, i.e. critic steps) plus the generator step and the
    latest ``d_loss`` and ``g_loss``.

    The losses are read from ``trainer.callback_metrics`` only when the bar refreshes (every
    ``refresh_rate`` batches), so the bar costs no host-device sync on other steps; logging them
    with ``prog_bar=True`` would convert them to Python floats on every step.
    """

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        shown: dict[str, Any] = {"g_step": trainer.global_step}
        for key in ("train/d_loss", "train/g_loss"):
            value = trainer.callback_metrics.get(key)
            if value is not None:
                shown[key.split("/")[1]] = f"{float(value):.4g}"
        return {**shown, **items}
