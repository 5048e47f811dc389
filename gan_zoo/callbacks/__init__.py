"""Lightning callbacks shipped with gan_zoo."""

from gan_zoo.callbacks.config_in_checkpoint import ConfigInCheckpoint
from gan_zoo.callbacks.progress import GANProgressBar
from gan_zoo.callbacks.sample_grid import SampleGrid

__all__ = ["ConfigInCheckpoint", "GANProgressBar", "SampleGrid"]
