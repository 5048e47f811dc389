"""The generated side of FID/IS, shared by the training callbacks and ``evaluate.py``.

Fake ``i`` is the generator applied to row ``i`` of a fixed noise sequence: the rows come in
chunks of ``NOISE_CHUNK``, chunk ``k`` drawn from its own generator seeded by ``(seed, k)``, so a
row's noise does not depend on who draws it. Under DDP rank ``r`` generates the ``r``-th
contiguous share of the ``num_samples`` rows (``num_samples / world_size`` of them, give or take
one), drawing only the chunks its rows touch: the ranks' fakes differ, and their union in rank
order is exactly the fakes of a 1-process run with the same seed, whatever the number of ranks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gan_zoo.metrics import distributed
from gan_zoo.metrics.fidelity import FidelityMetrics
from gan_zoo.metrics.inception import EXTRACTOR_NAME as INCEPTION
from gan_zoo.metrics.mnist_net import EXTRACTOR_NAME as MNIST
from gan_zoo.metrics.reference import SPLIT, Reference

NOISE_CHUNK = 1024
# z (B, latent_dim) -> images (B, C, H, W) in [-1, 1], e.g. a GAN's ``sample(B, z=z)``; for a
# conditional GAN also the classes (B,): ``sample(B, z=z, labels=labels)``.
Sampler = Callable[..., Tensor]


def mnist_metrics(
    num_classes: int = 0,
    batch_size: int = 500,
    kid: bool = True,
    precision_recall: bool = True,
    density_coverage: bool = True,
) -> FidelityMetrics:
    """The metrics in the shipped MNIST network's features (``evaluate.py``'s ``mnist`` block,
    ``bench.sample_quality``): Fréchet distance and the class metrics always, the feature-set
    metrics unless switched off, and for a conditional model (``num_classes`` > 0) the
    intra-class Fréchet distance."""
    return FidelityMetrics(
        intra_fd_classes=num_classes,
        fid=True,
        isc=False,
        batch_size=batch_size,
        extractor=MNIST,
        classes=True,
        kid=kid,
        precision_recall=precision_recall,
        density_coverage=density_coverage,
    )


def chunk_seed(seed: int, chunk: int) -> int:
    """A well-mixed seed for noise chunk ``chunk`` (numpy's SeedSequence of the pair)."""
    return int(np.random.SeedSequence([seed, chunk]).generate_state(1)[0])


def fake_noise(seed: int, start: int, stop: int, latent_dim: int) -> Tensor:
    """Rows ``[start, stop)`` of the noise sequence of ``seed``: ``(stop - start, latent_dim)``.

    >>> torch.equal(fake_noise(0, 1000, 1100, 4), fake_noise(0, 0, 2000, 4)[1000:1100])
    True
    """
    rows = []
    for chunk in range(start // NOISE_CHUNK, (stop - 1) // NOISE_CHUNK + 1):
        generator = torch.Generator().manual_seed(chunk_seed(seed, chunk))
        block = torch.randn(NOISE_CHUNK, latent_dim, generator=generator)
        first = chunk * NOISE_CHUNK
        rows.append(block[max(start, first) - first : min(stop, first + NOISE_CHUNK) - first])
    return torch.cat(rows)


def fake_labels(start: int, stop: int, num_classes: int) -> Tensor:
    """The classes a conditional generator is asked for at rows ``[start, stop)``: row ``i``
    gets class ``i % num_classes``, so every class gets its share whoever draws the rows.

    >>> fake_labels(8, 12, 10).tolist()
    [8, 9, 0, 1]
    """
    return torch.arange(start, stop) % num_classes


def add_fake_images(
    metric: FidelityMetrics,
    sample: Sampler,
    latent_dim: int,
    num_samples: int,
    seed: int,
    batch_size: int,
    num_classes: int = 0,
) -> None:
    """Rank-local: generate this rank's share of the fakes and feed it to ``metric``.

    With ``num_classes > 0`` (a conditional generator) ``sample`` also gets each row's class
    (:func:`fake_labels`), and ``metric`` the classes asked for.

    Batches start at the share's first row, so at a rank boundary an image can meet other
    neighbours in its generator and InceptionV3 batches than in a 1-process run: features then
    agree to float32 rounding (batch-size-dependent kernels), not always bit for bit.
    """
    rank, world = distributed.rank_and_world()
    for rows in distributed.shard_batches(num_samples, batch_size, rank, world):
        z = fake_noise(seed, rows.start, rows.stop, latent_dim)
        if num_classes:
            labels = fake_labels(rows.start, rows.stop, num_classes)
            metric.update(sample(z, labels), real=False, labels=labels)
        else:
            metric.update(sample(z), real=False)


def score_generator(
    metric: FidelityMetrics,
    sample: Sampler,
    latent_dim: int,
    num_samples: int,
    seed: int,
    batch_size: int,
    num_classes: int = 0,
) -> dict[str, float]:
    """Collective: FID/IS of ``num_samples`` fakes (over all ranks) against the metric's reference.

    ``num_classes > 0``: a conditional generator, asked for each class in turn
    (:func:`fake_labels`).

    A failure on any rank raises :class:`~gan_zoo.metrics.distributed.FidelityError` on all.
    """
    metric.reset()  # forgets earlier fakes; the reference stays
    distributed.run_everywhere(
        lambda: add_fake_images(
            metric, sample, latent_dim, num_samples, seed, batch_size, num_classes
        )
    )
    # compute's collectives are reached by every rank, and its errors follow from summed counts,
    # so they are the same on all ranks.
    try:
        return metric.compute()
    except ValueError as err:
        raise distributed.FidelityError(str(err)) from err


def count_label(n: int) -> str:
    """``10000 -> '10k'``, ``128 -> '128'``: sample counts as they appear in metric names."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


# compute() key -> name stem with InceptionV3, and with another network (FID computed on other
# features is a Fréchet distance, "fd"; KID a kernel distance, "kd").
_STEMS: dict[str, tuple[str, str]] = {
    "fid": ("fid", "fd"),
    "intra_fid": ("intra_fid", "intra_fd"),
    "kid_mean": ("kid", "kd"),
    "kid_std": ("kid", "kd"),
    "precision": ("precision", "precision"),
    "recall": ("recall", "recall"),
    "density": ("density", "density"),
    "coverage": ("coverage", "coverage"),
    "is_mean": ("is", "is"),
    "is_std": ("is", "is"),
    "classes_covered": ("classes", "classes"),
    "class_kl": ("class_kl", "class_kl"),
    "mean_confidence": ("confidence", "confidence"),
    "class_accuracy": ("class_accuracy", "class_accuracy"),
}
# The metrics that compare the fakes with the real reference: their names state split and N.
AGAINST_REAL = frozenset(
    {"fid", "intra_fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage"}
)
# The network, as it appears in names: nothing for InceptionV3 (the literature's default).
EXTRACTOR_TAGS = {INCEPTION: "", MNIST: "_mnist"}


def metric_name(key: str, num_fakes: int, num_real: int, extractor: str = INCEPTION) -> str:
    """The protocol-stating name of ``FidelityMetrics.compute()``'s value ``key``.

    Stem, network, fakes, and for metrics against the reals the split and (when it differs
    from the fakes') the real count, then ``_std`` for a standard deviation.

    >>> metric_name("fid", 10000, 5000), metric_name("kid_std", 2000, 2000)
    ('fid_10k_train_5k', 'kid_2k_train_std')
    >>> metric_name("fid", 2000, 2000, "mnist-cnn"), metric_name("class_kl", 2000, 0, "mnist-cnn")
    ('fd_mnist_2k_train', 'class_kl_mnist_2k')
    """
    stem = _STEMS[key][extractor != INCEPTION] + EXTRACTOR_TAGS[extractor]
    name = f"{stem}_{count_label(num_fakes)}"
    if key in AGAINST_REAL:
        name += f"_{SPLIT}" + ("" if num_real == num_fakes else f"_{count_label(num_real)}")
    return name + ("_std" if key.endswith("_std") else "")


def metric_names(
    values: dict[str, float], num_fakes: int, num_real: int, extractor: str = INCEPTION
) -> dict[str, float]:
    """``compute()``'s values under their protocol-stating names (see :func:`metric_name`)."""
    return {metric_name(k, num_fakes, num_real, extractor): v for k, v in values.items()}


def fid_name(num_fakes: int, num_real: int) -> str:
    """``fid_10k_train`` (10k fakes vs 10k training images) or ``fid_10k_train_5k``."""
    return metric_name("fid", num_fakes, num_real)


def is_name(num_fakes: int) -> str:
    """``is_10k``: Inception Score of 10k fakes."""
    return metric_name("is_mean", num_fakes, num_fakes)


def sampled_from(model: Any) -> str:
    """``"ema"`` when the model samples from an EMA copy of its generator, else ``"generator"``."""
    return "ema" if getattr(model, "generator_ema", None) is not None else "generator"


def metric_protocol(metric: FidelityMetrics) -> dict[str, Any]:
    """How ``metric``'s numbers are made (network, resize, each enabled metric's settings)."""
    out = {**metric.extractor.describe(), "is_splits": metric.isc_splits if metric.isc else None}
    if metric.kid:
        out["kid"] = (
            f"{metric.kid_subsets} subsets of min({metric.kid_subset_size}, N), cubic "
            "polynomial kernel, unbiased MMD^2 (torch-fidelity)"
        )
    if metric.precision_recall:
        out["precision_recall"] = f"k={metric.prc_neighborhood} (torch-fidelity)"
    if metric.density_coverage:
        out["density_coverage"] = f"k={metric.dc_neighborhood} (prdc)"
    if metric.intra_fd_classes:
        out["intra_fd"] = (
            "Fréchet distance per class, fakes by the class asked for and reals by label, "
            f"mean over {metric.intra_fd_classes} classes (Miyato & Koyama 2018 intra FID)"
        )
    if metric.classes:
        out["classes"] = (
            "argmax class; covered = at least one sample; KL to uniform, nats; "
            "class_accuracy (conditional G): argmax == the class asked for, fake i asked "
            "for class i % num_classes"
        )
    return out


def protocol(
    metric: FidelityMetrics,
    num_fakes: int,
    seed: int,
    reference: Reference | None,
    num_real: int | None,
    generator: str,
) -> dict[str, Any]:
    """Everything that defines the numbers: extractor, resize, fakes and the real reference."""
    out = {
        **metric_protocol(metric),
        "num_fakes": num_fakes,
        "fake_seed": seed,
        "generator": generator,
    }
    if reference is not None:
        out.update(real_split=SPLIT, real_n=num_real, real_cache_key=reference.key)
    return out


_REAL_KEYS = ("real_split", "real_n", "real_cache_key")


def for_names(proto: dict[str, Any], names: dict[str, float]) -> dict[str, dict[str, Any]]:
    """The protocol of each logged metric name: those against the reals (their name states the
    split) without IS splits, the others (IS, class metrics) without the reals."""
    against_real = {k: v for k, v in proto.items() if k != "is_splits"}
    fakes_only = {k: v for k, v in proto.items() if k not in _REAL_KEYS}
    return {
        name: against_real if f"_{SPLIT}" in name else fakes_only
        for name in names
        if not name.endswith("_std")
    }
