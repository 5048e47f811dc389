"""A progress bar that shows the generator step, the unit gan_zoo counts training in."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar
from torch import Tensor

SHOWN_LOSSES = ("train/d_loss", "train/g_loss")


class GANProgressBar(TQDMProgressBar):
    """Lightning's bar (which counts batches, i.e. critic steps) plus the generator step and the
    latest ``d_loss`` and ``g_loss``.

    The losses are read from ``trainer.callback_metrics`` only when the bar refreshes (every
    ``refresh_rate`` batches), and converted to text only when a new value was logged (the model
    logs on the steps Lightning flushes), so the bar costs no host-device sync on other steps;
    logging them with ``prog_bar=True`` would convert them to Python floats on every step.

    The bar's total is the number of batches (critic steps) left in the epoch: Lightning's own
    takes ``max_steps`` for a batch count, which is ``n_critic`` times too small.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # key -> (the tensor last converted, its version then, its text). Holding the tensor
        # keeps its memory in use, so a new value can never sit at the same address.
        self._shown: dict[str, tuple[Tensor, int, str]] = {}

    @property
    def total_train_batches(self) -> int | float:
        """Batches in this epoch: ``min(batches per epoch, max_steps * n_critic - batches done)``.

        Called by Lightning when an epoch starts, so "done" counts whole n_critic cycles plus the
        position inside the current one.
        """
        trainer = self.trainer
        batches = trainer.num_training_batches
        if trainer.max_steps is None or trainer.max_steps < 0:  # -1: no step limit
            return batches
        module = trainer.lightning_module
        n_critic = int(getattr(module, "n_critic", 1))
        done = trainer.global_step * n_critic + int(getattr(module, "critic_steps_in_cycle", 0))
        return min(batches, max(trainer.max_steps * n_critic - done, 0))

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        shown: dict[str, Any] = {"g_step": trainer.global_step}
        for key in SHOWN_LOSSES:
            value = trainer.callback_metrics.get(key)
            if value is not None:
                shown[key.split("/")[1]] = self._text(key, value)
        return {**shown, **items}

    def _text(self, key: str, value: Tensor | float) -> str:
        """``value`` as text; ``float()`` (a device sync on GPU) only for a newly logged value."""
        if not isinstance(value, Tensor):
            return f"{value:.4g}"
        cached = self._shown.get(key)
        if cached is not None and _same_value(cached[0], cached[1], value):
            return cached[2]
        text = f"{float(value):.4g}"
        self._shown[key] = (value, value._version, text)
        return text


def _same_value(old: Tensor, old_version: int, new: Tensor) -> bool:
    """Whether ``new`` holds the value ``old`` held at ``old_version``.

    Not ``old is new``: Lightning hands out a fresh ``.detach()`` of its cached value on every
    read of ``callback_metrics``. A detached view shares the memory and the version counter
    (bumped by in-place writes), and a newly logged value is a new tensor (Lightning clones it),
    at another address while ``old`` is held: same address and version, same value.
    """
    same_kind = old.device == new.device and old.dtype == new.dtype and old.shape == new.shape
    return same_kind and old.data_ptr() == new.data_ptr() and new._version == old_version
