"""``evaluate.py``: one JSON line, the same numbers on 1 and 2 processes, one-line errors; on
an MNIST checkpoint the MNIST network's metrics too, or alone and offline.

The checkpoint comes from a real 4-step training run on the default MNIST data; InceptionV3 is
torch-fidelity's extractor with seeded random weights, the MNIST network the shipped one. Every
run uses one thread per process so that per-image features are computed identically at any
number of processes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir

from gan_zoo.errors import ConfigValueError
from gan_zoo.evaluation import EvaluateSettings, evaluate
from gan_zoo.metrics import write_random_weights
from gan_zoo.metrics.inception import URL_ENV, URL_INCEPTION_V3
from gan_zoo.training import train
from tests.helpers import CONFIG_DIR, FAST, ROOT, compose_train
from tests.warm_cli import run_python


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "inception_random_seed0.pth"
    return path if path.exists() else write_random_weights(path, seed=0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    run_dir = tmp_path_factory.mktemp("run")
    overrides = [*FAST, "logger=none"]  # FAST turns FID/IS off
    return train(compose_train(overrides, run_dir=run_dir))["last_ckpt"]


# Every optional metric on both networks (density/coverage's 5 neighbours need 6 reals).
EXTRAS = ["kid", "precision_recall", "density_coverage"]
EXTRA_KEYS = {"kid_mean", "kid_std", "precision", "recall", "density", "coverage"}
MNIST_NAMES = {
    "fd_mnist_8_train_6",
    "kd_mnist_8_train_6",
    "kd_mnist_8_train_6_std",
    "precision_mnist_8_train_6",
    "recall_mnist_8_train_6",
    "density_mnist_8_train_6",
    "coverage_mnist_8_train_6",
    "classes_mnist_8",
    "class_kl_mnist_8",
    "confidence_mnist_8",
}


def metric_args(weights: Path, ckpt: str) -> list[str]:
    return [
        f"ckpt_path={ckpt}",
        "metrics.num_samples=8",
        "metrics.num_real=6",
        "metrics.isc_splits=2",
        "metrics.batch_size=2",
        f"metrics.inception_weights={weights}",
        "trainer.accelerator=cpu",
        *[f"metrics.{extra}=true" for extra in EXTRAS],
        *[f"metrics.mnist_{extra}=true" for extra in EXTRAS],
    ]


def offline_env(tmp_path: Path) -> tuple[dict[str, str], str]:
    """No InceptionV3 weights and a download refused at once (a port nobody listens on)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/weights.pth"
    return {"TORCH_HOME": str(tmp_path / "torch"), URL_ENV: url}, url


