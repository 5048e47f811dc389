"""``callbacks.mnist_metrics``: the default callbacks score the default data (MNIST digits) with
the shipped MNIST network, on CPU and GPU alike, without changing training.

Real training runs composed from ``configs/train.yaml`` with ``debug=fast``'s settings but the
MNIST entry kept (debug=fast turns it off), with 64 fakes instead of 2,000.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hydra.utils import instantiate
from lightning.pytorch.accelerators import CPUAccelerator

from gan_zoo.checkpointing import read_checkpoint
from gan_zoo.data import MNISTSubsetDataModule
from gan_zoo.training import train
from tests.helpers import compose_train, fast_keeping
from tests.integration.exactness import differences
from tests.integration.test_metrics_callback import logged, read_metrics

NAMES = ["val/fd_mnist_64_train", "val/classes_mnist_64", "val/class_kl_mnist_64"]
NAMES += ["val/confidence_mnist_64"]


def small(cache: Path, every: int = 2) -> list[str]:
    """The default MNIST entry with 64 fakes (and so 64 training digits) every ``every`` steps."""
    return [
        *fast_keeping("mnist_metrics"),
        "callbacks.mnist_metrics.num_samples=64",
        f"callbacks.mnist_metrics.every_n_steps={every}",
        f"callbacks.mnist_metrics.cache_dir={cache}",
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("mnist_metrics")
    train(compose_train([*small(run_dir / "cache"), "trainer.max_steps=5"], run_dir=run_dir))
    return run_dir


def test_the_default_callbacks_log_the_mnist_metrics_every_n_steps_and_at_the_end(
    run: Path,
) -> None:
    rows = read_metrics(run)
    assert sorted(k for k in rows[0] if k.startswith("val/")) == sorted(NAMES)
    for name in NAMES:  # steps 2 and 4 on the schedule, 5 the end
        assert sorted(logged(rows, name)) == [2, 4, 5], name
    last = {name: logged(rows, name)[5] for name in NAMES}
    assert last["val/fd_mnist_64_train"] > 0 and last["val/class_kl_mnist_64"] >= 0
    assert 1 <= last["val/classes_mnist_64"] <= 10 and last["val/classes_mnist_64"].is_integer()
    assert 0.1 <= last["val/confidence_mnist_64"] <= 1  # a max-softmax over 10 classes

    hparams = yaml.safe_load((run / "csv" / "version_0" / "hparams.yaml").read_text())
    fd = hparams["metric_protocol"]["val/fd_mnist_64_train"]
    assert "mnist-cnn" in fd["extractor"] and fd["resize"].startswith("none (28x28 input)")
    assert (fd["num_fakes"], fd["real_n"], fd["real_split"]) == (64, 64, "train")
    assert fd["weights"].startswith("mnist_cnn_fp16.pt sha256:71d3cb111e793f48")
    classes = hparams["metric_protocol"]["val/classes_mnist_64"]
    assert "real_n" not in classes and classes["classes"].startswith("argmax class")
    assert len(list((run / "cache" / "fid_stats").glob("*.pt"))) == 1  # the reference, cached


def test_the_mnist_metrics_leave_training_bitwise_unchanged(run: Path, tmp_path: Path) -> None:
    """The same run without the MNIST entry ends with the same weights and optimizer states:
    the evaluations (and the reference, built from the data) never touch the training RNG."""
    off = tmp_path / "off"
    overrides = [*small(tmp_path / "cache"), "trainer.max_steps=5", "callbacks.mnist_metrics=null"]
    train(compose_train(overrides, run_dir=off))
    assert not [k for k in read_metrics(off)[0] if k.startswith("val/")]
    a, b = (read_checkpoint(r / "checkpoints" / "last.ckpt") for r in (run, off))
    for key in ("state_dict", "optimizer_states", "lr_schedulers"):
        assert not differences(a[key], b[key]), key


@pytest.mark.parametrize("accelerator", ["cpu", "gpu"])
def test_the_default_job_evaluates_at_1000_to_5000_with_the_same_names_on_cpu_and_gpu(
    accelerator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default entry's schedule over the default job's 5,000 generator steps, with the
    callback's own hooks: steps 1000, ..., 5000, the end not again; 2,000 fakes against 2,000
    training digits on either device (no "auto" in the entry)."""
    callback = instantiate(compose_train([]).callbacks.mnist_metrics)
    device = CPUAccelerator() if accelerator == "cpu" else object()  # anything else is "gpu"
    trainer = SimpleNamespace(accelerator=device, datamodule=MNISTSubsetDataModule(), global_step=0)
    callback._resolve(trainer)
    assert (callback.interval, callback.count, callback.num_real) == (1000, 2000, 2000)
    evaluated: list[int] = []
    monkeypatch.setattr(callback, "_evaluate", lambda t, m: evaluated.append(t.global_step))
    callback.metric = object()  # as if loaded at setup
    for step in range(1, 5001):
        trainer.global_step = step
        callback.on_train_batch_end(trainer, None)
    callback.on_train_end(trainer, None)
    assert evaluated == [1000, 2000, 3000, 4000, 5000]
    values: dict[str, Any] = {"fid": 1.0, "classes_covered": 10.0, "class_kl": 0.0}
    values["mean_confidence"] = 0.9
    assert list(callback.metric_names(values)) == [
        "val/fd_mnist_2k_train",
        "val/classes_mnist_2k",
        "val/class_kl_mnist_2k",
        "val/confidence_mnist_2k",
    ]


def test_a_conditional_run_also_logs_its_class_accuracy(tmp_path: Path) -> None:
    """experiment=mnist_conditional: the fakes ask for each class in turn, and the callback logs
    how often the network reads the class asked for and the intra-class Fréchet distance,
    beside the unconditional names."""
    overrides = ["experiment=mnist_conditional", *small(tmp_path / "cache"), "trainer.max_steps=2"]
    train(compose_train(overrides, run_dir=tmp_path))
    rows = read_metrics(tmp_path)
    accuracy = logged(rows, "val/class_accuracy_mnist_64")
    assert sorted(accuracy) == [2] and 0 <= accuracy[2] <= 1
    assert sorted(logged(rows, "val/fd_mnist_64_train")) == [2]
    intra = logged(rows, "val/intra_fd_mnist_64_train")  # per class vs that class's digits
    assert sorted(intra) == [2] and intra[2] > 0
