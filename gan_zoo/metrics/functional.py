"""Pure functions behind FID and IS: image conversion, running statistics, the two formulas.

FID: Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", Eq. 6: ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`` on InceptionV3 pool3
features. IS: Salimans et al. 2016, "Improved Techniques for Training GANs", Sec. 4:
``exp(E_x KL(p(y|x) || p(y)))``, averaged over splits. Both follow torch-fidelity (Obukhov et
al. 2020) exactly, so values agree with ``torch_fidelity.calculate_metrics``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor

from gan_zoo.errors import ConfigValueError

# Half a uint8 step in [-1, 1] units is 1/255; accept overshoot below that, so clamping never
# moves a pixel by more than rounding would.
RANGE_TOLERANCE = 1e-3


def to_uint8(images: Tensor) -> Tensor:
    """Images ``(N, C, H, W)``, 1 or 3 channels, as uint8 ``(N, C, H, W)`` in [0, 255].

    uint8 passes through. Float must lie in ``[-1, 1]`` (within ``RANGE_TOLERANCE``) and maps to
    ``round((x + 1) * 127.5)`` clamped to ``[0, 255]``, never wrapping around.

    >>> gray = torch.tensor([-1.0005, -0.001, 0.5, 1.0005]).view(1, 1, 1, 4)  # (N, C, H, W)
    >>> to_uint8(gray)[0, 0, 0].tolist()
    [0, 127, 191, 255]
    """
    if not isinstance(images, Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ConfigValueError("images", shape, "a tensor of shape (N, C, H, W)")
    if images.shape[1] not in (1, 3):
        raise ConfigValueError("images", tuple(images.shape), "1 or 3 channels, (N, C, H, W)")
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise ConfigValueError("images", str(images.dtype), "uint8 in [0, 255] or float in [-1, 1]")
    if images.numel():
        low, high = images.min().item(), images.max().item()
        if not (low >= -1 - RANGE_TOLERANCE and high <= 1 + RANGE_TOLERANCE):
            raise ConfigValueError(
                "images",
                f"float values in [{low:.4g}, {high:.4g}]",
                "floats in [-1, 1] or uint8 in [0, 255] (NaN is not an image)",
            )
    return ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def to_uint8_rgb(images: Tensor) -> Tensor:
    """Images ``(N, C, H, W)`` as uint8 RGB ``(N, 3, H, W)``, the input torch-fidelity expects.

    :func:`to_uint8`, then one channel repeated to three.

    >>> gray = torch.tensor([-1.0005, -0.001, 0.5, 1.0005]).view(1, 1, 1, 4)  # (N, C, H, W)
    >>> to_uint8_rgb(gray)[0, :, 0].tolist()  # one channel repeated to three
    [[0, 127, 191, 255], [0, 127, 191, 255], [0, 127, 191, 255]]
    """
    pixels = to_uint8(images)
    return pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels


@dataclass
class FeatureStatistics:
    """Running sums of features ``(N, D)``: enough for their mean and covariance, at any N.

    Kept in float64; merging two sets (another batch, another rank) is a plain sum.
    """

    feature_sum: Tensor  # (D,) float64
    outer_sum: Tensor  # (D, D) float64, sum of f f^T
    count: int

    @classmethod
    def empty(cls, dim: int, device: torch.device | str = "cpu") -> FeatureStatistics:
        zeros = torch.zeros(dim, dtype=torch.float64, device=device)
        return cls(zeros, torch.zeros(dim, dim, dtype=torch.float64, device=device), 0)

    def add(self, features: Tensor) -> None:
        """Accumulate features ``(B, D)`` (any float dtype)."""
        if self.count == 0 and self.feature_sum.device != features.device:
            # Accumulate where the features are (the GPU): no per-batch copies to the host.
            self.feature_sum = self.feature_sum.to(features.device)
            self.outer_sum = self.outer_sum.to(features.device)
        f = features.to(self.feature_sum.device, torch.float64)
        self.feature_sum += f.sum(0)
        self.outer_sum += f.T @ f
        self.count += f.shape[0]

    def mean(self) -> Tensor:
        return self.feature_sum / self.count  # (D,)

    def covariance(self) -> Tensor:
        """Unbiased sample covariance ``(D, D)``, as ``np.cov``."""
        mean = self.mean()
        return (self.outer_sum - self.count * torch.outer(mean, mean)) / (self.count - 1)


def trace_sqrt_product(sqrt_s1: np.ndarray, s2: np.ndarray) -> float:
    """``tr((S1 S2)^(1/2))`` given ``S1^(1/2)``: the sum of sqrt eigenvalues of ``S1^½ S2 S1^½``.

    That matrix is symmetric PSD with the eigenvalues of ``S1 S2``, so a symmetric eigensolver
    gives real eigenvalues; rounding negatives are clamped to 0. No ``sqrtm``, no complex parts.
    """
    with threadpool_limits(limits=1, user_api="blas"):  # see psd_sqrt
        product = sqrt_s1 @ s2 @ sqrt_s1
        eigenvalues = scipy.linalg.eigvalsh((product + product.T) / 2)
    return float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())


def psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix, negative rounding eigenvalues clamped to 0.

    LAPACK runs on one thread: on 2048x2048 that costs ~1.5 s, while a multi-threaded OpenBLAS
    on an oversubscribed CPU (e.g. two DDP ranks per core pair) took 20 s in our measurements.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        eigenvalues, vectors = scipy.linalg.eigh((matrix + matrix.T) / 2, driver="evr")
        return (vectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ vectors.T


# Below this many samples the 2048x2048 covariance is rank-deficient and FID is biased upward.
UNBIASED_MIN_SAMPLES = 2048


class BiasedFIDWarning(UserWarning):
    """FID computed from fewer samples on a side than feature dimensions: biased upward."""


def check_fid_counts(real_count: int, fake_count: int, feature_dim: int) -> None:
    """Refuse fewer than 2 samples on a side; warn (:class:`BiasedFIDWarning`) when a side has
    fewer than ``min(2048, feature_dim)``, where the covariance is rank-deficient."""
    if real_count < 2 or fake_count < 2:
        raise ValueError(
            f"FID needs at least 2 real and 2 generated images, got {real_count} real and "
            f"{fake_count} generated"
        )
    unbiased = min(UNBIASED_MIN_SAMPLES, feature_dim)
    if min(real_count, fake_count) < unbiased:
        warnings.warn(
            f"FID from {real_count} real and {fake_count} generated images is biased upward"
            f" (fewer than {unbiased}); compare only with the same counts",
            BiasedFIDWarning,
            stacklevel=4,  # the caller of FidelityMetrics.compute
        )


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    sqrt_sigma1: np.ndarray | None = None,
) -> float:
    """Fréchet distance between Gaussians ``N(mu1, sigma1)`` and ``N(mu2, sigma2)`` (float64).

    Finite and real for rank-deficient covariances (e.g. a collapsed generator). Pass a
    precomputed ``sqrt_sigma1`` (see :func:`psd_sqrt`) to skip its eigendecomposition when one
    reference is scored many times. A tiny negative result from rounding is reported as 0.

    >>> eye = np.eye(3)
    >>> frechet_distance(np.zeros(3), eye, np.ones(3), 4 * eye)  # 3 + 3 + 12 - 2 * 6
    6.0
    """
    sqrt_s1 = psd_sqrt(sigma1) if sqrt_sigma1 is None else sqrt_sigma1
    diff = mu1 - mu2
    fid = (
        diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sqrt_s1, sigma2)
    )
    return max(float(fid), 0.0)


def inception_score(
    logits: Tensor, splits: int = 10, shuffle: bool = True, seed: int = 2020
) -> tuple[float, float]:
    """Mean and std over ``splits`` of ``exp(mean KL(p(y|x) || p(y)))`` from logits ``(N, K)``.

    Mirrors ``torch_fidelity.metric_isc.isc_features_to_metric``: rows permuted with
    ``np.random.RandomState(seed)``, float64 softmax, split ``i`` is rows
    ``[i N // splits, (i + 1) N // splits)``, population std (``np.std``).
    """
    n = logits.shape[0]
    if not 1 <= splits <= n:
        raise ConfigValueError("splits", splits, f"an integer in [1, {n}] (the number of fakes)")
    if shuffle:
        logits = logits[np.random.RandomState(seed).permutation(n), :]
    logits = logits.double()
    p, log_p = logits.softmax(dim=1), logits.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        rows = slice(i * n // splits, (i + 1) * n // splits)
        q = p[rows].mean(dim=0, keepdim=True)  # (1, K) marginal p(y) of the split
        kl = (p[rows] * (log_p[rows] - q.log())).sum(dim=1)  # (rows,)
        scores.append(kl.mean().exp().item())
    return float(np.mean(scores)), float(np.std(scores))
