"""Shared fixtures: the real configs composed with CPU-small overrides, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "configs"
MODELS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))

# Small enough to train a few generator steps of any model in seconds on 2 CPU cores.
FAST = ["debug=fast", "logger=csv", "trainer.enable_progress_bar=false"]


def compose_train(overrides: Sequence[str] = (), run_dir: Path | None = None) -> DictConfig:
    """Compose the real ``configs/train.yaml`` as ``train.py`` would, outside a Hydra run."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=False)
    with open_dict(cfg):
        # ${hydra:...} resolvers only exist inside a Hydra run; fix the values they would give.
        cfg.paths.output_dir = str(run_dir or ROOT / "outputs" / "pytest")
        cfg.run_name = "pytest"
    return cfg


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python <script> <args>`` from the repo root with W&B forced offline."""

    def run(
        script: str, *args: str, timeout: float = 600, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "WANDB_MODE": "offline", "PYTHONHASHSEED": "0", **(env or {})}
        return subprocess.run(
            [sys.executable, str(ROOT / script), *args],
            cwd=ROOT,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
