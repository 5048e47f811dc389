"""MLP generator and discriminator for low-dimensional (toy) data such as 2-D Gaussian mixtures.

The layout follows the toy experiments of Gulrajani et al. 2017 (WGAN-GP, Sec. 5.1 and their
``gan_toy.py``): ``depth`` hidden layers of ``hidden`` ReLU units in both nets.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_zoo.nets._norm import Norm, check_input_shape, norm_1d
from gan_zoo.nets.conditioning import (
    ClassConditioning,
    Conditioning,
    conditioned_output,
    pack_samples,
)
from gan_zoo.validation import NonNegativeInt, PositiveFloat, PositiveInt, validated


class Maxout(nn.Module):
    """``(B, units * pieces) -> (B, units)``: the largest of each unit's ``pieces`` linear
    responses (Goodfellow et al. 2013, "Maxout Networks", Eq. 1), the activation of PacGAN's
    toy discriminator (Lin et al. 2018, App. D: 5 pieces).

    >>> Maxout(pieces=2)(torch.tensor([[1.0, -2.0, 0.5, 3.0]]))
    tensor([[1., 3.]])
    """

    def __init__(self, pieces: int) -> None:
        super().__init__()
        self.pieces = pieces

    def forward(self, x: Tensor) -> Tensor:
        return x.unflatten(1, (-1, self.pieces)).amax(dim=2)


def _hidden_layers(
    in_features: int, hidden: int, depth: int, norm: str = "none", maxout: int = 1
) -> list[nn.Module]:
    """``depth`` blocks of Linear, norm, then ReLU (``maxout == 1``) or :class:`Maxout` over
    ``maxout`` pieces per unit; the first block maps ``in_features`` to ``hidden``."""
    width = hidden * maxout  # each unit's pieces side by side
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_features if i == 0 else hidden, width), norm_1d(norm, width)]
        layers += [nn.ReLU() if maxout == 1 else Maxout(maxout)]
    return layers


def _initialize(net: nn.Module, std: float | None) -> None:
    """Linear weights from N(0, std²) and zero biases (PacGAN's released toy code: 0.02); with
    ``std=None`` PyTorch's default initialization stays."""
    if std is None:
        return
    for module in net.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, std)
            nn.init.zeros_(module.bias)


class MLPGenerator(nn.Module):
    """``z: (B, latent_dim) -> (B, out_dim)`` with a linear output layer.

    No tanh: toy data (e.g. a ring of Gaussians with radius 2) is not scaled to ``[-1, 1]``.
    ``norm`` follows every hidden linear layer: "none" by default (these nets train without
    it), "batch" in PacGAN's toy generator (Lin et al. 2018, App. D). With ``num_classes > 0``
    the class enters one-hot, concatenated to z (Mirza & Osindero 2014, Sec. 3.2):
    ``forward(z, labels)``.

    >>> import torch
    >>> MLPGenerator(latent_dim=2, out_dim=3, hidden=16)(torch.randn(5, 2)).shape
    torch.Size([5, 3])
    """

    latent_dim: int
    output_shape: tuple[int, ...]

    @validated
    def __init__(
        self,
        latent_dim: PositiveInt = 2,
        out_dim: PositiveInt = 2,
        hidden: PositiveInt = 256,
        depth: PositiveInt = 3,
        num_classes: NonNegativeInt = 0,
        norm: Norm = "none",
        init_std: PositiveFloat | None = None,
    ) -> None:
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.output_shape = (out_dim,)
        layers = _hidden_layers(latent_dim + num_classes, hidden, depth, norm)
        self.net = nn.Sequential(*layers, nn.Linear(hidden, out_dim))
        _initialize(self, init_std)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """``(B, latent_dim)`` (and ``(B,)`` labels) ``-> (B, out_dim)``."""
        if self.num_classes:
            if labels is None:
                raise ValueError("this generator is class-conditional: pass labels (B,)")
            z = torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """``x: (B, in_dim) -> (B,)`` raw scores (logits or critic values, no sigmoid).

    ``norm`` ("batch", "layer" or "none") follows every hidden linear layer; use "layer" or
    "none" with a gradient penalty, which BatchNorm would couple across the batch. ``pack``
    scores packs of samples concatenated (PacGAN): ``(B, in_dim) -> (B / pack,)``. With
    ``num_classes > 0`` it takes labels, and ``conditioning`` adds the projection term or an
    auxiliary classifier on the last hidden features (see ``gan_zoo.nets.conditioning``).

    >>> import torch
    >>> MLPDiscriminator(in_dim=2, hidden=16, norm="layer")(torch.randn(5, 2)).shape
    torch.Size([5])
    """

    input_shape: tuple[int, ...]

    @validated
    def __init__(
        self,
        in_dim: PositiveInt = 2,
        hidden: PositiveInt = 256,
        depth: PositiveInt = 3,
        norm: Norm = "none",
        pack: PositiveInt = 1,
        num_classes: NonNegativeInt = 0,
        conditioning: Conditioning = "projection",
        maxout: PositiveInt = 1,
        init_std: PositiveFloat | None = None,
    ) -> None:
        super().__init__()
        self.input_shape, self.pack, self.num_classes = (in_dim,), pack, num_classes
        layers = _hidden_layers(in_dim * pack, hidden, depth, norm, maxout)
        self.net = nn.Sequential(*layers, nn.Linear(hidden, 1))
        self.conditioning = (
            ClassConditioning(hidden, num_classes, conditioning) if num_classes else None
        )
        _initialize(self.net, init_std)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Any:
        """``(B, in_dim)`` (and ``(B,)`` labels) ``-> (B / pack,)`` scores (and class logits)."""
        check_input_shape(self, x, self.input_shape)
        features = self.net[:-1](pack_samples(x, self.pack))  # (B / pack, hidden)
        scores = self.net[-1](features).squeeze(1)
        return conditioned_output(self.conditioning, features, scores, labels)
