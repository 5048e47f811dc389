"""Train a GAN: ``python train.py model=wgan_gp data=cifar10 trainer.devices=4``.

Every option lives in ``configs/``; see the README for the keys users rely on.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from gan_zoo.callbacks import NonFiniteError
from gan_zoo.cli import check_group_overrides, guarded
from gan_zoo.training import train

# Exit status of a run stopped by a NaN/Inf (2 is bad input, 0 a finished or preempted run).
DIVERGED = 3


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> None:
    try:
        guarded(lambda: train(cfg))
    except NonFiniteError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(DIVERGED) from None


if __name__ == "__main__":
    check_group_overrides(sys.argv[1:])
    main()
