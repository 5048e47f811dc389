"""ModelCheckpoint whose final ``last.ckpt`` a longer run resumes exactly."""

from __future__ import annotations

import warnings
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

from gan_zoo.compat import last_step_saved, save_last


class GANCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, writing ``last.ckpt`` on the batch that reaches ``max_steps``.

    Lightning writes the final ``last.ckpt`` in ``on_train_end``, after its fit loop has closed
    the epoch: a run extended from it (``trainer.max_steps`` raised, same seed) starts a new epoch
    and reads other batches than a run that went straight to the new ``max_steps``. Here the
    batch that reaches ``max_steps`` writes it, with the loop counters and the data position in
    the middle of the epoch, like any step checkpoint, so training longer from it is bitwise the
    longer run. When training ends otherwise (``max_epochs``, an early stop) ``on_train_end``
    writes it, also when a step checkpoint was written earlier (Lightning skips it then).
    """

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        # Lightning warns that manual optimization saves the post-step state: that is exactly
        # what a GAN checkpoint should hold (the generator step it names is complete).
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optim")
            super().on_train_batch_end(trainer, pl_module, *args, **kwargs)
        final = trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps
        if final and self.save_last and not getattr(trainer, "fast_dev_run", False):
            self._save_last_once(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.save_last and not getattr(trainer, "fast_dev_run", False):
            self._save_last_once(trainer)

    def _save_last_once(self, trainer: pl.Trainer) -> None:
        if last_step_saved(self) != trainer.global_step or not self.last_model_path:
            save_last(self, trainer)
