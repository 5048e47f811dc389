"""GAN variants: the shared loop (:class:`GAN`) and one short subclass per paper."""

from gan_zoo.models import paper_defaults
from gan_zoo.models.base import GAN
from gan_zoo.models.fgan import FGAN
from gan_zoo.models.hinge import HingeGAN
from gan_zoo.models.lsgan import LSGAN
from gan_zoo.models.minimax import MinimaxGAN, NonSaturatingGAN
from gan_zoo.models.r1 import R1GAN
from gan_zoo.models.sngan import SNGAN, apply_spectral_norm
from gan_zoo.models.wgan import WGANGP, WGANClip

# Each configs/model/<name>.yaml takes its paper defaults from the class (model/paper/<Class>).
paper_defaults.register(
    [MinimaxGAN, NonSaturatingGAN, WGANClip, WGANGP, SNGAN, FGAN, LSGAN, HingeGAN, R1GAN]
)

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
    "R1GAN",
    "apply_spectral_norm",
]
