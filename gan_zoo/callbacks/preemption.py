"""Preemption: on SIGTERM, finish the batch, save a resumable checkpoint, and exit cleanly.

Clusters announce preemption with SIGTERM (SLURM sends it to every task, Kubernetes to the
container's first process) and SIGKILL a grace period later. The signal handler only sets a
flag; at the end of the current batch every rank agrees on the flag (one all-reduce of an int
over a gloo group, on the CPU: no GPU sync), writes one checkpoint together (after a whole
generator step, as every checkpoint) and exits with ``exit_code``.

Lightning's own SIGTERM handler is replaced while training runs: it broadcasts from inside the
signal handler and exits without a checkpoint.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import annotated_types as at
import lightning.pytorch as pl
import torch
import torch.distributed as dist
from pydantic import Strict

from gan_zoo.errors import check
from gan_zoo.validation import validated


class Preempted(SystemExit):
    """Raised on every rank after the preemption checkpoint is written; exits the process."""


class Preemption(pl.Callback):
    """Save ``<dirpath>/<filename>`` and exit when one of ``signals`` arrives.

    training.py appends it after the other callbacks, so the states it saves are those after
    every callback's ``on_train_batch_end`` (Lightning runs ``ModelCheckpoint`` later still;
    it only writes files). Not a Lightning ``Checkpoint`` subclass, so it neither replaces
    Lightning's default ``ModelCheckpoint`` nor conflicts with ``enable_checkpointing=false``.

    Args:
        dirpath: where to write; ``<default_root_dir>/checkpoints`` when None.
        filename: checkpoint file name (``last.ckpt`` is what ``ckpt_path=last`` looks for first).
        exit_code: process exit status after the save (0: a clean exit; some schedulers only
            restart jobs that exit non-zero, e.g. 143 = 128 + SIGTERM).
        signals: signal names that mean "preempted".
    """

    @validated
    def __init__(
        self,
        dirpath: str | None = None,
        filename: str = "last.ckpt",
        exit_code: Annotated[int, Strict(), at.Ge(0), at.Le(255)] = 0,
        signals: list[str] = ["SIGTERM"],  # noqa: B006 (validated copy)
    ) -> None:
        check(filename.endswith(".ckpt"), "filename", filename, "a name ending in .ckpt")
        valid = sorted(s.name for s in signal.valid_signals() if isinstance(s, signal.Signals))
        for name in signals:
            check(name in valid, "signals", name, "signal names such as SIGTERM, SIGUSR1")
        self.dirpath, self.filename, self.exit_code = dirpath, filename, exit_code
        self.signals = [signal.Signals[name] for name in signals]
        self.requested = False
        self._previous: dict[signal.Signals, Any] = {}
        self._group: Any = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = str(Path(trainer.default_root_dir) / "checkpoints")
        if _distributed() and dist.get_backend() != "gloo":
            self._group = dist.new_group(backend="gloo")  # a CPU channel for one int per batch

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.requested = False
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True  # acted on at the end of the batch, never inside the handler

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self._agreed():
            return
        path = Path(str(self.dirpath)) / self.filename
        trainer.save_checkpoint(path)  # every rank dumps, rank 0 writes, then a barrier
        if trainer.is_global_zero:
            print(
                f"preempted: saved {path} at generator step {trainer.global_step}; resume with "
                "the same hydra.run.dir and ckpt_path=last",
                file=sys.stderr,
                flush=True,
            )
        raise Preempted(self.exit_code)

    def _agreed(self) -> bool:
        """Whether any rank was signalled (just the local flag without DDP)."""
        if not _distributed():
            return self.requested
        flag = torch.tensor([int(self.requested)], dtype=torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group)
        return bool(flag.item())  # a CPU tensor: no device sync

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        for signum, handler in self._previous.items():
            if handler is not None:
                signal.signal(signum, handler)
        self._previous = {}


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
