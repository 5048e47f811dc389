"""Score a checkpoint: ``python evaluate.py ckpt_path=PATH metrics.num_samples=50000``.

Prints exactly one JSON line on stdout, ``{"fid": ..., "is_mean": ..., "is_std": ...,
"protocol": {...}}`` from InceptionV3, and for MNIST-shaped checkpoints ``"mnist": {...,
"protocol": {...}}`` from the shipped MNIST network (alone, offline, with ``metrics.fid=false
metrics.isc=false``); everything else goes to stderr. ``trainer.devices=K`` runs K processes
with the same result. Options: configs/evaluate.yaml; protocol: docs/metrics.md.
"""

from __future__ import annotations

import json

import hydra
from omegaconf import DictConfig

from gan_zoo.cli import fail, guarded
from gan_zoo.evaluation import evaluate
from gan_zoo.metrics import FidelityError, InceptionWeightsError


@hydra.main(version_base="1.3", config_path="configs", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    try:
        result = guarded(lambda: evaluate(cfg))
    except (FidelityError, InceptionWeightsError) as err:
        fail(str(err))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
