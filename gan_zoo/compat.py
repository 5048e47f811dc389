"""Every private API of Lightning, W&B and torch that gan_zoo relies on, in one place.

Each entry exists because the library offers no public way to do the job; each has a test in
``tests/unit/test_compat.py`` that fails loudly when an upgrade moves or changes it. The pinned
ranges in ``setup.cfg`` (``lightning>=2.6,<2.7``) are the ones those tests ran against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor, nn

# --------------------------------------------------------------------------------- torch
# Flat buffers for one collective per optimizer step (what DistributedDataParallel uses itself).
from torch._utils import _flatten_dense_tensors as flatten_dense_tensors  # noqa: E402
from torch._utils import _unflatten_dense_tensors as unflatten_dense_tensors  # noqa: E402

# Base classes naming "a norm layer with running statistics", "any BatchNorm", "any conv".
NormBase = nn.modules.batchnorm._NormBase
BatchNormBase = nn.modules.batchnorm._BatchNorm
ConvNd = nn.modules.conv._ConvNd
ConvTransposeNd = nn.modules.conv._ConvTransposeNd


def reversed_padding(layer: nn.Module) -> Any:
    """A conv layer's padding as ``F.pad`` wants it for non-zero padding modes."""
    return layer._reversed_padding_repeated_twice


def foreach_lerp_(targets: Sequence[Tensor], sources: Sequence[Tensor], weight: float) -> None:
    """``target += weight * (source - target)`` for every pair, in one fused kernel."""
    torch._foreach_lerp_(list(targets), list(sources), weight)


# ----------------------------------------------------------------------------- Lightning
def last_step_saved(callback: ModelCheckpoint) -> int:
    """The global step a ``ModelCheckpoint`` last saved at (Lightning keeps it private)."""
    return int(callback._last_global_step_saved)


def logs_flushed_this_step(trainer: Any) -> bool:
    """Whether Lightning sends this training step's ``self.log`` values to the loggers.

    Lightning decides it (every ``log_every_n_steps`` steps, every step of ``fast_dev_run``) but
    only exposes the answer on its logger connector. Each ``self.log`` key costs ~0.4 ms of host
    time in Lightning's result collection, a large share of a fast GPU step, for values of other
    steps that never reach a logger.
    """
    return bool(trainer._logger_connector.should_update_logs or trainer.fast_dev_run)


def save_last(callback: ModelCheckpoint, trainer: Any) -> None:
    """Make ``callback`` write its ``last.ckpt`` now, as it does itself at the end of training."""
    callback._save_last_checkpoint(trainer, callback._monitor_candidates(trainer))


def start_next_epoch_normally(trainer: Any) -> bool:
    """After a restart from a checkpoint taken on an epoch's last batch, let Lightning start
    the next epoch as the uninterrupted run did; whether it had to. Call in ``on_train_start``.

    Such a restart is Lightning's "restarted mid-epoch" stage: ``FitLoop.reset`` closes the
    saved epoch (counts it processed and completed), but ``on_advance_start`` still sees the
    stage and skips the next epoch's ``ready``/``started`` counts and its
    ``on_train_epoch_start`` hooks. A checkpoint written later in that epoch then holds
    ``ready == processed``, which the next restart misreads as "epoch finished" and moves the
    data one epoch ahead: a run preempted twice at epoch ends does not repeat the uninterrupted
    run (Lightning 2.6). Clearing the stage once ``reset`` has closed the epoch makes
    ``on_advance_start`` do what it does between two epochs of an uninterrupted run.
    """
    fit_loop = trainer.fit_loop
    epoch_loop = fit_loop.epoch_loop
    closed_by_reset = (
        fit_loop.restarted_mid_epoch
        and epoch_loop.restarted_on_train_batch_end
        and epoch_loop.batch_progress.is_last_batch
    )
    if closed_by_reset:
        fit_loop.reset_restart_stage()
    return bool(closed_by_reset)


__all__ = [
    "BatchNormBase",
    "ConvNd",
    "ConvTransposeNd",
    "NormBase",
    "flatten_dense_tensors",
    "foreach_lerp_",
    "last_step_saved",
    "logs_flushed_this_step",
    "reversed_padding",
    "save_last",
    "start_next_epoch_normally",
    "unflatten_dense_tensors",
]
