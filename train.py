"""Train a GAN: ``python train.py model=wgan_gp data=cifar10 trainer.devices=4``.

Every option lives in ``configs/``; see the README for the keys users rely on.
"""

from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from gan_zoo.callbacks import NonFiniteError
from gan_zoo.cli import check_group_overrides, guarded
from gan_zoo.errors import ConfigValueError
from gan_zoo.training import train

# Exit status of a run stopped by a NaN/Inf (2 is bad input, 0 a finished or preempted run).
DIVERGED = 3
log = logging.getLogger("train")


def optimized_value(metrics: dict[str, float], name: str | None) -> float | None:
    """The final value of the metric ``name`` (``optimized_metric``, set by
    configs/hparams_search/*.yaml) among a run's ``metrics``; None when unset."""
    if name is None:
        return None
    if name not in metrics:
        valid = f"a metric the run logged: {', '.join(sorted(metrics)) or 'none'}"
        raise ConfigValueError("optimized_metric", name, valid)
    return metrics[name]


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Train; return the final value of ``optimized_metric`` for Hydra's Optuna sweeper."""
    try:
        result = guarded(lambda: train(cfg))
    except NonFiniteError as err:
        # Also into the run's own log (Hydra's <run dir>/train.log): a sweep's job directory
        # then says why the run stopped, not only the sweep's stderr.
        log.error("%s", err)
        print(f"error: {err}", file=sys.stderr)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            # Exiting would end the whole sweep; failing the job lets the launcher run the
            # others (and Optuna record a failed trial).
            raise
        raise SystemExit(DIVERGED) from None
    return guarded(lambda: optimized_value(result["metrics"], cfg.get("optimized_metric")))


if __name__ == "__main__":
    check_group_overrides(sys.argv[1:])
    main()
