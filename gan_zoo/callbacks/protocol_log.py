"""The protocol of every logged metric, as one ``metric_protocol`` hyperparameter.

Every metric callback (FID/IS and the MNIST network's metrics in ``callbacks.fidelity``, PacGAN's
mode coverage in ``callbacks.mode_coverage``) names how its numbers were measured; this is the one
place that writes those descriptions to the loggers.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import WandbLogger


def log_metric_protocols(trainer: pl.Trainer) -> None:
    """Log the protocol of every metric name any callback logged, as one ``metric_protocol``.

    Loggers replace a hyperparameter rather than merge it, so each metric callback logs the
    union of all their ``logged_protocol``s: the last writer keeps every name.
    """
    merged: dict[str, Any] = {}
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        merged.update(getattr(callback, "logged_protocol", None) or {})
    described = {"metric_protocol": merged}
    for logger in trainer.loggers:
        logger.log_hyperparams(described)
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(described)
