"""The metric settings of ``configs/train.yaml`` and ``configs/callbacks/default.yaml``:
``metrics.inception_weights`` reaches the FID/IS callback, as ``python train.py
metrics.inception_weights=PATH`` would set it; the MNIST-network and mode-coverage entries are on
by default with their documented protocols, one switch per metric; bad switches are one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from gan_zoo.callbacks import FidelityCallback, ModeCoverageCallback
from gan_zoo.errors import ConfigValueError
from gan_zoo.training import prepare
from tests.helpers import FAST, compose_train


def test_metrics_inception_weights_reaches_the_callback(tmp_path: Path) -> None:
    weights = tmp_path / "inception.pth"
    cfg = compose_train([f"metrics.inception_weights={weights}"], tmp_path / "run")
    run = prepare(cfg)  # a known key: no "+metrics..." needed
    assert run.config["metrics"] == {"inception_weights": str(weights)}
    fidelity = [c for c in run.trainer.callbacks if isinstance(c, FidelityCallback)]
    by_network = {c.extractor: c for c in fidelity}
    assert len(fidelity) == 2 and set(by_network) == {"inception-v3-compat", "mnist-cnn"}
    callback = by_network["inception-v3-compat"]
    assert callback.inception_weights == str(weights) and callback.fid and callback.isc
    assert callback.config_key == "callbacks.fidelity"


def test_inception_weights_default_to_the_torch_hub_cache() -> None:
    cfg = compose_train([])
    assert cfg.metrics.inception_weights is None
    assert instantiate(cfg.callbacks.fidelity).inception_weights is None


def test_one_switch_per_metric() -> None:
    cfg = compose_train(["callbacks.fidelity.isc=false", "callbacks.fidelity.kid=true"])
    callback = instantiate(cfg.callbacks.fidelity)
    assert callback.fid and not callback.isc and callback.kid
    assert not (callback.precision_recall or callback.density_coverage or callback.classes)


def test_the_default_mnist_entry_is_fd_and_classes_on_2000_fakes_every_1000_steps() -> None:
    callback = instantiate(compose_train([]).callbacks.mnist_metrics)
    assert callback.extractor == "mnist-cnn" and callback.config_key == "callbacks.mnist_metrics"
    assert callback.switches == {
        "fid": True, "isc": False, "kid": False, "classes": True,
        "precision_recall": False, "density_coverage": False,
    }  # fmt: skip
    assert (callback.every_n_steps, callback.num_samples, callback.num_real_setting) == (
        1000,
        2000,
        "auto",
    )
    # The same names on CPU and GPU: no "auto" that depends on the device.
    mnist = {"fid": 1.0, "classes_covered": 10.0, "class_kl": 0.1, "mean_confidence": 0.9}
    callback.count, callback.num_real = 2000, 2000
    assert list(callback.metric_names(mnist)) == [
        "val/fd_mnist_2k_train",
        "val/classes_mnist_2k",
        "val/class_kl_mnist_2k",
        "val/confidence_mnist_2k",
    ]


def test_the_default_mode_coverage_entry_follows_pacgan() -> None:
    callback = instantiate(compose_train([]).callbacks.mode_coverage)
    assert isinstance(callback, ModeCoverageCallback)
    assert (callback.every_n_steps, callback.num_samples) == (500, 2500)


def test_debug_fast_turns_the_mnist_metrics_off_and_keeps_mode_coverage() -> None:
    cfg = compose_train(FAST)
    assert cfg.callbacks.fidelity is None and cfg.callbacks.mnist_metrics is None
    assert cfg.callbacks.mode_coverage is not None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "callbacks.mnist_metrics.isc=true",
            "callbacks.mnist_metrics.isc=True is invalid: expected false with extractor=mnist-cnn "
            "(IS needs inception-v3-compat)",
        ),
        (
            "+callbacks.fidelity.classes=true",  # not in the entry: Inception has no classes
            "callbacks.fidelity.classes=True is invalid: expected false with "
            "extractor=inception-v3-compat (class metrics need mnist-cnn)",
        ),
        (
            "callbacks.mnist_metrics.extractor=lenet",
            "callbacks.mnist_metrics.extractor='lenet' is invalid: expected one of "
            "'inception-v3-compat', 'mnist-cnn'",
        ),
        (
            "callbacks.mnist_metrics.kid=yes",
            "callbacks.mnist_metrics.kid='yes' is invalid: expected true or false",
        ),
        (
            "callbacks.mode_coverage.num_samples=0",
            "callbacks.mode_coverage.num_samples=0 is invalid: expected an integer >= 1",
        ),
    ],
)
def test_bad_switches_are_one_line_before_training(
    override: str, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigValueError) as err:
        prepare(compose_train([override], tmp_path / "run"))
    assert str(err.value) == message
