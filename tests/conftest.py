"""Shared fixtures: a runner for the real command-line entry points."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import ROOT


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python <script> <args>`` from the repo root with W&B forced offline."""

    def run(
        script: str, *args: str, timeout: float = 600, env: dict[str, str | None] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "WANDB_MODE": "offline", "PYTHONHASHSEED": "0", **(env or {})}
        full_env = {k: v for k, v in full_env.items() if v is not None}  # None unsets a variable
        return subprocess.run(
            [sys.executable, str(ROOT / script), *args],
            cwd=ROOT,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
