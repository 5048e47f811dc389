"""Plain ``nn.Module`` generators and discriminators; the GAN models wrap them.

Every generator has ``latent_dim`` and ``output_shape`` (the per-sample shape it produces);
every discriminator has ``input_shape`` and maps ``(B, *input_shape)`` to raw scores ``(B,)``.
Discriminators contain no spectral norm: SN-GAN applies it from the outside.
"""

from gan_zoo.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_zoo.nets.mlp import MLPDiscriminator, MLPGenerator
from gan_zoo.nets.resnet import ResNetDiscriminator, ResNetGenerator

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "ResNetDiscriminator",
    "ResNetGenerator",
]