def compose_evaluate(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("evaluate", overrides=overrides)


def run_evaluate(
    *args: str, cache: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GAN_ZOO_CACHE": str(cache), "OMP_NUM_THREADS": "1", **(env or {})}
    return run_python(
        [sys.executable, str(ROOT / "evaluate.py"), *args],
        cwd=ROOT,
        env=env,
        timeout=300,  # a deadlock fails here instead of hanging the suite
    )


@pytest.fixture(scope="module")
def one_process(inception_weights, checkpoint, tmp_path_factory) -> dict[str, Any]:
    """evaluate.py's code path in this process, on one thread like the subprocess runs."""
    cfg = compose_evaluate(metric_args(inception_weights, checkpoint))
    cfg.metrics.cache_dir = str(tmp_path_factory.mktemp("cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return json.loads(json.dumps(evaluate(cfg)))  # what the CLI prints, parsed back
    finally:
        torch.set_num_threads(threads)


def test_returns_values_and_protocol(one_process: dict[str, Any]) -> None:
    assert set(one_process) == {"fid", "is_mean", "is_std", "protocol", "mnist"} | EXTRA_KEYS
    assert one_process["fid"] > 0 and one_process["is_mean"] >= 1 and one_process["is_std"] >= 0
    assert 0 <= one_process["precision"] <= 1 and 0 <= one_process["coverage"] <= 1
    protocol = one_process["protocol"]
    assert protocol["num_fakes"] == 8 and protocol["real_n"] == 6
    assert protocol["real_split"] == "train" and protocol["devices"] == 1
    assert protocol["is_splits"] == 2 and "tf1x-bilinear-299" in protocol["resize"]
    assert "MNISTSubsetDataModule" in protocol["real_cache_key"]
    assert (
        protocol["kid"].startswith("100 subsets") and protocol["density_coverage"] == "k=5 (prdc)"
    )


def test_an_mnist_checkpoint_also_gets_the_mnist_network_metrics(
    one_process: dict[str, Any],
) -> None:
    mnist = one_process["mnist"]
    assert set(mnist) == MNIST_NAMES | {"protocol"}  # names that state the protocol
    assert mnist["fd_mnist_8_train_6"] > 0 and 1 <= mnist["classes_mnist_8"] <= 10
    assert mnist["class_kl_mnist_8"] >= 0 and 0.1 <= mnist["confidence_mnist_8"] <= 1
    protocol = mnist["protocol"]
    assert "mnist-cnn" in protocol["extractor"] and protocol["resize"].startswith("none")
    assert (protocol["num_fakes"], protocol["real_n"], protocol["fake_seed"]) == (8, 6, 0)
    assert protocol["devices"] == 1 and "MNISTSubsetDataModule" in protocol["real_cache_key"]


def _numbers(result: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every number of evaluate.py's JSON, by its path (the protocols' counts included)."""
    out: dict[str, float] = {}
    for key, value in result.items():
        if isinstance(value, dict):
            out.update(_numbers(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and key != "devices":
            out[prefix + key] = value
    return out


@pytest.mark.slow
def test_cli_on_two_processes_prints_one_json_line_with_the_one_process_numbers(
    inception_weights, checkpoint, one_process, tmp_path
) -> None:
    args = [*metric_args(inception_weights, checkpoint), "trainer.devices=2"]
    result = run_evaluate(*args, cache=tmp_path)  # an empty cache: the ranks share the reals
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout  # the JSON line and nothing else on stdout
    two = json.loads(lines[0])
    assert two["protocol"]["devices"] == 2 and two["mnist"]["protocol"]["devices"] == 2
    assert two["fid"] == pytest.approx(one_process["fid"], rel=1e-6)
    assert two["is_mean"] == pytest.approx(one_process["is_mean"], rel=1e-9)
    assert two["is_std"] == pytest.approx(one_process["is_std"], rel=1e-9)
    one_numbers, two_numbers = _numbers(one_process), _numbers(two)
    assert set(two_numbers) == set(one_numbers)
    # With 6 reals every KID subset is the whole set, so KID's std over subsets is only float32
    # rounding of the kernel sums (~1e-4 of the mean here), which features computed in other
    # batches change: it agrees to the precision of the mean.
    kid_std = {"kid_std": "kid_mean", "mnist.kd_mnist_8_train_6_std": "mnist.kd_mnist_8_train_6"}
    for key, value in one_numbers.items():  # KID, PR, DC and the MNIST network's too
        spread = 1e-6 * abs(one_numbers[kid_std[key]]) if key in kid_std else 1e-9
        assert two_numbers[key] == pytest.approx(value, rel=1e-6, abs=spread), key


def test_offline_an_mnist_checkpoint_gets_the_mnist_metrics_alone(
    checkpoint, one_process, tmp_path
) -> None:
    """No InceptionV3 weights anywhere: with the InceptionV3 metrics off, evaluate.py prints the
    MNIST network's metrics, the same numbers as next to InceptionV3's."""
    offline, _ = offline_env(tmp_path)
    args = [
        *[a for a in metric_args(Path("unused"), checkpoint) if "inception" not in a],
        *[f"metrics.{name}=false" for name in ("fid", "isc", *EXTRAS)],
    ]
    result = run_evaluate(*args, cache=tmp_path, env=offline)
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = result.stdout.strip().splitlines()
    alone = json.loads(line)
    assert set(alone) == {"mnist"}
    assert _numbers(alone) == pytest.approx(_numbers({"mnist": one_process["mnist"]}), rel=1e-6)


def test_missing_checkpoint_is_one_line_on_stderr(tmp_path: Path) -> None:
    result = run_evaluate(f"ckpt_path={tmp_path / 'nope.ckpt'}", cache=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: checkpoint {tmp_path / 'nope.ckpt'} does not exist"
    ]


def test_without_weights_the_one_line_error_names_evaluate_py_keys(checkpoint, tmp_path) -> None:
    offline, url = offline_env(tmp_path)
    args = (f"ckpt_path={checkpoint}", "metrics.num_samples=20", "trainer.accelerator=cpu")
    result = run_evaluate(*args, cache=tmp_path, env=offline)
    assert result.returncode == 2 and result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    where = tmp_path / "torch" / "hub" / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"
    assert last.startswith(f"error: no InceptionV3 weights at {where} and downloading {url}")
    # evaluate.py's own keys, and no train.py switch (~callbacks...) it would not understand; on
    # MNIST data the way to the metrics that need no download.
    assert last.endswith(
        f"put the official file ({URL_INCEPTION_V3}) at {where}, or set "
        "metrics.inception_weights=PATH, or turn the InceptionV3 metrics off "
        "(metrics.fid=false metrics.isc=false) for the MNIST network's metrics alone"
    )
    assert "callbacks" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("metrics.num_samples=1", "metrics.num_samples=1 is invalid: expected an integer >= 2"),
        ("metrics.isc_splits=9", "metrics.isc_splits=9 is invalid: expected at most metrics.num"),
        ("metrics.num_real=all", "metrics.num_real='all' is invalid: expected an integer >= 2"),
        ("trainer.devices=0", "trainer.devices=0 is invalid: expected an integer >= 1"),
        ("metrics.mnist=maybe", "metrics.mnist='maybe' is invalid: expected true or false or "),
        ("metrics.mnist_kid=1", "metrics.mnist_kid=1 is invalid: expected true or false"),
        ("metrics.kid=null", "metrics.kid=None is invalid: expected true or false"),
        (
            "metrics.fid=false metrics.isc=false metrics.kid=false metrics.precision_recall=false "
            "metrics.density_coverage=false metrics.mnist=false",
            "metrics.fid=False is invalid: expected true, or another metric on (metrics.isc, kid, "
            "precision_recall or density_coverage; or metrics.mnist on MNIST-shaped data): nothing "
            "to compute",
        ),
    ],
)
def test_bad_settings_are_refused_before_any_work(
    override: str, message: str, inception_weights, checkpoint
) -> None:
    cfg = compose_evaluate([*metric_args(inception_weights, checkpoint), *override.split()])
    with pytest.raises(ConfigValueError) as err:
        evaluate(cfg)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("mnist", "shape", "networks"),
    [
        ("auto", (1, 28, 28), (True, True)),
        ("auto", (3, 32, 32), (True, False)),
        (False, (1, 28, 28), (True, False)),
        (True, (1, 28, 28), (True, True)),
    ],
)
def test_mnist_auto_means_mnist_shaped_data(mnist, shape, networks) -> None:
    assert EvaluateSettings(mnist=mnist).networks(shape) == networks


def test_mnist_on_other_data_or_nothing_to_compute_is_one_line() -> None:
    with pytest.raises(ConfigValueError) as err:
        EvaluateSettings(mnist=True).networks((3, 32, 32))
    assert str(err.value) == (
        "metrics.mnist=True is invalid: expected false or 'auto' for samples of shape (3, 32, 32)"
        " (the MNIST network reads (1, 28, 28) digits)"
    )
    with pytest.raises(ConfigValueError, match="nothing to compute$"):
        EvaluateSettings(fid=False, isc=False).networks((3, 32, 32))  # auto: no MNIST network
