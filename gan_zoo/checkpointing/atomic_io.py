"""Crash-safe checkpoint files: a checkpoint path holds the old file or the new one, never half.

Lightning's ``TorchCheckpointIO`` writes through fsspec without ``fsync``: after a power loss or
a kill at the wrong moment the file can be empty or truncated. :class:`AtomicCheckpointIO`
writes to a temp file in the same directory, ``fsync``s it, renames it over the target with
``os.replace`` (atomic on POSIX) and ``fsync``s the directory so the rename itself is durable.
Loading goes through :func:`gan_zoo.checkpointing.read_checkpoint`: ``weights_only=True`` and a
one-line error naming the file.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import IO, Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from gan_zoo.checkpointing.load import read_checkpoint


def temp_path_for(path: Path) -> Path:
    """A fresh hidden temp name next to ``path`` (``.last.ckpt.tmp-<pid>-<hex>``)."""
    return path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` with atomic, durable writes and safe, one-line-error loads.

    Local paths only (the temp file must live on the same filesystem as the target).
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` to ``path``: temp file, flush, fsync, ``os.replace``, fsync dir."""
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = temp_path_for(path)
        try:
            with open(temp, "xb") as file:
                self.write(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)

    def write(self, checkpoint: dict[str, Any], file: IO[bytes]) -> None:
        """Serialize ``checkpoint`` into the open temp ``file`` (``torch.save``)."""
        torch.save(checkpoint, file)

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        """Read ``path`` with ``weights_only=True`` whatever is asked: never unpickle code."""
        return read_checkpoint(path)
