"""The metric settings of ``configs/train.yaml``: ``metrics.inception_weights`` reaches the
FID/IS callback, as ``python train.py metrics.inception_weights=PATH`` would set it."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import instantiate

from gan_zoo.callbacks import FidelityCallback
from gan_zoo.training import prepare
from tests.helpers import compose_train


def test_metrics_inception_weights_reaches_the_callback(tmp_path: Path) -> None:
    weights = tmp_path / "inception.pth"
    cfg = compose_train([f"metrics.inception_weights={weights}"], tmp_path / "run")
    run = prepare(cfg)  # a known key: no "+metrics..." needed
    assert run.config["metrics"] == {"inception_weights": str(weights)}
    (callback,) = [c for c in run.trainer.callbacks if isinstance(c, FidelityCallback)]
    assert callback.inception_weights == str(weights) and callback.fid and callback.isc


def test_inception_weights_default_to_the_torch_hub_cache() -> None:
    cfg = compose_train([])
    assert cfg.metrics.inception_weights is None
    assert instantiate(cfg.callbacks.fidelity).inception_weights is None


def test_one_switch_per_metric() -> None:
    cfg = compose_train(["callbacks.fidelity.isc=false"])
    callback = instantiate(cfg.callbacks.fidelity)
    assert callback.fid and not callback.isc
