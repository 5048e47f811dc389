"""``callbacks.fidelity`` (FID and IS, and KID, precision/recall, density/coverage on request)
and ``callbacks.mnist_metrics`` in real training runs composed from ``configs/train.yaml``.

InceptionV3 is torch-fidelity's real extractor with seeded random weights from a temp file; the
MNIST network is the shipped one.
"""

from __future__ import annotations

import csv
import logging
import socket
from pathlib import Path

import pytest
import torch
import yaml
from hydra.utils import instantiate

from gan_zoo.checkpointing import load_model, read_checkpoint
from gan_zoo.errors import ConfigValueError
from gan_zoo.metrics import FidelityMetrics, write_random_weights
from gan_zoo.metrics.inception import URL_ENV
from gan_zoo.metrics.protocol import score_generator
from gan_zoo.metrics.reference import prepare_reference
from gan_zoo.training import train
from tests.helpers import FAST_WITH_METRICS, compose_train, fast_keeping
from tests.integration.exactness import differences

OFF_WARNING = "FID/IS turned off, training goes on"


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "inception_random_seed0.pth"
    return path if path.exists() else write_random_weights(path, seed=0)


@pytest.fixture
def no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No cached weights, and a download that is refused at once (as on an offline machine)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(URL_ENV, f"http://127.0.0.1:{port}/weights.pth")


def metric_overrides(weights: Path, cache: Path, num: int = 4, every: int = 2) -> list[str]:
    """FID and IS on ``num`` fakes every ``every`` steps, weights set as a user would."""
    return [
        f"callbacks.fidelity.num_samples={num}",
        f"callbacks.fidelity.every_n_steps={every}",
        f"metrics.inception_weights={weights}",  # train.yaml's switch for the metric callbacks
        "callbacks.fidelity.splits=2",
        f"callbacks.fidelity.cache_dir={cache}",
    ]


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "version_0" / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def logged(rows: list[dict[str, str]], name: str) -> dict[int, float]:
    return {int(r["step"]): float(r[name]) for r in rows if r.get(name)}


