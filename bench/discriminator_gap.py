"""Does a trained discriminator overfit its training images? Its outputs on them vs unseen ones.

    python -m bench.discriminator_gap multirun/small/*/*/checkpoints/last.ckpt

Karras et al. 2020 (ADA, Sec. 2, Fig. 1b-c) diagnose discriminator overfitting by D's outputs on
the training images against validation images: they drift apart as D memorizes the training
set, and ADA's heuristic ``r_t = E[sign D(x_train)]`` rises towards 1. For each checkpoint this
rebuilds the run's data from its stored config (the same ``data.subset`` choice), and scores
with D, unaugmented:

- up to ``--num`` of the run's training images;
- as many digits the run never saw (the rest of the 5,000 offline digits; none when it trained
  on all of them);
- as many of the generator's fakes.

It prints one JSON line per checkpoint: the mean D output and ``E[sign D]`` (the fraction
scored "real", as 2p - 1) on each set, and the train-minus-unseen gap of both. A gap near 0
means D judges unseen digits as it judges its training digits: no overfitting.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import Tensor

from bench import checkpoints
from gan_zoo.checkpointing.load import read_checkpoint
from gan_zoo.checkpointing.run_config import CONFIG_KEY
from gan_zoo.data.base import SubsetDataset
from gan_zoo.models.critic import scores_and_logits


@torch.no_grad()
def scores(model: Any, images: Tensor, labels: Tensor | None) -> Tensor:
    """D's ``(N,)`` outputs for ``(N, C, H, W)`` images in [-1, 1] (unpacked models only)."""
    net = model.discriminator.eval()
    out = net(images) if labels is None else net(images, labels)
    return scores_and_logits(out)[0].float()


def summary(values: Tensor) -> dict[str, float]:
    return {"mean": round(values.mean().item(), 4), "sign": round(values.sign().mean().item(), 4)}


def split(path: str, num: int, seed: int) -> dict[str, tuple[Tensor, Tensor | None]]:
    """The run's training images and unseen ones, ``(images, labels)`` each, at most ``num``."""
    config = read_checkpoint(path)[CONFIG_KEY]
    data = instantiate(config["data"])
    data.setup("fit")
    train = data.dataset
    generator = torch.Generator().manual_seed(seed)
    sets: dict[str, tuple[Tensor, Tensor | None]] = {}
    if isinstance(train, SubsetDataset) and len(train) < len(train.dataset):
        full, seen = train.dataset, set(train.indices.tolist())
        unseen = torch.tensor([i for i in range(len(full)) if i not in seen])
        chosen = unseen[torch.randperm(len(unseen), generator=generator)[:num]]
        sets["unseen"] = (full.rows(chosen.tolist()), full.labels[chosen])
    rows = torch.randperm(len(train), generator=generator)[:num]
    labels = train.labels[rows] if train.labels is not None else None
    sets["train"] = (train.rows(rows.tolist()), labels)
    return sets


def measure(path: str, num: int, seed: int) -> dict[str, Any]:
    model = checkpoints.load(path)
    if model.pack != 1:
        raise SystemExit(f"error: {path}: model.pack={model.pack}; only unpacked D (pack=1)")
    row: dict[str, Any] = {"checkpoint": path}
    conditional = model.num_classes > 0
    for name, (images, labels) in split(path, num, seed).items():
        images = images.float() / 127.5 - 1 if images.dtype == torch.uint8 else images
        row[name] = summary(scores(model, images, labels if conditional else None))
        row[name]["n"] = images.shape[0]
    torch.manual_seed(seed)
    n = row["train"]["n"]
    fake_labels = torch.arange(n) % model.num_classes if conditional else None
    fakes = model.sample(n, labels=fake_labels)
    row["fake"] = summary(scores(model, fakes, fake_labels))
    if "unseen" in row:
        row["gap"] = {k: round(row["train"][k] - row["unseen"][k], 4) for k in ("mean", "sign")}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--num", type=int, default=500, help="images per set (at most)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for path in args.checkpoints:
        print(json.dumps(measure(str(path), args.num, args.seed)))


if __name__ == "__main__":
    main()
