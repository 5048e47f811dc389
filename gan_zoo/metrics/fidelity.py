"""``FidelityMetrics``: FID and IS from one InceptionV3 pass per image, torchmetrics-style.

FID: Heusel et al. 2017; IS: Salimans et al. 2016; the network, resize and formulas are
torch-fidelity's (Obukhov et al. 2020), so values equal ``torch_fidelity.calculate_metrics`` on
the same images and weights.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gan_zoo.errors import ConfigValueError, check
from gan_zoo.metrics import distributed
from gan_zoo.metrics.functional import (
    FeatureStatistics,
    frechet_distance,
    inception_score,
    psd_sqrt,
    to_uint8_rgb,
)
from gan_zoo.metrics.inception import (
    EXTRACTOR_NAME,
    FID_FEATURES,
    IS_FEATURES,
    RESIZE,
    file_sha256,
    load_extractor,
    resolve_weights,
)

FID_DIM, IS_CLASSES = 2048, 1008
# Below this many samples the 2048x2048 covariance is rank-deficient and FID is biased upward.
UNBIASED_MIN_SAMPLES = 2048


class BiasedFIDWarning(UserWarning):
    """FID computed from fewer than 2048 samples on a side: biased upward, not comparable."""


class FidelityMetrics(nn.Module):
    """FID between real and generated images, and IS of the generated ones.

    ``update(images, real)`` takes ``(N, C, H, W)`` images, uint8 in [0, 255] or float in
    [-1, 1], 1 or 3 channels, any size; each image goes through InceptionV3 once, feeding both
    metrics. FID keeps running float64 sums (feature sum, sum of outer products, count), so
    memory and cost don't grow with N and ranks merge by summing; IS keeps the ``(N, 1008)``
    logits because its splits need them. ``compute()`` returns ``{"fid", "is_mean", "is_std"}``
    (the enabled ones). Under DDP every rank calls ``compute()``: it sums the statistics and
    gathers the logits in rank order.

    Args:
        fid: compute FID (pool3 features).
        isc: compute IS (unbiased logits, ``isc_splits`` splits as torch-fidelity).
        inception_weights: torch-fidelity InceptionV3 weights file; None uses the official file
            in the torch hub cache, downloading it once (with a timeout).
        isc_splits: IS splits (torch-fidelity's default 10).
        batch_size: images per InceptionV3 forward inside ``update``.

    >>> metric = FidelityMetrics(inception_weights="weights.pth")  # doctest: +SKIP
    >>> metric.update(real_images, real=True)  # uint8 or [-1, 1] float  # doctest: +SKIP
    >>> metric.update(fake_images, real=False)  # doctest: +SKIP
    >>> metric.compute()  # doctest: +SKIP
    {'fid': 12.3, 'is_mean': 8.1, 'is_std': 0.1}
    """

    def __init__(
        self,
        fid: bool = True,
        isc: bool = True,
        inception_weights: str | os.PathLike[str] | None = None,
        isc_splits: int = 10,
        batch_size: int = 64,
    ) -> None:
        super().__init__()
        check(fid or isc, "fid", fid, "fid=True or isc=True (at least one metric)")
        check(isinstance(isc_splits, int) and isc_splits >= 1, "isc_splits", isc_splits, "int >= 1")
        check(isinstance(batch_size, int) and batch_size >= 1, "batch_size", batch_size, "int >= 1")
        self.fid, self.isc = bool(fid), bool(isc)
        self.isc_splits, self.batch_size = isc_splits, batch_size
        self.weights_path: Path = resolve_weights(inception_weights)
        self.weights_sha256 = file_sha256(self.weights_path)
        wanted = [FID_FEATURES] * self.fid + [IS_FEATURES] * self.isc
        self.extractor = load_extractor(self.weights_path, wanted)
        self._reference: FeatureStatistics | None = None
        self._reference_sqrt: Any = None  # sqrt of the reference covariance, computed once
        self.reset()

    # ------------------------------------------------------------------ torchmetrics API
    def reset(self) -> None:
        """Forget every image seen; a reference set with ``set_real_statistics`` stays."""
        self._real = FeatureStatistics.empty(FID_DIM)
        self._fake = FeatureStatistics.empty(FID_DIM)
        self._logits: list[Tensor] = []

    @torch.no_grad()
    def update(self, images: Tensor, real: bool) -> None:
        """Add ``(N, C, H, W)`` images to the real or the generated set."""
        pixels = to_uint8_rgb(images)
        if real and not self.fid:
            raise ConfigValueError("real", real, "False: real images only serve FID (fid=False)")
        if real and self._reference is not None:
            raise ConfigValueError("real", real, "False: a real reference is already set")
        for start in range(0, pixels.shape[0], self.batch_size):
            batch = pixels[start : start + self.batch_size].to(self.device)
            outputs = dict(zip(self.extractor.features_list, self.extractor(batch)))
            if self.fid:
                (self._real if real else self._fake).add(outputs[FID_FEATURES])
            if self.isc and not real:
                self._logits.append(outputs[IS_FEATURES].cpu())

    def compute(self) -> dict[str, float]:
        """FID and/or IS over every rank's images (a collective under DDP)."""
        results: dict[str, float] = {}
        if self.fid:
            real, fake = self.real_statistics(), self._synced(self._fake)
            results["fid"] = self._fid(real, fake)
        if self.isc:
            local = torch.cat(self._logits) if self._logits else torch.zeros(0, IS_CLASSES)
            logits = distributed.all_cat(local)  # (N, 1008), rank order
            if logits.shape[0] < 2:
                raise ValueError(f"IS needs at least 2 generated images, got {logits.shape[0]}")
            results["is_mean"], results["is_std"] = inception_score(logits, self.isc_splits)
        return results

    # ------------------------------------------------------------------ reference statistics
    def real_statistics(self) -> FeatureStatistics:
        """The real set's statistics: the reference if set, else every rank's real images."""
        return self._reference if self._reference is not None else self._synced(self._real)

    def set_real_statistics(self, stats: FeatureStatistics | None) -> None:
        """Use ``stats`` (e.g. loaded from a cache) as the real set; None goes back to images.

        Under DDP set the same statistics on every rank: they are not summed across ranks.
        """
        if stats is not None and self._real.count:
            raise ConfigValueError("stats", "a reference", "none while real images are added")
        self._reference, self._reference_sqrt = stats, None

    @property
    def device(self) -> torch.device:
        return self.extractor.fc.weight.device

    def extractor_id(self) -> str:
        """Names the network and its weights: part of every protocol and cache key."""
        return f"{EXTRACTOR_NAME}:sha256={self.weights_sha256[:16]}"

    def protocol(self) -> dict[str, Any]:
        """How the numbers are made, for logs and JSON output."""
        return {
            "extractor": f"torch-fidelity {EXTRACTOR_NAME} (FID: pool3 {FID_FEATURES}-d, "
            "IS: logits without bias)",
            "weights": f"{self.weights_path.name} sha256:{self.weights_sha256[:16]}",
            "resize": f"{RESIZE} (torch-fidelity TF1 bilinear, no antialias), from uint8",
            "is_splits": self.isc_splits if self.isc else None,
        }

    # ------------------------------------------------------------------ internals
    def _synced(self, stats: FeatureStatistics) -> FeatureStatistics:
        count = distributed.all_sum(torch.tensor([float(stats.count)], dtype=torch.float64))
        return FeatureStatistics(
            distributed.all_sum(stats.feature_sum).cpu(),
            distributed.all_sum(stats.outer_sum).cpu(),
            int(count.item()),
        )

    def _fid(self, real: FeatureStatistics, fake: FeatureStatistics) -> float:
        if real.count < 2 or fake.count < 2:
            raise ValueError(
                f"FID needs at least 2 real and 2 generated images, got {real.count} real and "
                f"{fake.count} generated"
            )
        if min(real.count, fake.count) < UNBIASED_MIN_SAMPLES:
            warnings.warn(
                f"FID from {real.count} real and {fake.count} generated images is biased upward"
                f" (fewer than {UNBIASED_MIN_SAMPLES}); compare only with the same counts",
                BiasedFIDWarning,
                stacklevel=3,
            )
        sigma_real = real.covariance().cpu().numpy()
        if self._reference is None or self._reference_sqrt is None:
            sqrt_real = psd_sqrt(sigma_real)
            if self._reference is not None:
                self._reference_sqrt = sqrt_real  # a fixed reference: decompose it once
        else:
            sqrt_real = self._reference_sqrt
        mu_real, mu_fake = real.mean().cpu().numpy(), fake.mean().cpu().numpy()
        sigma_fake = fake.covariance().cpu().numpy()
        return frechet_distance(mu_real, sigma_real, mu_fake, sigma_fake, sqrt_sigma1=sqrt_real)