def test_metrics_log_protocol_names_summary_and_reuse_the_cache(
    inception_weights: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    overrides = FAST_WITH_METRICS + metric_overrides(inception_weights, tmp_path / "cache")
    train(compose_train(overrides, run_dir=tmp_path / "first"))
    rows = read_metrics(tmp_path / "first")
    # debug=fast trains 4 generator steps: evaluations at 2 and 4, the end not repeated.
    fid, is_mean = logged(rows, "val/fid_4_train"), logged(rows, "val/is_4")
    assert sorted(fid) == [2, 4] and sorted(is_mean) == [2, 4]
    assert sorted(logged(rows, "val/is_4_std")) == [2, 4]
    assert all(v > 0 for v in fid.values()) and all(v >= 1 for v in is_mean.values())

    hparams = yaml.safe_load(
        (tmp_path / "first" / "csv" / "version_0" / "hparams.yaml").read_text()
    )
    fid_protocol = hparams["metric_protocol"]["val/fid_4_train"]
    assert fid_protocol["num_fakes"] == 4 and fid_protocol["real_n"] == 4
    assert fid_protocol["real_split"] == "train" and "tf1x-bilinear-299" in fid_protocol["resize"]
    assert "inception-v3-compat" in fid_protocol["extractor"]
    assert fid_protocol["weights"].startswith(f"{inception_weights.name} sha256:")
    assert fid_protocol["generator"] == "generator"  # no EMA in this run
    assert "MNISTSubsetDataModule" in fid_protocol["real_cache_key"]
    is_protocol = hparams["metric_protocol"]["val/is_4"]
    assert is_protocol["is_splits"] == 2 and "real_n" not in is_protocol
    assert len(list((tmp_path / "cache" / "fid_stats").glob("*.pt"))) == 1

    caplog.clear()
    train(compose_train(overrides, run_dir=tmp_path / "second"))
    assert f"reusing {tmp_path / 'cache' / 'fid_stats'}" in caplog.text
    assert f"(cache key: {fid_protocol['real_cache_key']})" in caplog.text
    # Same seed, same training, cached reference: the same numbers as the first run.
    again = logged(read_metrics(tmp_path / "second"), "val/fid_4_train")
    assert again == pytest.approx(fid, rel=1e-9)


@pytest.mark.slow  # InceptionV3 on 12 images; the MNIST entry's fast test covers the same setup
def test_the_metrics_leave_training_bitwise_unchanged(
    inception_weights: Path, tmp_path: Path
) -> None:
    """Building InceptionV3 at setup initializes its layers from the global RNG before the
    weights are read, and evaluations generate fakes: neither may shift training's noise."""
    overrides = FAST_WITH_METRICS + metric_overrides(inception_weights, tmp_path / "cache")
    train(compose_train(overrides, run_dir=tmp_path / "on"))
    train(compose_train([*overrides, "callbacks.fidelity=null"], run_dir=tmp_path / "off"))
    assert sorted(logged(read_metrics(tmp_path / "on"), "val/fid_4_train")) == [2, 4]
    on, off = (read_checkpoint(tmp_path / r / "checkpoints" / "last.ckpt") for r in ("on", "off"))
    for key in ("state_dict", "optimizer_states", "lr_schedulers"):
        assert not differences(on[key], off[key]), key


def test_without_weights_the_job_warns_once_and_trains_on(
    no_weights: None, tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    result = train(
        compose_train(FAST_WITH_METRICS, run_dir=tmp_path)
    )  # the default callbacks, no overrides
    assert result["last_ckpt"] is not None
    warnings = [str(w.message) for w in recwarn if OFF_WARNING in str(w.message)]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].endswith(
        "or set metrics.inception_weights=PATH, or turn the metrics off with "
        "callbacks.fidelity=null"
    )
    assert not any(k.startswith("val/") for k in read_metrics(tmp_path)[0])


def test_toy_data_turns_the_metrics_off_without_looking_for_weights(
    no_weights: None, tmp_path: Path, recwarn: pytest.WarningsRecorder, caplog
) -> None:
    caplog.set_level(logging.INFO)
    train(compose_train(FAST_WITH_METRICS + ["data=toy2d"], run_dir=tmp_path))
    assert not any(OFF_WARNING in str(w.message) for w in recwarn)
    assert (
        "FID/IS off: inception-v3-compat reads 1- or 3-channel images, the data's samples "
        "are (2,)" in caplog.text
    )
    # Only the toy data's own metric (callbacks.mode_coverage) is logged.
    logged_names = {k for k in read_metrics(tmp_path)[0] if k.startswith("val/")}
    assert logged_names == {"val/modes_covered_2500", "val/hq_pct_2500", "val/reverse_kl_2500"}


SWITCHES = ["kid=true", "precision_recall=true", "density_coverage=true"]
MNIST_NAMES = {
    "fid": "val/fd_mnist_40_train_30",
    "kid_mean": "val/kd_mnist_40_train_30",
    "kid_std": "val/kd_mnist_40_train_30_std",
    "precision": "val/precision_mnist_40_train_30",
    "recall": "val/recall_mnist_40_train_30",
    "density": "val/density_mnist_40_train_30",
    "coverage": "val/coverage_mnist_40_train_30",
    "classes_covered": "val/classes_mnist_40",
    "class_kl": "val/class_kl_mnist_40",
    "mean_confidence": "val/confidence_mnist_40",
}


@pytest.mark.parametrize(
    "with_inception", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["mnist", "both"]
)
def test_each_switch_logs_its_protocol_name(
    with_inception: bool, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """KID, precision/recall and density/coverage on the MNIST network's features, with its
    class metrics, in a 4-step run: each value under its name, equal to scoring the final
    checkpoint directly with FidelityMetrics and the cached reference. With InceptionV3 beside
    it (IS off, the same switches; slow): both entries' names, and their protocols side by
    side."""
    overrides = [
        *fast_keeping("fidelity", "mnist_metrics"),
        *[f"callbacks.mnist_metrics.{s}" for s in SWITCHES],
        "callbacks.mnist_metrics.num_samples=40",
        "callbacks.mnist_metrics.num_real=30",
        "callbacks.mnist_metrics.every_n_steps=2",
        f"callbacks.mnist_metrics.cache_dir={tmp_path / 'cache'}",
    ]
    if with_inception:  # the random InceptionV3 weights are written only when needed
        weights = request.getfixturevalue("inception_weights")
        overrides += metric_overrides(weights, tmp_path / "cache", num=8, every=0)
        overrides += ["callbacks.fidelity.isc=false"]
        overrides += [f"callbacks.fidelity.{s}" for s in SWITCHES]
    else:
        overrides += ["callbacks.fidelity=null"]
    run_dir = tmp_path / "run"
    train(compose_train(overrides, run_dir=run_dir))
    rows = read_metrics(run_dir)
    for name in MNIST_NAMES.values():  # every 2 steps; the end (step 4) is not evaluated twice
        assert sorted(logged(rows, name)) == [2, 4], name
    assert 1 <= logged(rows, "val/classes_mnist_40")[4] <= 10
    hparams = yaml.safe_load((run_dir / "csv" / "version_0" / "hparams.yaml").read_text())
    protocols = hparams["metric_protocol"]
    fd = protocols["val/fd_mnist_40_train_30"]
    assert "mnist-cnn" in fd["extractor"] and fd["real_n"] == 30 and fd["num_fakes"] == 40
    assert fd["kid"].startswith("100 subsets of min(1000, N)")
    assert "real_n" not in protocols["val/classes_mnist_40"]

    inception = ["fid", "kid", "precision", "recall", "density", "coverage"]
    inception_names = [f"val/{stem}_8_train" for stem in inception] + ["val/kid_8_train_std"]
    for name in inception_names:  # the end only (every_n_steps=0): step 4
        assert sorted(logged(rows, name)) == ([4] if with_inception else []), name
    assert not [k for k in rows[0] if k.startswith("val/is_")]
    if with_inception:
        assert "inception-v3-compat" in protocols["val/kid_8_train"]["extractor"]

    model = load_model(run_dir / "checkpoints" / "last.ckpt")
    metric = FidelityMetrics(isc=False, extractor="mnist-cnn", classes=True, batch_size=500,
                             kid=True, precision_recall=True, density_coverage=True)  # fmt: skip
    data = instantiate(compose_train(overrides).data)
    assert prepare_reference(metric, data, 30, tmp_path / "cache").source == "cache"
    with torch.no_grad():
        values = score_generator(metric, model.generator, model.latent_dim, 40, 4321, 500)
    for key, name in MNIST_NAMES.items():
        assert values[key] == pytest.approx(logged(rows, name)[4], rel=1e-5, abs=1e-6), name


def test_an_entry_whose_network_does_not_fit_the_data_turns_itself_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    """The MNIST network on 2-D points: one info line, no warning, no error, training goes on."""
    caplog.set_level(logging.INFO)
    overrides = [*fast_keeping("mnist_metrics"), "data=toy2d", "callbacks.mode_coverage=null"]
    result = train(compose_train(overrides, run_dir=tmp_path))
    assert result["last_ckpt"] is not None
    line = "MNIST metrics off: mnist-cnn reads (1, 28, 28) digits, the data's samples are (2,)"
    assert [r.getMessage() for r in caplog.records if "MNIST metrics" in r.getMessage()] == [line]
    assert not [w for w in recwarn if "MNIST" in str(w.message)]
    assert not [k for k in read_metrics(tmp_path)[0] if k.startswith("val/")]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "callbacks.fidelity.num_samples=1",
            "callbacks.fidelity.num_samples=1 is invalid: expected an integer >= 2 or one of 'au",
        ),
        ("callbacks.fidelity.every_n_steps=-5", "callbacks.fidelity.every_n_steps=-5 is invalid"),
        ("callbacks.fidelity.splits=0", "callbacks.fidelity.splits=0 is invalid: expected an "),
        (
            "callbacks.fidelity.num_real=6000",
            "callbacks.fidelity.num_real=6000 is invalid: expected 'auto'"
            " or at most the training set size (5000)",
        ),
    ],
)
def test_bad_metric_settings_are_one_line_errors(override: str, message: str, tmp_path) -> None:
    with pytest.raises(ConfigValueError) as err:
        train(compose_train(FAST_WITH_METRICS + [override], run_dir=tmp_path))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.slow
def test_two_process_training_logs_metrics_without_hanging(
    inception_weights: Path, tmp_path: Path, run_cli
) -> None:
    overrides = metric_overrides(inception_weights, tmp_path / "cache")
    result = run_cli(
        "train.py",
        *FAST_WITH_METRICS,
        *overrides,
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        f"hydra.run.dir={tmp_path / 'run'}",
        timeout=300,  # a deadlock fails here instead of hanging the suite
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = read_metrics(tmp_path / "run")
    assert sorted(logged(rows, "val/fid_4_train")) == [2, 4]
    assert sorted(logged(rows, "val/is_4")) == [2, 4]
