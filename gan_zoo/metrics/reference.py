"""The real side of the metrics: training images' statistics (and features), computed once and
cached on disk.

The reference for ``n`` real images is the first ``n`` of the same fixed permutation that
``GANDataModule.real_samples`` uses, from the training split. Its statistics are cached under
``<cache_dir>/fid_stats/<hash>.pt``, keyed by (dataset, split, n, extractor and weights, resize);
the file stores the full key and is checked against it, so a corrupt or mismatched file is
recomputed, never trusted. When the metric keeps features (KID, precision/recall,
density/coverage) the file also holds the ``(n, D)`` features, and a file without them is a miss;
likewise the per-class statistics when the metric computes intra-class FD.
Writes are atomic (temporary file, then rename).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor
from torch.utils.data import Dataset

from gan_zoo.data.base import REAL_SAMPLES_SEED
from gan_zoo.errors import check
from gan_zoo.metrics import distributed
from gan_zoo.metrics.fidelity import FidelityMetrics
from gan_zoo.metrics.functional import FeatureStatistics
from gan_zoo.metrics.inception import RESIZE
from gan_zoo.metrics.intra_class import ClassStatistics

log = logging.getLogger(__name__)

SPLIT = "train"  # gan_zoo data modules expose their training split only
CACHE_FORMAT = 1
# The data-module attributes that decide which images the training set holds: gan_zoo.data's
# constructor arguments, and the sample shape. Listed rather than excluded, so loader settings
# (batch_size, or shuffle_seed, which train.py sets to the run's seed) never split the cache. A
# data module with other settings is still told apart by its class, size and content fingerprint.
_IDENTITY = (
    "data_dir",
    "root",
    "image_size",
    "channels",
    "sample_shape",
    "name",
    "num_samples",
    "seed",
    "means",
    "std",
)
_FINGERPRINT_SAMPLES = 4


@dataclass
class Reference:
    """Where a reference's statistics came from: ``source`` is ``"cache"`` or ``"computed"``."""

    key: str
    path: Path
    source: str


def _simple(value: Any) -> bool:
    if isinstance(value, (str, int, float, bool, Path)) or value is None:
        return True
    return isinstance(value, (tuple, list)) and len(value) <= 16 and all(map(_simple, value))


def train_set(datamodule: Any) -> Dataset[torch.Tensor]:
    """The data module's training set, built by ``setup`` if it isn't yet."""
    if getattr(datamodule, "dataset", None) is None:
        datamodule.setup("fit")
    return cast(Dataset[torch.Tensor], datamodule.dataset)


def real_indices(size: int, n: int) -> torch.Tensor:
    """Indices of the reference: the first ``n`` of ``GANDataModule.real_samples``' permutation."""
    generator = torch.Generator().manual_seed(REAL_SAMPLES_SEED)
    return torch.randperm(size, generator=generator)[:n]


def dataset_identity(datamodule: Any) -> str:
    """Class, public settings, size and a content fingerprint of a data module's training set.

    GANDataModules have no name, so the class and the attributes in ``_IDENTITY`` that it has
    stand in for one (``data_dir``, ``image_size``...; never loader settings such as
    ``batch_size`` or ``shuffle_seed``); the size and a hash of the first reference images catch
    data that changed on disk.
    """
    cls = type(datamodule)
    settings = {}
    for name in _IDENTITY:
        value = getattr(datamodule, name, None)
        if value is not None and _simple(value):
            settings[name] = str(value) if isinstance(value, Path) else value
    dataset = train_set(datamodule)
    size = len(cast(Sized, dataset))
    digest = hashlib.sha256()
    for i in real_indices(size, min(size, _FINGERPRINT_SAMPLES)):
        digest.update(dataset[int(i)].contiguous().numpy().tobytes())
    content = digest.hexdigest()[:16]
    return f"{cls.__module__}.{cls.__qualname__}{settings} size={size} content={content}"


def reference_key(datamodule: Any, num_real: int, extractor_id: str, resize: str = RESIZE) -> str:
    """The cache key: (dataset, split, N, extractor with its weights, resize)."""
    return (
        f"data={dataset_identity(datamodule)} split={SPLIT} n={num_real} "
        f"extractor={extractor_id} resize={resize}"
    )


def reference_path(cache_dir: str | os.PathLike[str], key: str) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return Path(cache_dir).expanduser() / "fid_stats" / f"{digest}.pt"


