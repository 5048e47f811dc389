"""Test helpers: the real configs composed with CPU-small overrides, and tiny image folders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict
from PIL import Image

import gan_zoo.models  # noqa: F401  (registers the paper defaults the model configs compose)

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "configs"
MODELS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))

# Small enough to train a few generator steps of any model in seconds on 2 CPU cores.
# debug=fast also sets callbacks.fidelity and callbacks.mnist_metrics to null: with Inception
# weights on the machine FID/IS would cost about a minute of CPU per run, and the MNIST network's
# 2,000 fakes several times the run's own training.
FAST = ["debug=fast", "logger=csv", "trainer.enable_progress_bar=false"]
FAST_DEBUG_CONFIG = CONFIG_DIR / "debug" / "fast.yaml"


def _overrides(node: Any, prefix: str = "") -> list[str]:
    """``key=value`` command-line overrides setting every leaf of ``node`` (null ones too)."""
    if isinstance(node, dict):
        return [o for k, v in node.items() for o in _overrides(v, f"{prefix}{k}.")]
    if node is None:
        return [f"{prefix[:-1]}=null"]
    return [f"{prefix[:-1]}={str(node).lower() if isinstance(node, bool) else node}"]


def fast_keeping(*callbacks: str) -> list[str]:
    """FAST without debug=fast's nulls of the named ``callbacks`` entries, which so keep their
    default settings: debug=fast's other settings, read from configs/debug/fast.yaml so the two
    never drift."""
    fast = OmegaConf.to_container(OmegaConf.load(FAST_DEBUG_CONFIG))
    assert isinstance(fast, dict)
    for name in callbacks:
        assert fast["callbacks"][name] is None, f"debug=fast does not turn {name} off"
        del fast["callbacks"][name]
    return [*_overrides(fast), *FAST[1:]]


# FAST with the FID/IS callback kept, for the tests of that callback.
FAST_WITH_METRICS = fast_keeping("fidelity")


def leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b.c": value}`` for every leaf of a nested dict (lists are leaves)."""
    if not isinstance(node, dict):
        return {prefix[:-1]: node}
    children = [leaves(child, f"{prefix}{key}.") for key, child in node.items()]
    return {k: v for child in children for k, v in child.items()}


def tuned_settings(option: str) -> dict[str, Any]:
    """What ``configs/tuned/<option>.yaml`` sets, its defaults list followed: a tuned config may
    start from another of the group (``defaults: [toy2d_ns_gan, _self_]``), as Hydra merges it."""
    file = OmegaConf.load(CONFIG_DIR / "tuned" / f"{option}.yaml")
    own = OmegaConf.to_container(file)
    assert isinstance(own, dict)
    entries = own.pop("defaults", ["_self_"])
    parts = [OmegaConf.create(own if e == "_self_" else tuned_settings(e)) for e in entries]
    merged = OmegaConf.to_container(OmegaConf.merge(*parts))
    assert isinstance(merged, dict)
    return merged


def compose_train(overrides: Sequence[str] = (), run_dir: Path | None = None) -> DictConfig:
    """Compose the real ``configs/train.yaml`` as ``train.py`` would, outside a Hydra run."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=False)
    with open_dict(cfg):
        # ${hydra:...} resolvers only exist inside a Hydra run; fix the values they would give.
        cfg.paths.output_dir = str(run_dir or ROOT / "outputs" / "pytest")
        cfg.run_name = "pytest"
    return cfg


def write_image_folder(root: Path) -> Path:
    """5 readable images of mixed size, mode and extension (some nested), 1 garbage .png, 1 text.

    red.png (40x30 RGB), sub/blue.JPG (70x90), sub/deeper/white.png (20x20 L),
    sub/green.png (33x50 RGBA, alpha 128), black.bmp (64x16); broken.png is 500 random bytes.
    """
    (root / "sub" / "deeper").mkdir(parents=True)
    Image.new("RGB", (40, 30), (255, 0, 0)).save(root / "red.png")
    Image.new("RGB", (70, 90), (0, 0, 255)).save(root / "sub" / "blue.JPG", quality=100)
    Image.new("L", (20, 20), 255).save(root / "sub" / "deeper" / "white.png")
    Image.new("RGBA", (33, 50), (0, 255, 0, 128)).save(root / "sub" / "green.png")
    Image.new("RGB", (64, 16), (0, 0, 0)).save(root / "black.bmp")
    (root / "broken.png").write_bytes(np.random.default_rng(0).bytes(500))
    (root / "notes.txt").write_text("not an image")
    return root


def write_truncated(path: Path, keep: float = 0.6, size: int = 48) -> Path:
    """A noise image in the format of ``path``'s suffix, cut to ``keep`` of its bytes."""
    pixels = np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path
