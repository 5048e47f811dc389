"""How good are a checkpoint's MNIST digits? The shipped MNIST network decides.

    python -m bench.sample_quality outputs/ns_gan-mnist_subset/<date>/checkpoints/last.ckpt

Scores ``--num-samples`` fakes (default 2,000, noise seed ``--seed``) of each checkpoint with
``FidelityMetrics(extractor="mnist-cnn")``, gan_zoo's shipped MNIST CNN (docs/metrics.md, "MNIST
metrics"): the Fréchet distance ``fd_mnist`` and KID (``kd_mnist``) against as many training
digits, precision/recall, density/coverage, and the classes covered, KL(class histogram ||
uniform) and mean confidence. It also reports the fraction classified with probability > 0.9
and the histogram of those confident samples, and the classes recognized with probability > 0.7
among the 64 digits of the run's final sample grid (the SampleGrid callback's fixed noise).
``--generator raw`` scores an EMA run's trained generator instead of its average, so one run
with ``model.ema_decay`` on answers both "what does EMA add?" and "how good is the raw G?"
(EMA only reads the weights: the training trajectory is the same either way).
For a class-conditional model it also reports ``class_accuracy_mnist_<n>``: the fraction of
fakes the network assigns the class they were generated for (fake ``i`` asks for class
``i % K``), ``per_class_accuracy`` on the same fakes, and the intra-class Fréchet distance
``intra_fd_mnist_<n>_train`` (per class against the training digits of that class, averaged;
Miyato & Koyama 2018's intra FID in the MNIST network's features). One JSON line per
checkpoint goes to stdout; ``--write`` also puts a table in bench/RESULTS.md ("Sample quality").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import torch

from bench import checkpoints
from gan_zoo.callbacks import SampleGrid
from gan_zoo.data import MNISTSubsetDataModule
from gan_zoo.metrics import FidelityMetrics, mnist_net
from gan_zoo.metrics.classes import class_histogram, conditional_accuracy
from gan_zoo.metrics.mnist_net import MNISTClassifier
from gan_zoo.metrics.protocol import (
    count_label,
    fake_labels,
    fake_noise,
    metric_names,
    mnist_metrics,
    score_generator,
)
from gan_zoo.metrics.reference import Reference, prepare_reference
from gan_zoo.models import GAN

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTION = "## Sample quality (issue 2)"
CACHE = os.environ.get("GAN_ZOO_CACHE", "~/.cache/gan_zoo")
EXTRACTOR = "mnist-cnn"


@torch.no_grad()
def confident(
    net: MNISTClassifier, model: GAN, n: int, seed: int, threshold: float = 0.9
) -> dict[str, Any]:
    """Fraction of ``n`` fakes classified with probability > ``threshold``, and their classes."""
    torch.manual_seed(seed)
    probabilities = net(model.sample(n)).softmax(1)
    sure = probabilities.max(1).values > threshold
    return {
        "fraction_confident": round(sure.float().mean().item(), 4),
        "confident_histogram": class_histogram(probabilities[sure]),
    }


@torch.no_grad()
def grid_classes(net: MNISTClassifier, model: GAN, threshold: float = 0.7) -> int:
    """Classes recognized (probability > ``threshold``) among the final grid's 64 digits."""
    grid = SampleGrid()  # the defaults of configs/callbacks/default.yaml: 64 digits, seed 1234
    z = grid.fixed_noise(grid.num_samples, model.latent_dim)
    confidence, classes = net(model.sample(grid.num_samples, z=z)).softmax(1).max(1)
    return len(set(classes[confidence > threshold].tolist()))


@torch.no_grad()
def per_class_accuracy(net: MNISTClassifier, model: GAN, n: int, seed: int) -> list[float]:
    """A conditional model's accuracy per requested class, on the very fakes the metric's
    ``class_accuracy`` scored: the same noise rows and the same class per row."""
    z = fake_noise(seed, 0, n, model.latent_dim)
    labels = fake_labels(0, n, model.num_classes)
    logits = net(model.sample(n, batch_size=500, z=z, labels=labels))
    return [round(a, 3) for a in conditional_accuracy(logits, labels)["per_class_accuracy"]]


