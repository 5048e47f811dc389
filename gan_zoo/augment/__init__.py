"""Differentiable augmentations for GAN discriminators (training on small data).

- :class:`DiffAugment`: Zhao et al. 2020, the ``color``, ``translation`` and ``cutout`` policies.
- :class:`ADA`: Karras et al. 2020, the ``bgc`` pipeline with an adaptive probability ``p``;
  :class:`AugmentPipe` is the same pipeline at an explicit ``p``.
- :class:`InstanceNoise`: Gaussian noise on every sample D sees (Sønderby et al. 2017), for any
  data, points included.

Both are ``nn.Module``s mapping ``(B, C, H, W)`` images in ``[-1, 1]`` to the same shape and
dtype, differentiable w.r.t. the images. Apply the same module to real and fake images every
time D sees them, in D's step and in G's step, so that G is trained through the augmentation.
Randomness comes from torch's global RNG (or a ``generator`` passed to ``forward``).
"""

from gan_zoo.augment.ada import ADA
from gan_zoo.augment.diffaugment import DiffAugment
from gan_zoo.augment.noise import InstanceNoise
from gan_zoo.augment.pipe import AugmentPipe

__all__ = ["ADA", "AugmentPipe", "DiffAugment", "InstanceNoise"]
