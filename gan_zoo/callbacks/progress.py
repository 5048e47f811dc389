"""A progress bar that shows the generator step, the unit gan_zoo counts training in."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar


class GANProgressBar(TQDMProgressBar):
    """Lightning's bar (which counts batches, i.e. critic steps) plus ``g_step`` as an integer."""

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("step", None)
        items.pop("v_num", None)
        return {"g_step": trainer.global_step, **items}