def load_reference(
    path: Path,
    key: str,
    num_real: int,
    dim: int = 2048,
    features: bool = False,
    classes: int = 0,
) -> tuple[FeatureStatistics, Tensor | None, ClassStatistics | None] | None:
    """The cached ``(statistics, features or None, per-class statistics or None)`` at ``path``
    if they are intact, made for ``key`` and hold the ``(num_real, dim)`` features when
    ``features`` is asked for and the statistics of ``classes`` classes when > 0; else None.
    """
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable file is a miss, whatever the failure
        log.warning("FID cache %s is unreadable (%s): recomputing", path, type(err).__name__)
        return None
    expected = {"feature_sum": (dim,), "outer_sum": (dim, dim)}
    if features:
        expected["features"] = (num_real, dim)
    if classes:
        expected.update(class_feature_sum=(classes, dim), class_outer_sum=(classes, dim, dim))
    valid = (
        isinstance(data, dict)
        and data.get("format") == CACHE_FORMAT
        and data.get("key") == key
        and data.get("count") == num_real
        and all(
            isinstance(data.get(name), torch.Tensor)
            and tuple(data[name].shape) == shape
            and data[name].dtype == (torch.float32 if name == "features" else torch.float64)
            and bool(data[name].isfinite().all())
            for name, shape in expected.items()
        )
        and (not classes or _counts_valid(data.get("class_count"), classes, num_real))
    )
    if not valid:
        log.warning(
            "FID cache %s does not match key %r (or lacks features): recomputing", path, key
        )
        return None
    stats = FeatureStatistics(data["feature_sum"], data["outer_sum"], num_real)
    per_class = ClassStatistics.from_stacked(data) if classes else None
    return stats, data["features"] if features else None, per_class


def _counts_valid(counts: Any, classes: int, num_real: int) -> bool:
    """Whether ``counts`` are ``classes`` per-class counts of the ``num_real`` reference images."""
    return (
        isinstance(counts, torch.Tensor)
        and tuple(counts.shape) == (classes,)
        and counts.dtype == torch.long
        and int(counts.sum()) == num_real
    )


def save_reference(
    path: Path,
    key: str,
    stats: FeatureStatistics,
    features: Tensor | None = None,
    classes: ClassStatistics | None = None,
) -> None:
    """Write atomically: readers see the old file or the complete new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "format": CACHE_FORMAT,
        "key": key,
        "count": stats.count,
        "feature_sum": stats.feature_sum.cpu(),
        "outer_sum": stats.outer_sum.cpu(),
    }
    if features is not None:
        payload["features"] = features.float().cpu()  # (N, D)
    if classes is not None:
        payload.update(classes.stacked())  # (K, D), (K, D, D), (K,)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def add_real_images(
    metric: FidelityMetrics, dataset: Dataset[torch.Tensor], indices: torch.Tensor, batch_size: int
) -> None:
    """Rank-local: feed this rank's contiguous share of ``indices`` to ``metric``, in order."""
    share = distributed.shard(len(indices), *distributed.rank_and_world())
    mine = indices[share.start : share.stop].tolist()
    labels = getattr(dataset, "labels", None) if metric.intra_fd_classes else None
    if metric.intra_fd_classes and labels is None:
        raise ValueError(
            f"intra-class FD needs labelled real images; {type(dataset).__name__} has no labels"
        )
    # Images one by one, stacked here: no DataLoader collation to depend on (a dataset's batched
    # __getitems__ hands default_collate a tensor it cannot stack).
    for start in range(0, len(mine), batch_size):
        rows = mine[start : start + batch_size]
        classes = None if labels is None else torch.as_tensor(labels)[rows]  # (B,)
        metric.update(torch.stack([dataset[i] for i in rows]), real=True, labels=classes)


def prepare_reference(
    metric: FidelityMetrics,
    datamodule: Any,
    num_real: int,
    cache_dir: str | os.PathLike[str],
    batch_size: int = 64,
) -> Reference:
    """Collective: give ``metric`` the reference statistics, from the cache or computed.

    Every rank checks the cache and they agree before using it; on a miss each rank computes
    its share of the real images, the sums are reduced, and rank 0 writes the cache file.
    """

    def identify() -> str:
        size = len(cast(Sized, train_set(datamodule)))
        check(1 < num_real <= size, "num_real", num_real, f"an integer in [2, {size}] (train set)")
        return reference_key(datamodule, num_real, metric.extractor_id(), metric.extractor.resize)

    key = distributed.run_everywhere(identify)  # a data module can fail to set up on one rank
    path = reference_path(cache_dir, key)
    dim, keeps = metric.extractor.feature_dim, metric.keeps_features
    cached = load_reference(path, key, num_real, dim, keeps, metric.intra_fd_classes)
    if distributed.all_agree(cached is not None):
        assert cached is not None
        metric.set_real_statistics(*cached)
        log.info("FID reference: reusing %s (cache key: %s)", path, key)
        return Reference(key, path, "cache")
    metric.set_real_statistics(None)
    metric.reset()
    dataset = train_set(datamodule)
    indices = real_indices(len(cast(Sized, dataset)), num_real)
    distributed.run_everywhere(lambda: add_real_images(metric, dataset, indices, batch_size))
    stats = metric.real_statistics()
    features = metric.real_features() if keeps else None  # gathered in rank order
    classes = metric.real_class_statistics() if metric.intra_fd_classes else None
    metric.reset()
    metric.set_real_statistics(stats, features, classes)
    if distributed.rank_and_world()[0] == 0:
        try:
            save_reference(path, key, stats, features, classes)
            log.info(
                "FID reference: computed from %d images, cached at %s (cache key: %s)",
                num_real,
                path,
                key,
            )
        except OSError as err:  # an unwritable cache costs time later, not correctness now
            log.warning("FID reference computed but not cached at %s: %s", path, err)
    return Reference(key, path, "computed")
