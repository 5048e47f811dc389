"""KID, precision/recall, density/coverage and class coverage against their references.

On the same random features (50-200 vectors), gan_zoo's values equal: KID, the unbiased MMD^2 of
Bińkowski et al. 2018 written out below in float64 over torch-fidelity's subsets; precision,
recall, density and coverage, the authors' ``prdc.compute_prdc`` (Naeem et al. 2020); the class
metrics, PacGAN's mode count and KL. End to end, ``FidelityMetrics`` equals
``torch_fidelity.calculate_metrics`` with torch-fidelity's real InceptionV3 (seeded random weights,
a handful of small images: one forward costs ~0.2 s on this CPU).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import prdc
import pytest
import scipy.stats
import torch
import torch_fidelity
from torch.utils.data import Dataset

from gan_zoo.errors import ConfigValueError
from gan_zoo.metrics import (
    BiasedFIDWarning,
    FidelityMetrics,
    class_metrics,
    density_coverage,
    kid,
    metric_names,
    precision_recall,
    write_random_weights,
)
from gan_zoo.metrics.feature_sets import knn_radii


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "inception_random_seed0.pth"
    return path if path.exists() else write_random_weights(path, seed=0)


def features(n_real: int, n_fake: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real ``(n_real, dim)`` and fake ``(n_fake, dim)`` features from two different Gaussians."""
    gen = torch.Generator().manual_seed(seed)
    real = torch.randn(n_real, dim, generator=gen)
    fake = torch.randn(n_fake, dim, generator=gen) + 0.5
    return real, fake


def reference_prdc(real: torch.Tensor, fake: torch.Tensor, k: int) -> dict[str, float]:
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the sample counts
        out = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=k)
    return {key: float(value) for key, value in out.items()}


