"""Shared fixtures: a runner for the real command-line entry points."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
import torch

from tests.helpers import ROOT
from tests.warm_cli import run_python

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers share the cores: one thread each (and in the processes they start) instead
    # of two each, which would only make them wait for each other.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


def run_script(
    script: str, *args: str, timeout: float = 600, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python <script> <args>`` from the repo root with W&B forced offline (in a fork of a
    warm interpreter: ``tests/warm_cli.py``)."""
    full_env = {**os.environ, "WANDB_MODE": "offline", "PYTHONHASHSEED": "0", **(env or {})}
    full_env = {k: v for k, v in full_env.items() if v is not None}  # None unsets a variable
    argv = [sys.executable, str(ROOT / script), *args]
    return run_python(argv, cwd=ROOT, env=full_env, timeout=timeout)


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """:func:`run_script` as a fixture (module-scoped fixtures call the function itself)."""
    return run_script


@pytest.fixture(autouse=True)
def _restore_process_settings() -> Iterator[None]:
    """The experiments' entry points, called in-process by tests, set what a command-line run
    may set for itself (torch threads, Lightning's log level); restore both after each test so
    that the next test sees the process as it was."""
    threads, logger = torch.get_num_threads(), logging.getLogger("lightning.pytorch")
    level = logger.level
    yield
    torch.set_num_threads(threads)
    logger.setLevel(level)


@pytest.fixture
def one_thread() -> None:
    """One torch thread for the test, as the metric subprocesses and CI workers run (restored
    afterwards by ``_restore_process_settings``)."""
    torch.set_num_threads(1)
