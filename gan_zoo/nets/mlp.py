"""MLP generator and discriminator for low-dimensional (toy) data such as 2-D Gaussian mixtures.

The layout follows the toy experiments of Gulrajani et al. 2017 (WGAN-GP, Sec. 5.1 and their
``gan_toy.py``): ``depth`` hidden layers of ``hidden`` ReLU units in both nets.
"""

from __future__ import annotations

from torch import Tensor, nn

from gan_zoo.nets._norm import Norm, check_input_shape, norm_1d
from gan_zoo.validation import PositiveInt, validated


def _hidden_layers(
    in_features: int, hidden: int, depth: int, norm: str = "none"
) -> list[nn.Module]:
    """``depth`` blocks of Linear, norm, ReLU; the first maps ``in_features`` to ``hidden``."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_features if i == 0 else hidden, hidden)]
        layers += [norm_1d(norm, hidden), nn.ReLU()]
    return layers


class MLPGenerator(nn.Module):
    """``z: (B, latent_dim) -> (B, out_dim)`` with a linear output layer.

    No tanh: toy data (e.g. a ring of Gaussians with radius 2) is not scaled to ``[-1, 1]``.
    No norm either; these nets are small enough to train without it.

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
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.output_shape = (out_dim,)
        layers = _hidden_layers(latent_dim, hidden, depth)
        self.net = nn.Sequential(*layers, nn.Linear(hidden, out_dim))

    def forward(self, z: Tensor) -> Tensor:
        """``(B, latent_dim) -> (B, out_dim)``."""
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """``x: (B, in_dim) -> (B,)`` raw scores (logits or critic values, no sigmoid).

    ``norm`` ("batch", "layer" or "none") follows every hidden linear layer; use "layer" or
    "none" with a gradient penalty, which BatchNorm would couple across the batch.

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
    ) -> None:
        super().__init__()
        self.input_shape = (in_dim,)
        layers = _hidden_layers(in_dim, hidden, depth, norm)
        self.net = nn.Sequential(*layers, nn.Linear(hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_dim) -> (B,)``."""
        check_input_shape(self, x, self.input_shape)
        return self.net(x).squeeze(1)
