"""Metrics on two sets of features: KID, precision and recall, density and coverage.

Unlike FID, which needs only running sums, these compare the feature vectors themselves, so
``FidelityMetrics`` keeps them (and gathers them across DDP ranks) when one is requested.

- KID: Bińkowski et al. 2018, "Demystifying MMD GANs", Sec. 3 and App. D: the unbiased estimator
  of MMD² with the cubic polynomial kernel ``k(x, y) = (x·y / d + 1)^3``, averaged over random
  subsets. Computed by torch-fidelity's own ``kid_features_to_metric`` (Obukhov et al. 2020).
- Precision and recall: Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for
  Assessing Generative Models", Eq. 1-3: the fraction of fakes inside the real manifold (union of
  balls reaching each real point's k-th nearest real neighbour) and of reals inside the fake one;
  k = 3 as in the paper. Computed by torch-fidelity's ``prc_features_to_metric``.
- Density and coverage: Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative
  Models", Eq. 4-5, k = 5 as in the paper. A blocked float64 port of the authors' ``prdc`` package
  (``compute_prdc``), checked against it in tests/unit/test_kid_prdc.py; blocks keep memory at
  ``O(block * N)`` instead of the reference's full ``N x M`` distance matrices.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_fidelity.metric_kid import (
    KEY_METRIC_KID_MEAN,
    KEY_METRIC_KID_STD,
    kid_features_to_metric,
)
from torch_fidelity.metric_prc import (
    KEY_METRIC_PRECISION,
    KEY_METRIC_RECALL,
    prc_features_to_metric,
)

from gan_zoo.errors import ConfigValueError

# torch-fidelity's defaults (torch_fidelity.defaults.DEFAULTS).
KID_SUBSETS, KID_SUBSET_SIZE, KID_SEED = 100, 1000, 2020
PRC_NEIGHBORHOOD, PRC_BATCH_SIZE = 3, 10000
DC_NEIGHBORHOOD = 5  # Naeem et al. 2020, Sec. 4
BLOCK = 1024  # rows of a distance block in density_coverage


def _check_sets(real: Tensor, fake: Tensor, min_real: int, min_fake: int, what: str) -> None:
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        shapes = f"real {tuple(real.shape)}, fake {tuple(fake.shape)}"
        raise ConfigValueError("features", shapes, "(N, D) and (M, D) feature matrices")
    if len(real) < min_real or len(fake) < min_fake:
        raise ValueError(
            f"{what} needs at least {min_real} real and {min_fake} generated images, got "
            f"{len(real)} real and {len(fake)} generated"
        )


def kid(
    real: Tensor,
    fake: Tensor,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    seed: int = KID_SEED,
) -> tuple[float, float]:
    """KID mean and std over ``subsets`` random subsets of real ``(N, D)`` and fake ``(M, D)``.

    The subset size is ``min(subset_size, N, M)`` (torch-fidelity refuses larger ones), drawn
    without replacement from ``np.random.RandomState(seed)``; the std is ``np.std`` over subsets.
    Fakes are torch-fidelity's ``input1``, so the subsets equal ``calculate_metrics``'s.
    """
    _check_sets(real, fake, 2, 2, "KID")
    size = min(subset_size, len(real), len(fake))
    out = kid_features_to_metric(
        fake.float().cpu(),
        real.float().cpu(),
        kid_subsets=subsets,
        kid_subset_size=size,
        rng_seed=seed,
        verbose=False,
    )
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])


def precision_recall(
    real: Tensor, fake: Tensor, neighborhood: int = PRC_NEIGHBORHOOD
) -> tuple[float, float]:
    """Precision and recall (Kynkäänniemi et al. 2019) of fake ``(M, D)`` against real ``(N, D)``.

    A point is inside the other set's manifold when it lies within distance ``<=`` of some
    sample's ``neighborhood``-th nearest neighbour in that set (the sample itself excluded).
    """
    _check_sets(real, fake, neighborhood + 1, neighborhood + 1, "precision/recall")
    out = prc_features_to_metric(
        fake.float(),
        real.float(),
        prc_neighborhood=neighborhood,
        prc_batch_size=PRC_BATCH_SIZE,
        save_cpu_ram=True,  # blocked distances: memory O(batch * N), same values
        verbose=False,
    )
    return float(out[KEY_METRIC_PRECISION]), float(out[KEY_METRIC_RECALL])


def knn_radii(real: Tensor, k: int, block: int = BLOCK) -> Tensor:
    """Distance ``(N,)`` from each real point to its ``k``-th nearest other real point."""
    radii = [torch.cdist(rows, real).kthvalue(k + 1, dim=1).values for rows in real.split(block)]
    return torch.cat(radii)  # the (k+1)-th smallest counts the point itself at distance 0


def density_coverage(
    real: Tensor, fake: Tensor, neighborhood: int = DC_NEIGHBORHOOD, block: int = BLOCK
) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020, Eq. 4-5) of fake ``(M, D)`` against real ``(N, D)``.

    With ``r_i`` the distance from real ``i`` to its ``k``-th nearest real neighbour:
    density ``= 1/(k M) sum_j sum_i [d(f_j, x_i) < r_i]`` and coverage
    ``= 1/N sum_i [min_j d(x_i, f_j) < r_i]`` (strict, as ``prdc.compute_prdc``), in float64.
    """
    _check_sets(real, fake, neighborhood + 1, 1, "density/coverage")  # radii: k others
    real, fake = real.double(), fake.double()
    radii = knn_radii(real, neighborhood, block)  # (N,)
    inside = torch.zeros((), dtype=torch.float64, device=real.device)
    for rows in fake.split(block):
        inside += (torch.cdist(rows, real) < radii).sum()  # (b, N) real balls holding each fake
    nearest_fake = torch.cat([torch.cdist(rows, fake).min(1).values for rows in real.split(block)])
    density = inside.item() / (neighborhood * len(fake))
    coverage = (nearest_fake < radii).double().mean().item()
    return density, coverage
