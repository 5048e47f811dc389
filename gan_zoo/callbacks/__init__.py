"""Lightning callbacks shipped with gan_zoo."""

from gan_zoo.callbacks.checkpoint import GANCheckpoint
from gan_zoo.callbacks.config_in_checkpoint import ConfigInCheckpoint
from gan_zoo.callbacks.fidelity import FIDCallback, FidelityCallback, ISCallback
from gan_zoo.callbacks.lipschitz import LipschitzMonitor
from gan_zoo.callbacks.nan_guard import NaNGuard, NonFiniteError
from gan_zoo.callbacks.preemption import Preempted, Preemption
from gan_zoo.callbacks.progress import GANProgressBar
from gan_zoo.callbacks.sample_grid import SampleGrid

__all__ = [
    "GANCheckpoint",
    "ConfigInCheckpoint",
    "FIDCallback",
    "FidelityCallback",
    "GANProgressBar",
    "ISCallback",
    "LipschitzMonitor",
    "NaNGuard",
    "NonFiniteError",
    "Preempted",
    "Preemption",
    "SampleGrid",
]
