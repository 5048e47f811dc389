"""Shared plumbing of the command-line entry points (train.py, generate.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TypeVar

from gan_zoo.checkpointing import CheckpointError
from gan_zoo.errors import ConfigError, DataUnavailableError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
GROUPS = ("model", "data", "net", "trainer", "logger", "callbacks", "experiment", "debug")
T = TypeVar("T")


def fail(message: str) -> NoReturn:
    """Print ``error: <message>`` as one line on stderr and exit with status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def check_group_overrides(argv: Sequence[str], config_dir: Path = CONFIG_DIR) -> None:
    """Refuse ``model=foo`` style overrides naming no config, listing the valid names.

    Hydra would refuse them too, but over several lines and after its own start-up; this keeps
    the promise of one line naming the key, the value and what is valid.
    """
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if not sep or key not in GROUPS or value in ("", "null"):
            continue
        valid = sorted(p.stem for p in (config_dir / key).glob("*.yaml"))
        for choice in value.split(","):
            if choice not in valid:
                fail(f"{key}={choice!r} is not a known {key} config; valid: {', '.join(valid)}")


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``, turning bad-input exceptions into one-line errors with exit status 2."""
    try:
        return fn()
    except (ConfigError, CheckpointError, DataUnavailableError) as err:
        fail(str(err))
