"""The metric settings of ``configs/train.yaml``: ``metrics.inception_weights`` reaches both
callbacks, through the schema, as ``python train.py metrics.inception_weights=PATH`` would."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import instantiate

from gan_zoo.callbacks import FIDCallback, ISCallback
from gan_zoo.schemas import validate_config
from tests.helpers import compose_train


def test_metrics_inception_weights_reaches_both_callbacks(tmp_path: Path) -> None:
    weights = tmp_path / "inception.pth"
    cfg = compose_train([f"metrics.inception_weights={weights}"])
    resolved = validate_config(cfg)  # the schema knows the node: no "+metrics..." needed
    assert resolved["metrics"] == {"inception_weights": str(weights)}
    fid, isc = instantiate(cfg.callbacks.fid), instantiate(cfg.callbacks["is"])
    assert isinstance(fid, FIDCallback) and isinstance(isc, ISCallback)
    assert fid.inception_weights == isc.inception_weights == str(weights)
    # Equal schedules: the two callbacks still share one InceptionV3 pass.
    assert fid.schedule() == isc.schedule()


def test_inception_weights_default_to_the_torch_hub_cache() -> None:
    cfg = compose_train([])
    assert validate_config(cfg)["metrics"] == {"inception_weights": None}
    assert instantiate(cfg.callbacks.fid).inception_weights is None
    assert instantiate(cfg.callbacks["is"]).inception_weights is None


def test_one_callback_can_still_be_pointed_elsewhere(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    cfg = compose_train([f"metrics.inception_weights={a}", f"callbacks.is.inception_weights={b}"])
    validate_config(cfg)
    assert instantiate(cfg.callbacks.fid).inception_weights == str(a)
    assert instantiate(cfg.callbacks["is"]).inception_weights == str(b)
