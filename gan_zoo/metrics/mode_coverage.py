"""Mode coverage of samples from a known Gaussian mixture, under the PacGAN protocol.

Lin et al. 2018 ("PacGAN", Sec. 5.1), after Srivastava et al. 2017 ("VEEGAN", Sec. 5.1): draw
2,500 samples; a sample is *high quality* when it lies within 3 standard deviations of its
nearest mode; a mode is *covered* when at least 20 high-quality samples fall on it; and the
*reverse KL* is KL(mode histogram of the high-quality samples || uniform).

Used by the mode-coverage experiment (``python -m gan_zoo.experiments.mode_coverage``) and, on
the same code path, by the training callback ``gan_zoo.callbacks.ModeCoverageCallback``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

PACGAN_SAMPLES = 2500  # samples per evaluation in PacGAN's and VEEGAN's tables
PACGAN_NUM_STD = 3.0  # a sample within this many stds of its nearest mode is high quality
PACGAN_MIN_COUNT = 20  # high-quality samples a mode needs to count as covered


def mode_statistics(
    samples: Tensor,
    modes: Tensor,
    std: float,
    num_std: float = PACGAN_NUM_STD,
    min_count: int = PACGAN_MIN_COUNT,
) -> dict[str, Any]:
    """PacGAN's metrics for ``(N, D)`` samples of a mixture with ``(K, D)`` modes of std ``std``.

    Returns ``modes_covered`` (modes holding >= ``min_count`` high-quality samples),
    ``high_quality_pct`` (share of samples within ``num_std * std`` of their nearest mode, in %),
    ``reverse_kl`` (``KL(h || uniform) = sum_k h_k log(K h_k)`` of the high-quality histogram
    ``h``; with no high-quality sample at all we report ``log K``, its value for a total collapse
    onto one mode) and ``counts`` ``(K,)``.

    >>> modes = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    >>> stats = mode_statistics(modes.repeat(20, 1), modes, std=0.01)  # 20 on each mode
    >>> stats["modes_covered"], stats["high_quality_pct"], stats["reverse_kl"]
    (2, 100.0, 0.0)
    """
    distances = torch.cdist(samples.double(), modes.double())  # (N, K)
    nearest_distance, nearest = distances.min(dim=1)
    good = nearest_distance <= num_std * std  # (N,)
    counts = torch.bincount(nearest[good], minlength=len(modes))  # (K,)
    total = int(counts.sum())
    if total:
        hist = counts.double() / total
        reverse_kl = float(torch.xlogy(hist, hist * len(modes)).sum())
    else:
        reverse_kl = math.log(len(modes))
    return {
        "modes_covered": int((counts >= min_count).sum()),
        "num_modes": len(modes),
        "high_quality_pct": 100.0 * total / len(samples),
        "reverse_kl": reverse_kl,
        "counts": counts,
    }


# mode_statistics key -> name stem in logs (the count of samples follows, e.g. hq_pct_2500).
MODE_METRIC_STEMS = {
    "modes_covered": "modes_covered",
    "high_quality_pct": "hq_pct",
    "reverse_kl": "reverse_kl",
}


def mode_metric_names(stats: dict[str, Any], num_samples: int) -> dict[str, float]:
    """The scalar statistics under names that state the protocol's sample count.

    >>> mode_metric_names({"modes_covered": 8, "high_quality_pct": 97.5, "reverse_kl": 0.01,
    ...                    "num_modes": 8, "counts": None}, 2500)
    {'modes_covered_2500': 8.0, 'hq_pct_2500': 97.5, 'reverse_kl_2500': 0.01}
    """
    return {f"{stem}_{num_samples}": float(stats[k]) for k, stem in MODE_METRIC_STEMS.items()}
