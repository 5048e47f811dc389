"""Sample a trained GAN: ``python generate.py ckpt_path=PATH num_samples=64``.

Writes ``<out_dir>/grid.png`` (``scatter.png`` for low-dimensional data), plus one PNG per sample
with ``save_images=true`` and ``samples.npz`` with ``save_npz=true``; prints one JSON line listing
what was written.
"""

from __future__ import annotations

import json

import hydra
from omegaconf import DictConfig

from gan_zoo.cli import guarded
from gan_zoo.generation import generate


@hydra.main(version_base="1.3", config_path="configs", config_name="generate")
def main(cfg: DictConfig) -> None:
    written = guarded(lambda: generate(cfg))
    print(json.dumps(written))


if __name__ == "__main__":
    main()
