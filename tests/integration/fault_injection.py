"""Faults for the crash-safety tests: real signals and slow or interrupted checkpoint writes.

Used through the config (``+callbacks.fault._target_=tests.integration.fault_injection.SignalAt``,
``checkpoint_io._target_=...``), so the code under test runs unchanged in a real ``train.py``.
"""

from __future__ import annotations

import os
import signal
import time
from typing import IO, Any

import lightning.pytorch as pl

from gan_zoo.checkpointing.atomic_io import AtomicCheckpointIO


class SignalAt(pl.Callback):
    """Send ``signal`` to this process at the end of its ``at_batch``-th batch (1-based; a
    training batch is one generator step).

    Counted from the start of this process, so a resumed run is not signalled again at the
    same place unless it is given the callback again.
    """

    def __init__(self, at_batch: int, signal: str = "SIGTERM") -> None:
        self.at_batch, self.signum = at_batch, getattr(__import__("signal"), signal)
        self.batches = 0

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.batches += 1
        if self.batches == self.at_batch:
            os.kill(os.getpid(), self.signum)


class SlowCheckpointIO(AtomicCheckpointIO):
    """The atomic writer with each ``write`` of the serializer slowed down by ``delay`` seconds.

    Makes saves long enough for a kill at a random moment to land inside one.
    """

    def __init__(self, delay: float = 0.002) -> None:
        self.delay = delay

    def write(self, checkpoint: dict[str, Any], file: IO[bytes]) -> None:
        super().write(checkpoint, _SlowFile(file, self.delay))


class KillDuringWrite(AtomicCheckpointIO):
    """The atomic writer, SIGKILLing its own process half-way through the ``at_save``-th write."""

    def __init__(self, at_save: int) -> None:
        self.at_save, self.saves = at_save, 0

    def write(self, checkpoint: dict[str, Any], file: IO[bytes]) -> None:
        self.saves += 1
        if self.saves < self.at_save:
            return super().write(checkpoint, file)
        super().write(checkpoint, _KillingFile(file))


class _SlowFile:
    def __init__(self, file: IO[bytes], delay: float) -> None:
        self.file, self.delay = file, delay

    def write(self, data: bytes) -> int:
        time.sleep(self.delay)
        return self.file.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)


class _KillingFile:
    """Passes writes through until about half the bytes a checkpoint takes, then SIGKILLs."""

    def __init__(self, file: IO[bytes], after_bytes: int = 20_000) -> None:
        self.file, self.left = file, after_bytes

    def write(self, data: bytes) -> int:
        written = self.file.write(data)
        self.left -= written
        if self.left <= 0:
            self.file.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)


class InjectedCrash(RuntimeError):
    """The exception :class:`RaiseAt` raises: a crash that lets the process exit normally."""


class RaiseAt(pl.Callback):
    """Raise :class:`InjectedCrash` at the end of this process's ``at_batch``-th batch."""

    def __init__(self, at_batch: int) -> None:
        self.at_batch, self.batches = at_batch, 0

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.batches += 1
        if self.batches == self.at_batch:
            raise InjectedCrash(f"injected crash after batch {self.batches}")


class PoisonAt(pl.Callback):
    """Write a NaN into the real batch of this process's ``at_batch``-th batch (1-based)."""

    def __init__(self, at_batch: int) -> None:
        self.at_batch, self.batches = at_batch, 0

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: Any, batch: Any, *args: Any
    ) -> None:
        self.batches += 1
        if self.batches == self.at_batch:
            batch.view(-1)[0] = float("nan")
