"""Building blocks for class-conditional nets and packed discriminators.

- Generators take the class through conditional batch norm, a BatchNorm whose gain and bias are
  learned per class (de Vries et al. 2017, "Modulating early visual processing by language",
  Eq. 2-3; used in the generator of Miyato & Koyama 2018, "cGANs with Projection
  Discriminator", Sec. 4), or, for MLPs, a class embedding concatenated to z.
- Discriminators end in :class:`ClassConditioning`: the projection term ``y^T V phi(x)`` added to
  the score (Miyato & Koyama 2018, Eq. 3) or an auxiliary classifier head (AC-GAN, Odena et al.
  2017, Sec. 3), on the same features ``phi(x)`` the score is read from.
- :func:`pack_samples`: PacGAN's packing (Lin et al. 2018, Sec. 3), ``m`` samples concatenated
  along features (vectors) or channels (images) into one input of the discriminator.
"""

from __future__ import annotations

from typing import Any, Literal

from torch import Tensor, nn

Conditioning = Literal["projection", "ac"]


def pack_samples(x: Tensor, pack: int) -> Tensor:
    """``(B, D)`` to ``(B / pack, pack * D)``, or ``(B, C, H, W)`` to ``(B / pack, pack * C, H,
    W)``: consecutive samples side by side (PacGAN, Lin et al. 2018, Sec. 3).

    >>> import torch
    >>> pack_samples(torch.arange(8.0).reshape(4, 2), 2).tolist()
    [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]
    """
    if pack == 1:
        return x
    return x.reshape(x.shape[0] // pack, pack * x.shape[1], *x.shape[2:])


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm2d whose affine gain and bias are looked up per class.

    ``x: (B, C, H, W)``, ``labels: (B,)`` long: ``gamma[y] * BN(x) + beta[y]``, gains initialised
    to 1 and biases to 0 (de Vries et al. 2017, Eq. 2-3).
    """

    takes_labels = True

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        shape = (x.shape[0], x.shape[1], 1, 1)
        return self.gain(labels).view(shape) * self.norm(x) + self.bias(labels).view(shape)


def batch_norm_2d(num_features: int, num_classes: int) -> nn.Module:
    """BatchNorm2d, class-conditional when ``num_classes > 0``."""
    if num_classes:
        return ConditionalBatchNorm2d(num_features, num_classes)
    return nn.BatchNorm2d(num_features)


class LabelledSequential(nn.Sequential):
    """``nn.Sequential`` that hands the labels to the layers that take them (``takes_labels``)."""

    takes_labels = True

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, labels) if getattr(layer, "takes_labels", False) else layer(x)
        return x


class ClassConditioning(nn.Module):
    """The class-dependent part of a discriminator's output, on its features ``phi(x)``.

    ``projection``: the score gains ``<V y, phi(x)>`` with ``V`` a class embedding (Miyato &
    Koyama 2018, Eq. 3: ``D(x, y) = psi(phi(x)) + y^T V phi(x)``). ``ac``: a linear classifier
    on ``phi(x)`` whose ``(B, K)`` logits come out beside the scores (AC-GAN, Odena et al. 2017),
    trained by the model's cross-entropy term.
    """

    def __init__(self, features: int, num_classes: int, conditioning: Conditioning) -> None:
        super().__init__()
        self.conditioning = conditioning
        if conditioning == "projection":
            self.embed = nn.Embedding(num_classes, features)
            nn.init.xavier_uniform_(self.embed.weight)
        else:
            self.classifier = nn.Linear(features, num_classes)

    def forward(self, features: Tensor, scores: Tensor, labels: Tensor) -> Any:
        """``(B, F)`` features, ``(B,)`` scores, ``(B,)`` labels -> scores, or (scores, logits)."""
        if self.conditioning == "projection":
            return scores + (self.embed(labels) * features).sum(dim=1)
        return scores, self.classifier(features)


def conditioned_output(
    conditioning: ClassConditioning | None, features: Tensor, scores: Tensor, labels: Any
) -> Any:
    """A discriminator's output: the scores alone, or with its class term (labels required)."""
    if conditioning is None:
        return scores
    if labels is None:
        raise ValueError("this discriminator is class-conditional: pass labels (B,)")
    return conditioning(features, scores, labels)
