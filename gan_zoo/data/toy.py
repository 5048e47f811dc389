"""Low-dimensional toy distributions for watching mode collapse: 2-D mixtures, swiss roll, 1-D.

Each dataset is drawn once from ``seed`` in ``setup``, so every run and every rank trains on the
same points; raw float32 coordinates, not normalised.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

import annotated_types as at
import numpy as np
import torch
from torch.utils.data import Dataset

from gan_zoo.data.base import GANDataModule, TensorRowDataset
from gan_zoo.errors import check
from gan_zoo.validation import NonNegativeInt, PositiveFloat, PositiveInt, validated


def ring_modes(num_modes: int, radius: float = 1.0) -> torch.Tensor:
    """Points evenly spaced on a circle, ``(num_modes, 2)``: ``radius * (cos 2πk/K, sin 2πk/K)``."""
    angles = 2 * math.pi * torch.arange(num_modes, dtype=torch.float64) / num_modes
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid_modes(values: Sequence[float]) -> torch.Tensor:
    """The Cartesian grid ``values x values`` as ``(len(values) ** 2, 2)``."""
    axis = torch.tensor(values, dtype=torch.float32)
    return torch.cartesian_prod(axis, axis)


# (modes, per-mode std) of the PacGAN mode-collapse benchmarks (Lin et al. 2018, Sec. 5).
MIXTURES: dict[str, tuple[torch.Tensor, float]] = {
    "ring8": (ring_modes(8), 0.01),
    "grid25": (grid_modes([-4.0, -2.0, 0.0, 2.0, 4.0]), 0.05),
}
TOY2D_NAMES = (*MIXTURES, "swiss_roll")


def sample_mixture(
    modes: torch.Tensor, std: float, num_samples: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Equal-weight isotropic Gaussian mixture: ``(num_samples, D)`` points around ``modes``
    ``(K, D)``, and the ``(num_samples,)`` mode each was drawn from (its label)."""
    centres = modes.numpy().astype(np.float64)
    which = rng.integers(len(centres), size=num_samples)  # mode of each sample, uniform
    points = centres[which] + std * rng.standard_normal((num_samples, centres.shape[1]))
    return torch.from_numpy(points).float(), torch.from_numpy(which).long()


def sample_swiss_roll(
    num_samples: int, rng: np.random.Generator, noise: float = 0.25, scale: float = 7.5
) -> torch.Tensor:
    """2-D swiss roll ``(num_samples, 2)``, roughly within [-1.5, 2].

    sklearn's ``make_swiss_roll(noise=0.25)`` with its (x, z) coordinates kept and divided by 7.5,
    as in the toy experiments of WGAN-GP (Gulrajani et al. 2017).
    """
    t = 1.5 * math.pi * (1 + 2 * rng.random(num_samples))  # angle, also the radius
    points = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    points += noise * rng.standard_normal(points.shape)
    return torch.from_numpy(points / scale).float()


class Toy2DDataModule(GANDataModule):
    """2-D points ``(B, 2)`` from ``ring8``, ``grid25`` or ``swiss_roll``.

    ``ring8``: 8 Gaussians at ``(cos 2πk/8, sin 2πk/8)``, std 0.01; ``grid25``: 25 Gaussians at
    ``{-4, -2, 0, 2, 4}^2``, std 0.05 (PacGAN protocol, Lin et al. 2018). ``modes`` ``(K, 2)`` and
    ``mode_std`` serve mode-coverage metrics; both are None for ``swiss_roll``.

    >>> Toy2DDataModule(name="grid25").modes.shape
    torch.Size([25, 2])
    """

    @validated
    def __init__(
        self,
        name: str = "ring8",
        num_samples: PositiveInt = 100_000,
        batch_size: int = 512,
        num_workers: int = 0,
        seed: NonNegativeInt = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers)
        check(name in TOY2D_NAMES, "name", name, f"one of {', '.join(TOY2D_NAMES)}")
        self.name = name
        self.num_samples = num_samples
        self.seed = seed
        self.sample_shape = (2,)
        self.modes: torch.Tensor | None = None
        self.mode_std: float | None = None
        if name in MIXTURES:
            modes, self.mode_std = MIXTURES[name]
            self.modes = modes.clone()

    def build_dataset(self) -> Dataset[torch.Tensor]:
        rng = np.random.default_rng(self.seed)
        if self.modes is None:
            return TensorRowDataset(sample_swiss_roll(self.num_samples, rng))
        assert self.mode_std is not None
        points, which = sample_mixture(self.modes, self.mode_std, self.num_samples, rng)
        return TensorRowDataset(points, labels=which)  # a mixture's mode is its label


class Toy1DDataModule(GANDataModule):
    """1-D samples ``(B, 1)`` from an equal-weight mixture of Gaussians at ``means``, std ``std``.

    The default is the one-dimensional two-mode example used to explain GANs and mode collapse.
    ``modes`` ``(K, 1)`` and ``mode_std`` expose the mixture for metrics and plots.

    >>> Toy1DDataModule().modes.squeeze(1).tolist()
    [-2.0, 2.0]
    """

    @validated
    def __init__(
        self,
        means: Annotated[list[float], at.MinLen(1)] = [-2.0, 2.0],  # noqa: B006 (validated copy)
        std: PositiveFloat = 0.5,
        num_samples: PositiveInt = 100_000,
        batch_size: int = 512,
        num_workers: int = 0,
        seed: NonNegativeInt = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers)
        means = [float(m) for m in means]
        self.means = means
        self.std = float(std)
        self.num_samples = num_samples
        self.seed = seed
        self.sample_shape = (1,)
        self.modes = torch.tensor(means, dtype=torch.float32).unsqueeze(1)  # (K, 1)
        self.mode_std = self.std

    def build_dataset(self) -> Dataset[torch.Tensor]:
        rng = np.random.default_rng(self.seed)
        points, which = sample_mixture(self.modes, self.std, self.num_samples, rng)
        return TensorRowDataset(points, labels=which)
