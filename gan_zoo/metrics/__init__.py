"""FID and IS that agree with torch-fidelity, scale over DDP ranks, and name their protocol.

``FidelityMetrics`` is the torchmetrics-style entry point; ``gan_zoo.callbacks.FIDCallback`` /
``ISCallback`` run it during training and ``evaluate.py`` on a checkpoint. See docs/metrics.md.
"""

from gan_zoo.metrics.distributed import FidelityError
from gan_zoo.metrics.fidelity import BiasedFIDWarning, FidelityMetrics
from gan_zoo.metrics.functional import (
    FeatureStatistics,
    frechet_distance,
    inception_score,
    to_uint8_rgb,
)
from gan_zoo.metrics.inception import InceptionWeightsError, write_random_weights

__all__ = [
    "BiasedFIDWarning",
    "FeatureStatistics",
    "FidelityError",
    "FidelityMetrics",
    "InceptionWeightsError",
    "frechet_distance",
    "inception_score",
    "to_uint8_rgb",
    "write_random_weights",
]
