"""``FidelityMetrics``: FID, IS, KID, precision/recall, density/coverage and class coverage from
one feature-extractor pass per image, torchmetrics-style.

FID: Heusel et al. 2017; IS: Salimans et al. 2016; with InceptionV3 the network, resize and
formulas are torch-fidelity's (Obukhov et al. 2020), so values equal
``torch_fidelity.calculate_metrics`` on the same images and weights. KID, precision/recall and
density/coverage: ``gan_zoo.metrics.feature_sets``; class coverage: ``gan_zoo.metrics.classes``.
With ``extractor="mnist-cnn"`` every feature metric is computed in the shipped MNIST network's
feature space instead (``gan_zoo.metrics.mnist_net``); FID is then the Fréchet distance
``fd_mnist``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gan_zoo.errors import ConfigValueError, check
from gan_zoo.metrics import distributed, feature_sets
from gan_zoo.metrics.classes import class_metrics, conditional_accuracy
from gan_zoo.metrics.extractors import EXTRACTORS, FeatureExtractor, load_feature_extractor
from gan_zoo.metrics.functional import (
    FeatureStatistics,
    check_fid_counts,
    frechet_distance,
    inception_score,
    psd_sqrt,
    to_uint8,
)
from gan_zoo.metrics.inception import EXTRACTOR_NAME as INCEPTION
from gan_zoo.metrics.intra_class import ClassStatistics, intra_class_fd
from gan_zoo.metrics.mnist_net import EXTRACTOR_NAME as MNIST


class FidelityMetrics(nn.Module):
    """Sample-quality metrics between real and generated images, from one network pass each.

    ``update(images, real)`` takes ``(N, C, H, W)`` images, uint8 in [0, 255] or float in
    [-1, 1] (quantized to uint8 first, as saved images would be); each image goes through the
    extractor once, feeding every metric. FID keeps running float64 sums (feature sum, sum of
    outer products, count), so its memory doesn't grow with N and ranks merge by summing. KID,
    precision/recall and density/coverage keep the ``(N, D)`` features, IS and the class metrics
    the ``(N, K)`` logits of the fakes; under DDP they are gathered in rank order (all-gather of
    each rank's rows, whatever their number), so values equal a 1-process run's. Every rank
    calls ``compute()``, which returns the enabled ones of ``fid``, ``is_mean``, ``is_std``,
    ``kid_mean``, ``kid_std``, ``precision``, ``recall``, ``density``, ``coverage``,
    ``classes_covered``, ``class_kl``, ``mean_confidence``.

    Args:
        fid: Fréchet distance of the features (FID with InceptionV3, fd_mnist with the MNIST net).
        isc: Inception Score (InceptionV3's unbiased logits, ``isc_splits`` splits).
        inception_weights: torch-fidelity InceptionV3 weights file; None uses the official file
            in the torch hub cache, downloading it once (with a timeout). Unused by mnist-cnn.
        isc_splits: IS splits (torch-fidelity's default 10).
        batch_size: images per extractor forward inside ``update``.
        extractor: ``"inception-v3-compat"`` (torch-fidelity's) or ``"mnist-cnn"`` (gan_zoo's
            shipped MNIST network: 28 px, 1 channel).
        kid: KID (Bińkowski et al. 2018), ``kid_subsets`` subsets of ``min(kid_subset_size, N)``.
        precision_recall: Kynkäänniemi et al. 2019, ``prc_neighborhood`` nearest neighbours.
        density_coverage: Naeem et al. 2020, ``dc_neighborhood`` nearest neighbours.
        classes: classes covered, KL(class histogram || uniform), mean confidence (mnist-cnn).
        intra_fd_classes: K > 0 adds ``intra_fid``, the Fréchet distance per class averaged
            over the K classes (``gan_zoo.metrics.intra_class``); every ``update`` then needs
            ``labels``: the reals' classes, and the classes the fakes were asked for.

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
        *,
        extractor: str = INCEPTION,
        kid: bool = False,
        precision_recall: bool = False,
        density_coverage: bool = False,
        classes: bool = False,
        kid_subsets: int = feature_sets.KID_SUBSETS,
        kid_subset_size: int = feature_sets.KID_SUBSET_SIZE,
        prc_neighborhood: int = feature_sets.PRC_NEIGHBORHOOD,
        dc_neighborhood: int = feature_sets.DC_NEIGHBORHOOD,
        intra_fd_classes: int = 0,
    ) -> None:
        super().__init__()
        wanted = (fid, isc, kid, precision_recall, density_coverage, classes)
        check(any(wanted), "fid", fid, "True, or another metric on (at least one metric)")
        check(extractor in EXTRACTORS, "extractor", extractor, f"one of {', '.join(EXTRACTORS)}")
        check(not isc or extractor == INCEPTION, "isc", isc, f"False with extractor={extractor}")
        check(not classes or extractor == MNIST, "classes", classes, f"False with {extractor}")
        for key, value in dict(
            isc_splits=isc_splits,
            batch_size=batch_size,
            kid_subsets=kid_subsets,
            kid_subset_size=kid_subset_size,
            prc_neighborhood=prc_neighborhood,
            dc_neighborhood=dc_neighborhood,
        ).items():
            check(isinstance(value, int) and value >= 1, key, value, "int >= 1")
        valid = "an int >= 0 (the classes of a conditional generator; 0 = off)"
        check(type(intra_fd_classes) is int and intra_fd_classes >= 0, "intra_fd_classes",
              intra_fd_classes, valid)  # fmt: skip
        self.intra_fd_classes = intra_fd_classes
        self.fid, self.isc, self.kid, self.classes = bool(fid), bool(isc), bool(kid), bool(classes)
        self.precision_recall = bool(precision_recall)
        self.density_coverage = bool(density_coverage)
        self.isc_splits, self.batch_size = isc_splits, batch_size
        self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size
        self.prc_neighborhood, self.dc_neighborhood = prc_neighborhood, dc_neighborhood
        self.extractor: FeatureExtractor = load_feature_extractor(
            extractor, inception_weights, logits=self.isc or self.classes
        )
        self.weights_path: Path = self.extractor.weights_path
        self.weights_sha256 = self.extractor.weights_sha256
        self._reference: FeatureStatistics | None = None
        self._reference_features: Tensor | None = None
        self._reference_sqrt: Any = None  # sqrt of the reference covariance, computed once
        self._reference_classes: ClassStatistics | None = None
        self.reset()

    @property
    def keeps_features(self) -> bool:
        """Whether a metric needs the feature vectors themselves, not only their statistics."""
        return self.kid or self.precision_recall or self.density_coverage

    @property
    def needs_real(self) -> bool:
        """Whether any enabled metric compares with real images (all but IS and classes)."""
        return self.fid or self.keeps_features or bool(self.intra_fd_classes)

    # ------------------------------------------------------------------ torchmetrics API
    def reset(self) -> None:
        """Forget every image seen; a reference set with ``set_real_statistics`` stays."""
        dim = self.extractor.feature_dim
        self._real, self._fake = FeatureStatistics.empty(dim), FeatureStatistics.empty(dim)
        self._real_rows: list[Tensor] = []
        self._fake_rows: list[Tensor] = []
        self._logits: list[Tensor] = []
        self._requested: list[Tensor] = []
        self._real_classes = ClassStatistics(self.intra_fd_classes, dim)
        self._fake_classes = ClassStatistics(self.intra_fd_classes, dim)

    @torch.no_grad()
    def update(self, images: Tensor, real: bool, labels: Tensor | None = None) -> None:
        """Add ``(N, C, H, W)`` images to the real or the generated set.

        ``labels`` ``(N,)``: the classes a conditional generator was asked for; with ``classes``
        on, ``compute`` then also reports ``class_accuracy``, the fraction the network reads as
        the class asked for. With ``intra_fd_classes`` they are required, for reals too.
        """
        pixels = to_uint8(images)
        if labels is not None and labels.shape != pixels.shape[:1]:
            raise ConfigValueError("labels", tuple(labels.shape), f"({pixels.shape[0]},)")
        if labels is None and self.intra_fd_classes:
            raise ConfigValueError("labels", None, "(N,) classes: intra-class FD groups by class")
        if real and not self.needs_real:
            raise ConfigValueError(
                "real",
                real,
                "False: real images only serve FID, KID, precision/recall and "
                "density/coverage (all off)",
            )
        if real and self._reference is not None:
            raise ConfigValueError("real", real, "False: a real reference is already set")
        for start in range(0, pixels.shape[0], self.batch_size):
            batch = pixels[start : start + self.batch_size].to(self.device)
            features, logits = self.extractor(batch)  # (B, D), (B, K) or None
            if self.needs_real:  # the reference cache always holds the statistics
                (self._real if real else self._fake).add(features)
            if self.intra_fd_classes:
                assert labels is not None
                rows = labels[start : start + self.batch_size]
                (self._real_classes if real else self._fake_classes).add(features, rows)
            if self.keeps_features:
                (self._real_rows if real else self._fake_rows).append(features.float().cpu())
            if logits is not None and not real:
                self._logits.append(logits.float().cpu())
        if labels is not None and self.classes and not real:
            self._requested.append(labels.long().cpu())

    def compute(self) -> dict[str, float]:
        """The enabled metrics over every rank's images (a collective under DDP)."""
        results: dict[str, float] = {}
        if self.fid:
            results["fid"] = self._fid(
                self.real_statistics(), distributed.all_sum_statistics(self._fake)
            )
        if self.keeps_features:
            results.update(self._feature_set_metrics())
        if self.intra_fd_classes:
            real, fake = self.real_class_statistics(), self._fake_classes.synced()
            try:  # a class with < 2 samples on a side costs this value, not the others
                results["intra_fid"] = intra_class_fd(real, fake)[0]
            except ValueError as err:  # counts are summed: every rank warns alike
                warnings.warn(f"intra-class FD skipped: {err}", stacklevel=2)
        if self.isc or self.classes:
            k = self.extractor.num_classes  # a rank without fakes still sends (0, K)
            local = torch.cat(self._logits) if self._logits else torch.zeros(0, k)
            logits = distributed.all_cat(local)  # (N, K), rank order
            if logits.shape[0] < 2:
                raise ValueError(
                    f"IS and class metrics need at least 2 generated images, got {logits.shape[0]}"
                )
            if self.isc:
                results["is_mean"], results["is_std"] = inception_score(logits, self.isc_splits)
            if self.classes:
                results.update(class_metrics(logits))
                requested = distributed.all_cat(
                    torch.cat(self._requested) if self._requested else torch.zeros(0).long()
                )
                if len(requested) == len(logits):  # every fake's class known: a conditional G
                    accuracy = conditional_accuracy(logits, requested)["class_accuracy"]
                    results["class_accuracy"] = accuracy
        return results

    # ------------------------------------------------------------------ reference
    def real_statistics(self) -> FeatureStatistics:
        """The real set's statistics: the reference if set, else every rank's real images."""
        return (
            self._reference
            if self._reference is not None
            else distributed.all_sum_statistics(self._real)
        )

    def real_features(self) -> Tensor:
        """The real set's features ``(N, D)``: the reference's if set, else every rank's rows in
        rank order (a collective under DDP)."""
        if self._reference is not None:
            if self._reference_features is None:
                raise ValueError(
                    "the real reference has no features, which KID, precision/"
                    "recall and density/coverage need"
                )
            return self._reference_features
        return distributed.all_cat(self._local_rows(self._real_rows))

    def real_class_statistics(self) -> ClassStatistics:
        """The real set's per-class statistics (intra-class FD): the reference's if set, else
        summed over every rank's labelled real images (a collective under DDP)."""
        return self._reference_classes or self._real_classes.synced()

    def set_real_statistics(
        self,
        stats: FeatureStatistics | None,
        features: Tensor | None = None,
        classes: ClassStatistics | None = None,
    ) -> None:
        """Use ``stats`` (and the ``(N, D)`` ``features``, if the metric keeps features, and the
        per-class ``classes`` for intra-class FD) as the real set, e.g. loaded from a cache; None
        goes back to real images.

        Under DDP set the same reference on every rank: it is neither summed nor gathered.
        """
        if stats is not None and (self._real.count or self._real_rows):
            raise ConfigValueError("stats", "a reference", "none while real images are added")
        self._reference, self._reference_sqrt = stats, None
        self._reference_features = None if stats is None or features is None else features.cpu()
        self._reference_classes = None if stats is None else classes

    @property
    def device(self) -> torch.device:
        return self.extractor.device

    def extractor_id(self) -> str:
        """Names the network and its weights: part of every protocol and cache key."""
        return f"{self.extractor.name}:sha256={self.weights_sha256[:16]}"

    # ------------------------------------------------------------------ internals
    def _local_rows(self, rows: list[Tensor]) -> Tensor:
        return torch.cat(rows) if rows else torch.zeros(0, self.extractor.feature_dim)

    def _feature_set_metrics(self) -> dict[str, float]:
        real = self.real_features()
        fake = distributed.all_cat(self._local_rows(self._fake_rows))  # (M, D), rank order
        out: dict[str, float] = {}
        if self.kid:
            out["kid_mean"], out["kid_std"] = feature_sets.kid(
                real, fake, self.kid_subsets, self.kid_subset_size
            )
        if self.precision_recall:
            pr = feature_sets.precision_recall(real, fake, self.prc_neighborhood)
            out["precision"], out["recall"] = pr
        if self.density_coverage:
            dc = feature_sets.density_coverage(real, fake, self.dc_neighborhood)
            out["density"], out["coverage"] = dc
        return out

    def _fid(self, real: FeatureStatistics, fake: FeatureStatistics) -> float:
        check_fid_counts(real.count, fake.count, self.extractor.feature_dim)
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
