"""ModelCheckpoint whose ``last.ckpt`` always holds the final generator step."""

from __future__ import annotations

import warnings
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint


class GANCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, plus a final ``last.ckpt`` when training ends between saves.

    Lightning writes ``last.ckpt`` at the end only if no "last" was written before, so a run of
    3 generator steps with ``every_n_train_steps=2`` would leave ``last.ckpt`` at step 2.
    """

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        # Lightning warns that manual optimization saves the post-step state: that is exactly
        # what a GAN checkpoint should hold (the step it names is complete), so hush it.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optim")
            super().on_train_batch_end(trainer, pl_module, *args, **kwargs)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            return
        super().on_train_end(trainer, pl_module)
