"""Sample-quality metrics that agree with their reference implementations, scale over DDP ranks,
and name their protocol.

``FidelityMetrics`` is the torchmetrics-style entry point: FID, IS, KID, precision/recall,
density/coverage, and, with the shipped MNIST network (``extractor="mnist-cnn"``), the Fréchet
distance ``fd_mnist`` and class coverage. ``gan_zoo.callbacks.FidelityCallback`` runs it during
training (``callbacks.fidelity``, ``callbacks.mnist_metrics``) and ``evaluate.py`` on a checkpoint.
``mode_statistics`` is PacGAN's mode coverage of toy mixtures (``ModeCoverageCallback``). See
docs/metrics.md.
"""

from gan_zoo.metrics.classes import class_metrics
from gan_zoo.metrics.distributed import FidelityError
from gan_zoo.metrics.extractors import EXTRACTORS, FeatureExtractor
from gan_zoo.metrics.feature_sets import density_coverage, kid, precision_recall
from gan_zoo.metrics.fidelity import FidelityMetrics
from gan_zoo.metrics.functional import (
    BiasedFIDWarning,
    FeatureStatistics,
    frechet_distance,
    inception_score,
    to_uint8,
    to_uint8_rgb,
)
from gan_zoo.metrics.inception import InceptionWeightsError, write_random_weights
from gan_zoo.metrics.mnist_net import MNISTClassifier, MNISTWeightsError, load_mnist_classifier
from gan_zoo.metrics.mode_coverage import mode_metric_names, mode_statistics
from gan_zoo.metrics.protocol import metric_name, metric_names

__all__ = [
    "EXTRACTORS",
    "BiasedFIDWarning",
    "FeatureExtractor",
    "FeatureStatistics",
    "FidelityError",
    "FidelityMetrics",
    "InceptionWeightsError",
    "MNISTClassifier",
    "MNISTWeightsError",
    "class_metrics",
    "density_coverage",
    "frechet_distance",
    "inception_score",
    "kid",
    "load_mnist_classifier",
    "metric_name",
    "metric_names",
    "mode_metric_names",
    "mode_statistics",
    "precision_recall",
    "to_uint8",
    "to_uint8_rgb",
    "write_random_weights",
]