# ---------------------------------------------------------------------- KID
def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Bińkowski et al. 2018, Eq. 2 with k(x, y) = (x.y / d + 1)^3, in float64."""
    m, d = len(x), x.shape[1]
    kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    off_diagonal = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(off_diagonal - 2 * kxy.mean())


@pytest.mark.parametrize(("n_real", "n_fake", "subset"), [(120, 90, 1000), (200, 150, 50)])
def test_kid_is_the_unbiased_polynomial_mmd_over_torch_fidelitys_subsets(
    n_real: int, n_fake: int, subset: int
) -> None:
    real, fake = features(n_real, n_fake, 32, seed=n_real)
    mean, std = kid(real, fake, subsets=20, subset_size=subset)
    size = min(subset, n_real, n_fake)  # capped by N, as torch-fidelity requires
    rng = np.random.RandomState(2020)  # torch-fidelity's rng_seed; fakes are its input1
    values = []
    for _ in range(20):
        f = fake.double().numpy()[rng.choice(n_fake, size, replace=False)]
        r = real.double().numpy()[rng.choice(n_real, size, replace=False)]
        values.append(mmd2_unbiased(f, r))
    assert mean == pytest.approx(np.mean(values), rel=1e-5)
    assert std == pytest.approx(np.std(values), rel=1e-3)
    assert mean > 0.05  # two different Gaussians: far from 0


def test_kid_of_one_distribution_is_near_zero_and_can_be_negative() -> None:
    real, _ = features(200, 1, 16, seed=1)
    other, _ = features(200, 1, 16, seed=2)
    mean, std = kid(real, other, subsets=50, subset_size=100)
    assert abs(mean) < 3 * std / np.sqrt(50) + 1e-3  # unbiased: centred on 0


# ---------------------------------------------------------------------- precision/recall, D/C
@pytest.mark.parametrize(("n_real", "n_fake", "dim"), [(50, 60, 8), (200, 150, 64)])
def test_precision_recall_density_coverage_equal_prdc(n_real: int, n_fake: int, dim: int) -> None:
    real, fake = features(n_real, n_fake, dim, seed=dim)
    precision, recall = precision_recall(real, fake, neighborhood=3)
    reference = reference_prdc(real, fake, k=3)
    assert precision == pytest.approx(reference["precision"], abs=1e-7)
    assert recall == pytest.approx(reference["recall"], abs=1e-7)
    density, coverage = density_coverage(real, fake, neighborhood=5)
    reference = reference_prdc(real, fake, k=5)
    assert density == pytest.approx(reference["density"], abs=1e-12)
    assert coverage == pytest.approx(reference["coverage"], abs=1e-12)
    assert 0 < precision < 1 and 0 < coverage < 1  # the two sets overlap only in part


def test_blocks_do_not_change_density_coverage_and_identical_sets_score_one() -> None:
    real, fake = features(70, 65, 12, seed=3)
    assert density_coverage(real, fake, block=7) == density_coverage(real, fake)
    radii = knn_radii(real.double(), 5)
    brute = torch.cdist(real.double(), real.double()).sort(dim=1).values[:, 5]
    assert torch.allclose(radii, brute, rtol=0, atol=1e-12)
    assert precision_recall(real, real) == (1.0, 1.0)
    assert density_coverage(real, real)[1] == 1.0


def test_too_few_samples_or_mismatched_dims_are_clear_errors() -> None:
    real, fake = features(6, 3, 4, seed=0)
    with pytest.raises(ValueError, match="at least 4 real and 4 generated images, got 6 real"):
        precision_recall(real, fake)
    with pytest.raises(ConfigValueError, match=r"\(N, D\) and \(M, D\)"):
        density_coverage(real, torch.zeros(8, 5))


# ---------------------------------------------------------------------- class coverage
def test_class_metrics_follow_pacgans_mode_count_and_kl() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 10, generator=gen)
    logits[:, 3] -= 100  # class 3 never wins: 9 modes covered
    logits[:150, 7] += 100  # class 7 wins half of the samples
    values = class_metrics(logits)
    winners = logits.argmax(1).numpy()
    histogram = np.bincount(winners, minlength=10) / len(winners)
    assert values["classes_covered"] == 9 == len(set(winners.tolist()))
    assert values["class_kl"] == pytest.approx(scipy.stats.entropy(histogram, np.full(10, 0.1)))
    confidence = logits.double().softmax(1).max(1).values.mean().item()
    assert values["mean_confidence"] == pytest.approx(confidence, rel=1e-12)
    collapsed = class_metrics(torch.eye(10)[[2] * 50] * 20)
    assert collapsed["classes_covered"] == 1 and collapsed["class_kl"] == pytest.approx(np.log(10))


# ---------------------------------------------------------------------- names
def test_metric_names_state_network_counts_and_split() -> None:
    values = {"fid": 1.0, "kid_mean": 2.0, "kid_std": 0.1, "coverage": 0.5, "class_kl": 0.2}
    assert list(metric_names(values, 2000, 2000, "mnist-cnn")) == [
        "fd_mnist_2k_train",
        "kd_mnist_2k_train",
        "kd_mnist_2k_train_std",
        "coverage_mnist_2k_train",
        "class_kl_mnist_2k",
    ]
    inception = metric_names({"fid": 1.0, "precision": 0.3, "is_mean": 2.0}, 10000, 5000)
    assert list(inception) == ["fid_10k_train_5k", "precision_10k_train_5k", "is_10k"]


# ---------------------------------------------------------------------- end to end, InceptionV3
class _Images(Dataset):
    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # torch-fidelity's loader
def test_fidelity_metrics_equal_torch_fidelity_with_inception(inception_weights) -> None:
    gen = torch.Generator().manual_seed(5)
    coarse = torch.rand(11, 3, 4, 4, generator=gen) * 255
    images = torch.nn.functional.interpolate(coarse, size=(16, 16), mode="bilinear")
    images = images.round().to(torch.uint8)  # (11, 3, 16, 16)
    real, fake = images[:6], images[6:]
    metric = FidelityMetrics(
        isc=False,
        inception_weights=inception_weights,
        kid=True,
        precision_recall=True,
        density_coverage=True,
        dc_neighborhood=3,  # prdc itself needs k + 2 samples on both sides
        batch_size=6,  # torch-fidelity's batches too: one per set, so the features are equal
    )
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with pytest.warns(BiasedFIDWarning):
        ours = metric.compute()
    theirs = torch_fidelity.calculate_metrics(
        input1=_Images(fake),
        input2=_Images(real),
        fid=True,
        kid=True,
        prc=True,
        kid_subset_size=5,  # min(1000, N, M), which gan_zoo applies itself
        feature_extractor="inception-v3-compat",
        feature_layer_prc="2048",  # torch-fidelity's PR defaults to VGG-16; same features here
        feature_extractor_weights_path=str(inception_weights),
        cuda=False,
        cache=False,
        verbose=False,
    )
    assert ours["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-3)
    assert ours["kid_mean"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-4)
    assert ours["kid_std"] == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-3)
    assert (ours["precision"], ours["recall"]) == (theirs["precision"], theirs["recall"])
    with torch.no_grad():  # the features torch-fidelity saw: same network, same batches
        extracted = [metric.extractor(x)[0] for x in (real, fake)]
    reference = reference_prdc(*extracted, k=3)
    assert ours["density"] == pytest.approx(reference["density"], abs=1e-9)
    assert ours["coverage"] == pytest.approx(reference["coverage"], abs=1e-9)


def test_options_that_do_not_fit_the_extractor_are_refused(inception_weights) -> None:
    with pytest.raises(ConfigValueError, match="isc=True is invalid: expected False with"):
        FidelityMetrics(extractor="mnist-cnn")
    with pytest.raises(ConfigValueError, match="classes=True is invalid"):
        FidelityMetrics(isc=False, classes=True, inception_weights=inception_weights)
    with pytest.raises(ConfigValueError, match="extractor='vgg16' is invalid: expected one of"):
        FidelityMetrics(extractor="vgg16")
    with pytest.raises(ConfigValueError, match="kid_subsets=0 is invalid"):
        FidelityMetrics(isc=False, kid=True, kid_subsets=0, extractor="mnist-cnn")