def judge(num_classes: int, num_samples: int) -> tuple[FidelityMetrics, Reference]:
    """The metrics for a model with ``num_classes`` classes, and their reference: the
    statistics of ``num_samples`` of the 5,000 training digits (cached in ``CACHE``)."""
    metric = mnist_metrics(num_classes)
    return metric, prepare_reference(metric, MNISTSubsetDataModule(), num_samples, CACHE, 500)


def score(metric: FidelityMetrics, model: GAN, num_samples: int, seed: int) -> dict[str, Any]:
    """The metrics' values under their protocol names, confident samples and grid classes."""

    def sample(z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # (B, latent_dim), (B,) -> (B, 1, 28, 28)
        return model.sample(z.shape[0], batch_size=z.shape[0], z=z, labels=labels)

    classes = model.num_classes
    values = score_generator(metric, sample, model.latent_dim, num_samples, seed, 500, classes)
    named = metric_names(values, num_samples, num_samples, EXTRACTOR)
    row: dict[str, Any] = {name: round(value, 4) for name, value in named.items()}
    net = mnist_net.load_mnist_classifier()  # the shipped network, checked against its SHA-256
    row.update(confident(net, model, num_samples, seed), grid_classes=grid_classes(net, model))
    if model.num_classes:
        row["per_class_accuracy"] = per_class_accuracy(net, model, num_samples, seed)
    return row


def write_results(rows: list[dict[str, Any]], num_samples: int) -> None:
    n = count_label(num_samples)
    columns = [f"fd_mnist_{n}_train", f"kd_mnist_{n}_train", f"precision_mnist_{n}_train",
               f"recall_mnist_{n}_train", f"density_mnist_{n}_train", f"coverage_mnist_{n}_train",
               f"classes_mnist_{n}", f"class_kl_mnist_{n}", f"confidence_mnist_{n}",
               "fraction_confident", "grid_classes"]  # fmt: skip
    lines = [
        SECTION,
        "",
        f"`python -m bench.sample_quality --write CKPT...` on {time.strftime('%Y-%m-%d')}: "
        f"{num_samples:,} fakes of each checkpoint against as many training digits, scored by "
        f"the shipped MNIST network (held-out accuracy {mnist_net.HELD_OUT_ACCURACY:.3f}; "
        'docs/metrics.md, "MNIST metrics"); `grid_classes`: classes recognized with p > 0.7 '
        "among the 64 digits of the final grid.",
        "",
        "| checkpoint | " + " | ".join(f"`{c}`" for c in columns) + " | confident (p > 0.9) "
        "per class (0-9) |",
        "|---|" + "---|" * (len(columns) + 1),
    ]
    for row in rows:
        cells = " | ".join(str(row[c]) for c in columns)
        lines.append(f"| `{row['checkpoint']}` | {cells} | {row['confident_histogram']} |")
    accuracy = f"class_accuracy_mnist_{count_label(num_samples)}"
    conditional = [row for row in rows if accuracy in row]
    if conditional:
        lines += [
            "",
            "Conditional checkpoints: the requested class as the MNIST network reads "
            f"it, {num_samples:,} fakes asking for each class in turn.",
            "",
            f"| checkpoint | `{accuracy}` | per class (0-9) |",
            "|---|---|---|",
        ]
        lines += [
            f"| `{row['checkpoint']}` | {row[accuracy]} | {row['per_class_accuracy']} |"
            for row in conditional
        ]
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
    parser.add_argument(
        "--generator",
        choices=["ema", "raw"],
        default="ema",
        help="an EMA run's averaged generator (what sample() uses) or its raw, trained one",
    )
    args = parser.parse_args()
    metrics: dict[int, tuple[FidelityMetrics, Reference]] = {}  # by the model's classes
    rows = []
    for arg in args.checkpoints:
        label, _, path = arg.rpartition("=")  # "LABEL=PATH" names a row of the table
        model = checkpoints.load(path)
        if args.generator == "raw":
            model.generator_ema = None  # sample() falls back to the trained generator
        if model.num_classes not in metrics:
            metrics[model.num_classes] = judge(model.num_classes, args.num_samples)
        metric, reference = metrics[model.num_classes]
        row = {"checkpoint": label or path, **score(metric, model, args.num_samples, args.seed)}
        row["real_reference"] = reference.key
        print(json.dumps(row))
        rows.append(row)
    if args.write:
        write_results(rows, args.num_samples)


if __name__ == "__main__":
    main()
