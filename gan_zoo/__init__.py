"""gan_zoo: GAN variants as PyTorch Lightning modules, with Hydra configs and shared data."""

from gan_zoo.checkpointing import load_model
from gan_zoo.models import (
    FGAN,
    GAN,
    LSGAN,
    R1GAN,
    SNGAN,
    WGANGP,
    HingeGAN,
    MinimaxGAN,
    NonSaturatingGAN,
    WGANClip,
)

__version__ = "0.1.0"
__all__ = [
    "GAN",
    "FGAN",
    "LSGAN",
    "HingeGAN",
    "MinimaxGAN",
    "NonSaturatingGAN",
    "R1GAN",
    "WGANClip",
    "WGANGP",
    "SNGAN",
    "load_model",
]
