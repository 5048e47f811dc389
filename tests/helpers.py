"""Test helpers: the real configs composed with CPU-small overrides."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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
