"""Intra-class Fréchet distance (Miyato & Koyama 2018 "intra FID") on the MNIST network.

The formula is checked against a direct NumPy/SciPy computation, per class; the metric against
"generators" made of held-out real digits: one that draws the class asked for, and one that draws
the next class. Both draw real digits of every class, so the class-blind FD can hardly tell them
apart; the intra-class FD must.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from gan_zoo.data import MNISTSubsetDataModule
from gan_zoo.errors import ConfigValueError
from gan_zoo.metrics import FidelityMetrics, metric_names
from gan_zoo.metrics.intra_class import ClassStatistics, intra_class_fd
from gan_zoo.metrics.protocol import score_generator
from gan_zoo.metrics.reference import prepare_reference, real_indices
from gan_zoo.metrics.train_mnist_classifier import mnist_split
from tests.unit.test_mnist_metrics import HeldOutDigits

EXTRACTOR = "mnist-cnn"
pytestmark = pytest.mark.usefixtures("one_thread")


def reference_fd(real: np.ndarray, fake: np.ndarray) -> float:
    """FID's formula as pytorch-fid writes it: means, np.cov, scipy's sqrtm."""
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_intra_class_fd_is_the_mean_of_the_per_class_frechet_distances() -> None:
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(300, 4, generator=gen), torch.randn(240, 4, generator=gen) * 1.5 + 1
    real_labels = torch.randint(3, (300,), generator=gen)
    fake_labels = torch.arange(240) % 3
    real_stats, fake_stats = ClassStatistics(3, 4), ClassStatistics(3, 4)
    for start in range(0, 300, 64):  # in batches, as update() feeds them
        real_stats.add(real[start : start + 64], real_labels[start : start + 64])
    fake_stats.add(fake, fake_labels)
    mean, per_class = intra_class_fd(real_stats, fake_stats)
    expected = [
        reference_fd(
            real[real_labels == c].double().numpy(), fake[fake_labels == c].double().numpy()
        )
        for c in range(3)
    ]
    assert per_class == pytest.approx(expected, rel=1e-9)
    assert mean == pytest.approx(np.mean(expected), rel=1e-9)


def test_a_class_without_two_samples_is_named() -> None:
    real, fake = ClassStatistics(3, 2), ClassStatistics(3, 2)
    real.add(torch.randn(6, 2), torch.tensor([0, 0, 1, 1, 2, 2]))
    fake.add(torch.randn(5, 2), torch.tensor([0, 0, 1, 1, 2]))
    with pytest.raises(ValueError, match="class 2 has 2 real and 1 generated"):
        intra_class_fd(real, fake)


def intra_metric() -> FidelityMetrics:
    return FidelityMetrics(isc=False, extractor=EXTRACTOR, intra_fd_classes=10, batch_size=250)


def test_intra_class_fd_sees_digits_of_the_wrong_class_that_fd_cannot() -> None:
    split = mnist_split()  # the reference: the 4,500 digits the network trained on, by label
    metric = intra_metric()
    metric.update(split["train_images"], real=True, labels=split["train_labels"])
    reference = metric.real_statistics(), None, metric.real_class_statistics()
    metric.reset()  # score_generator resets: the reals become a fixed reference, as cached
    metric.set_real_statistics(*reference)
    right = score_generator(metric, HeldOutDigits(True), 8, 500, 0, 250, num_classes=10)
    wrong = score_generator(metric, HeldOutDigits(False), 8, 500, 0, 250, num_classes=10)
    # Real digits of every class either way, only paired with other labels: a similar
    # class-blind FD (the few held-out digits drawn differ a little).
    assert wrong["fid"] == pytest.approx(right["fid"], rel=0.2)
    # Per class, the right digits are as close as the whole set is (50 per class: noisier);
    # the wrong ones are another digit, as far apart as two digit classes.
    assert right["intra_fid"] < 2 * right["fid"], right
    assert wrong["intra_fid"] > 4 * right["intra_fid"], (wrong, right)
    assert wrong["intra_fid"] > 5 * wrong["fid"], wrong
    names = metric_names(wrong, 500, 4500, EXTRACTOR)
    assert "intra_fd_mnist_500_train_4500" in names


def test_the_reference_cache_stores_the_per_class_statistics(tmp_path) -> None:
    data = MNISTSubsetDataModule()
    fd_only = FidelityMetrics(isc=False, extractor=EXTRACTOR)
    assert prepare_reference(fd_only, data, 300, tmp_path, batch_size=100).source == "computed"
    first = intra_metric()  # FD's file lacks the classes: a miss, recomputed with them
    assert prepare_reference(first, data, 300, tmp_path, batch_size=100).source == "computed"
    again = intra_metric()
    assert prepare_reference(again, data, 300, tmp_path).source == "cache"
    counts = [s.count for s in again.real_class_statistics().per_class]
    # The reference's 300 digits (the fixed permutation's first 300), grouped by their labels.
    labels = data.dataset.labels[real_indices(len(data.dataset), 300)]
    assert counts == labels.bincount(minlength=10).tolist() and min(counts) > 10
    for a, b in zip(
        first.real_class_statistics().per_class, again.real_class_statistics().per_class
    ):
        assert torch.equal(a.outer_sum, b.outer_sum) and a.count == b.count
    assert prepare_reference(fd_only, data, 300, tmp_path).source == "cache"  # still serves FD


def test_intra_class_fd_needs_labels_on_both_sides() -> None:
    metric = intra_metric()
    images = torch.zeros(4, 1, 28, 28)
    with pytest.raises(ConfigValueError, match="labels"):
        metric.update(images, real=True)
    with pytest.raises(ConfigValueError, match="intra_fd_classes"):
        FidelityMetrics(isc=False, extractor=EXTRACTOR, intra_fd_classes=-1)


def test_too_few_samples_of_a_class_cost_intra_fd_only() -> None:
    metric = FidelityMetrics(isc=False, extractor=EXTRACTOR, intra_fd_classes=10, classes=True)
    split = mnist_split()
    metric.update(split["train_images"], real=True, labels=split["train_labels"])
    reference = metric.real_statistics(), None, metric.real_class_statistics()
    metric.reset()
    metric.set_real_statistics(*reference)
    with pytest.warns(
        UserWarning, match="intra-class FD skipped: .*class 9 has 450 real and 1 gen"
    ):
        values = score_generator(metric, HeldOutDigits(True), 8, 19, 0, 19, num_classes=10)
    assert "intra_fid" not in values and values["fid"] > 0 and "class_accuracy" in values
