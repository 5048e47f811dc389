"""``debug=fast`` (and the tests' FAST overrides) turn FID/IS off, so that a machine with the
Inception weights cached does not spend about a minute of CPU per smoke run on them."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gan_zoo.metrics import write_random_weights
from gan_zoo.metrics.inception import default_weights_path
from gan_zoo.training import train
from tests.helpers import FAST, FAST_WITH_METRICS, compose_train

# Two evaluations of 4 fakes: enough to show the metrics run, in seconds.
FEW = ["callbacks.fidelity.num_samples=4", "callbacks.fidelity.every_n_steps=2"]
FEW += ["callbacks.fidelity.splits=2"]


def test_fast_sets_the_metric_callbacks_to_null_and_nothing_else() -> None:
    fast, kept = compose_train(FAST), compose_train(FAST_WITH_METRICS)
    assert fast.callbacks.fidelity is None
    assert kept.callbacks.fidelity._target_.endswith("FidelityCallback")
    plain = [OmegaConf.to_container(c) for c in (fast, kept)]
    for config in plain:
        del config["callbacks"]["fidelity"]  # type: ignore[index]
    assert plain[0] == plain[1]
    assert kept.trainer.max_steps == 4  # debug=fast's settings, read from configs/debug


@pytest.fixture
def cached_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Inception weights where torch.hub keeps them (random ones: only their presence counts)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return write_random_weights(default_weights_path(), seed=0)


def logged_keys(run_dir: Path) -> set[str]:
    with open(run_dir / "csv" / "version_0" / "metrics.csv") as handle:
        return {k for row in csv.DictReader(handle) for k, v in row.items() if v}


def test_with_cached_weights_a_fast_run_computes_no_metrics(
    cached_weights: Path, tmp_path: Path
) -> None:
    control = tmp_path / "control"
    train(compose_train([*FAST_WITH_METRICS, *FEW], run_dir=control))
    assert {"val/fid_4_train", "val/is_4"} <= logged_keys(control)  # the weights are found

    fast = tmp_path / "fast"
    train(compose_train(FAST, run_dir=fast))
    keys = logged_keys(fast)
    assert "train/d_loss" in keys and not [k for k in keys if k.startswith("val/")]
