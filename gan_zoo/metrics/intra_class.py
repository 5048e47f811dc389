"""Intra-class Fréchet distance: how well a conditional generator matches each class's images.

Miyato & Koyama 2018 ("cGANs with Projection Discriminator", Sec. 4.1): "intra FID", the FID
between the generated images of a class and the real images of that class, averaged over the
classes. It judges what the class-blind FID cannot: a generator that draws good digits but the
wrong ones for the label asked scores well on FID and badly here.

Per class, running float64 sums (``FeatureStatistics``), so ranks merge by summing and the value
is exact under DDP, as FID is. Fakes are grouped by the class they were asked for, reals by
their label. With the MNIST network (128-d features) the 10 classes cost 10 covariance sums; the
value is a Fréchet distance in that network's features, ``intra_fd_mnist_<n>_train``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan_zoo.metrics import distributed
from gan_zoo.metrics.functional import FeatureStatistics, frechet_distance


class ClassStatistics:
    """Feature statistics ``(D,)``, ``(D, D)`` and a count for each of ``num_classes`` classes."""

    def __init__(self, num_classes: int, dim: int) -> None:
        self.per_class = [FeatureStatistics.empty(dim) for _ in range(num_classes)]

    def add(self, features: Tensor, labels: Tensor) -> None:
        """Accumulate features ``(B, D)`` under their classes ``(B,)``."""
        if labels.shape != features.shape[:1]:
            raise ValueError(
                f"labels must be ({features.shape[0]},) for the features, got {tuple(labels.shape)}"
            )
        labels = labels.to(features.device)
        for c in labels.unique().tolist():
            if not 0 <= c < len(self.per_class):
                raise ValueError(f"label {c} is outside [0, {len(self.per_class) - 1}]")
            self.per_class[c].add(features[labels == c])

    def synced(self) -> ClassStatistics:
        """The sums over every rank (a collective under DDP; a copy with one process)."""
        out = ClassStatistics(0, 0)
        out.per_class = [distributed.all_sum_statistics(stats) for stats in self.per_class]
        return out

    def stacked(self) -> dict[str, Tensor]:
        """``class_feature_sum`` ``(K, D)``, ``class_outer_sum`` ``(K, D, D)``, ``class_count``
        ``(K,)``: the form the reference cache stores."""
        return {
            "class_feature_sum": torch.stack([s.feature_sum.cpu() for s in self.per_class]),
            "class_outer_sum": torch.stack([s.outer_sum.cpu() for s in self.per_class]),
            "class_count": torch.tensor([s.count for s in self.per_class], dtype=torch.long),
        }

    @classmethod
    def from_stacked(cls, data: dict[str, Tensor]) -> ClassStatistics:
        out = cls(0, 0)
        for sums, outer, count in zip(
            data["class_feature_sum"], data["class_outer_sum"], data["class_count"].tolist()
        ):
            out.per_class.append(FeatureStatistics(sums, outer, int(count)))
        return out


def intra_class_fd(real: ClassStatistics, fake: ClassStatistics) -> tuple[float, list[float]]:
    """Mean over classes of the Fréchet distance between each class's real and fake features,
    and the ``K`` per-class distances (Miyato & Koyama 2018, Sec. 4.1, "intra FID").

    Raises ValueError when a class has fewer than 2 real or 2 generated samples (its covariance
    is undefined), naming the class and the counts.

    >>> import torch
    >>> real, fake = ClassStatistics(2, 3), ClassStatistics(2, 3)
    >>> x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    >>> labels = torch.arange(50) % 2
    >>> real.add(x, labels); fake.add(x, labels)  # the same features: 0 for each class
    >>> mean, per_class = intra_class_fd(real, fake)
    >>> round(mean, 6), [round(v, 6) for v in per_class]
    (0.0, [0.0, 0.0])
    """
    if len(real.per_class) != len(fake.per_class):
        raise ValueError(
            f"real and fake statistics cover {len(real.per_class)} and {len(fake.per_class)} "
            "classes; they must be the same"
        )
    distances = []
    for c, (r, f) in enumerate(zip(real.per_class, fake.per_class)):
        if r.count < 2 or f.count < 2:
            raise ValueError(
                f"intra-class FD needs at least 2 real and 2 generated samples of every class; "
                f"class {c} has {r.count} real and {f.count} generated"
            )
        distances.append(
            frechet_distance(
                r.mean().cpu().numpy(),
                r.covariance().cpu().numpy(),
                f.mean().cpu().numpy(),
                f.covariance().cpu().numpy(),
            )
        )
    return sum(distances) / len(distances), distances
