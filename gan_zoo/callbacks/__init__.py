"""Lightning callbacks shipped with gan_zoo."""

from gan_zoo.callbacks.config_in_checkpoint import ConfigInCheckpoint
from gan_zoo.callbacks.fidelity import FIDCallback, FidelityCallback, ISCallback
from gan_zoo.callbacks.progress import GANProgressBar
from gan_zoo.callbacks.sample_grid import SampleGrid

__all__ = [
    "ConfigInCheckpoint",
    "FIDCallback",
    "FidelityCallback",
    "GANProgressBar",
    "ISCallback",
    "SampleGrid",
]
