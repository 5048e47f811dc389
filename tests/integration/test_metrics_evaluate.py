"""``evaluate.py``: one JSON line, the same numbers on 1 and 2 processes, one-line errors.

The checkpoint comes from a real 4-step training run; InceptionV3 is torch-fidelity's extractor
with seeded random weights. Every run uses one thread per process so that per-image features
are computed identically at any number of processes.
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
from gan_zoo.evaluation import evaluate
from gan_zoo.metrics import write_random_weights
from gan_zoo.metrics.inception import URL_ENV, URL_INCEPTION_V3
from gan_zoo.training import train
from tests.helpers import CONFIG_DIR, FAST, ROOT, compose_train


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "inception_random_seed0.pth"
    return path if path.exists() else write_random_weights(path, seed=0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    run_dir = tmp_path_factory.mktemp("run")
    overrides = [*FAST, "logger=none"]  # FAST turns FID/IS off
    return train(compose_train(overrides, run_dir=run_dir))["last_ckpt"]


def metric_args(weights: Path, ckpt: str) -> list[str]:
    return [
        f"ckpt_path={ckpt}",
        "metrics.num_samples=8",
        "metrics.num_real=6",
        "metrics.isc_splits=2",
        "metrics.batch_size=2",
        f"metrics.inception_weights={weights}",
        "trainer.accelerator=cpu",
    ]


def compose_evaluate(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("evaluate", overrides=overrides)


def run_evaluate(
    *args: str, cache: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GAN_ZOO_CACHE": str(cache), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
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
    assert set(one_process) == {"fid", "is_mean", "is_std", "protocol"}
    assert one_process["fid"] > 0 and one_process["is_mean"] >= 1 and one_process["is_std"] >= 0
    protocol = one_process["protocol"]
    assert protocol["num_fakes"] == 8 and protocol["real_n"] == 6
    assert protocol["real_split"] == "train" and protocol["devices"] == 1
    assert protocol["is_splits"] == 2 and "tf1x-bilinear-299" in protocol["resize"]
    assert "MNISTSubsetDataModule" in protocol["real_cache_key"]


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
    assert two["protocol"]["devices"] == 2
    assert two["fid"] == pytest.approx(one_process["fid"], rel=1e-6)
    assert two["is_mean"] == pytest.approx(one_process["is_mean"], rel=1e-9)
    assert two["is_std"] == pytest.approx(one_process["is_std"], rel=1e-9)


def test_missing_checkpoint_is_one_line_on_stderr(tmp_path: Path) -> None:
    result = run_evaluate(f"ckpt_path={tmp_path / 'nope.ckpt'}", cache=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: checkpoint {tmp_path / 'nope.ckpt'} does not exist"
    ]


def test_without_weights_the_one_line_error_names_evaluate_py_keys(checkpoint, tmp_path) -> None:
    with socket.socket() as sock:  # a port nobody listens on: the download is refused at once
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/weights.pth"
    offline = {"TORCH_HOME": str(tmp_path / "torch"), URL_ENV: url}
    args = (f"ckpt_path={checkpoint}", "metrics.num_samples=20", "trainer.accelerator=cpu")
    result = run_evaluate(*args, cache=tmp_path, env=offline)
    assert result.returncode == 2 and result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    where = tmp_path / "torch" / "hub" / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"
    assert last.startswith(f"error: no InceptionV3 weights at {where} and downloading {url}")
    # evaluate.py's own key, and no train.py switch (~callbacks...) it would not understand.
    assert last.endswith(
        f"put the official file ({URL_INCEPTION_V3}) at {where}, or set "
        "metrics.inception_weights=PATH (evaluate.py needs InceptionV3 for FID and IS)"
    )
    assert "callbacks" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("metrics.num_samples=1", "metrics.num_samples=1 is invalid: expected an integer >= 2"),
        ("metrics.isc_splits=9", "metrics.isc_splits=9 is invalid: expected at most metrics.num"),
        ("metrics.num_real=all", "metrics.num_real='all' is invalid: expected an integer >= 2"),
        ("trainer.devices=0", "trainer.devices=0 is invalid: expected an integer >= 1"),
    ],
)
def test_bad_settings_are_refused_before_any_work(
    override: str, message: str, inception_weights, checkpoint
) -> None:
    cfg = compose_evaluate([*metric_args(inception_weights, checkpoint), override])
    with pytest.raises(ConfigValueError) as err:
        evaluate(cfg)
    assert str(err.value).startswith(message)
