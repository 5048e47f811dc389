"""GAN variants: the shared loop (:class:`GAN`) and one short subclass per paper."""

from gan_zoo.models.base import GAN
from gan_zoo.models.fgan import FGAN
from gan_zoo.models.hinge import HingeGAN
from gan_zoo.models.lsgan import LSGAN
from gan_zoo.models.minimax import MinimaxGAN, NonSaturatingGAN
from gan_zoo.models.sngan import SNGAN, apply_spectral_norm
from gan_zoo.models.wgan import WGANGP, WGANClip

__all__ = [
    "GAN",
    "MinimaxGAN",
    "NonSaturatingGAN",
    "WGANClip",
    "WGANGP",
    "SNGAN",
    "FGAN",
    "LSGAN",
    "HingeGAN",
    "apply_spectral_norm",
]
