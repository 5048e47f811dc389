"""Lightning callbacks shipped with gan_zoo."""

from gan_zoo.callbacks.fidelity import FidelityCallback
from gan_zoo.callbacks.lipschitz import LipschitzMonitor
from gan_zoo.callbacks.mode_coverage import ModeCoverageCallback
from gan_zoo.callbacks.nan_guard import NaNGuard, NonFiniteError
from gan_zoo.callbacks.preemption import Preempted, Preemption
from gan_zoo.callbacks.progress import GANProgressBar
from gan_zoo.callbacks.sample_grid import SampleGrid

__all__ = [
    "FidelityCallback",
    "GANProgressBar",
    "LipschitzMonitor",
    "ModeCoverageCallback",
    "NaNGuard",
    "NonFiniteError",
    "Preempted",
    "Preemption",
    "SampleGrid",
]
