"""KID, precision/recall, density/coverage, class metrics and intra-class FD: 2 gloo processes
equal 1 process.

These metrics need the feature vectors, not sums: each rank extracts its share of the real and
generated images and ``compute()`` all-gathers the variable-length feature sets in rank order.
Two CPU processes run the whole protocol (reference, fakes, metrics) with torch-fidelity's real
InceptionV3 (seeded random weights, a few 8 px images) and with the shipped MNIST network (the
real 28 px digits, a seeded random generator); a 1-process run gives the same values. The counts
split into rank shares that start on batch boundaries (7 reals at batch 2: 4 + 3; 100 fakes at
batch 25: 50 + 50), so each image meets the same batch neighbours as in 1 process and its
features are bit for bit the same; the reals' shares differ in length. KID, precision/recall,
density/coverage and the class metrics then come out identical; FD agrees to 1e-6 relative, as
FID does (tests/integration/test_metrics_ddp.py): its float64 sums are added in another order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from threadpoolctl import threadpool_limits
from torch.utils.data import Dataset

from gan_zoo.data import MNISTSubsetDataModule
from gan_zoo.data.base import GANDataModule, UInt8ImageDataset
from gan_zoo.metrics import FidelityMetrics, write_random_weights
from gan_zoo.metrics.distributed import run_everywhere
from gan_zoo.metrics.protocol import score_generator
from gan_zoo.metrics.reference import prepare_reference
from gan_zoo.nets import DCGANGenerator
from tests.integration.two_processes import run_two_processes

DEADLINE_S = 300
# (reals, fakes, batch) per extractor; see the module docstring for why these counts.
COUNTS = {"inception-v3-compat": (7, 8, 2), "mnist-cnn": (99, 100, 25)}
SIZE, LATENT = 8, 4


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "inception_random_seed0.pth"
    return path if path.exists() else write_random_weights(path, seed=0)


class TinyImages(GANDataModule):
    """Seven fixed random uint8 images (3, SIZE, SIZE)."""

    def __init__(self) -> None:
        super().__init__(batch_size=2)
        self.sample_shape = (3, SIZE, SIZE)

    def build_dataset(self) -> Dataset:
        gen = torch.Generator().manual_seed(0)
        return UInt8ImageDataset(
            torch.randint(0, 256, (7, 3, SIZE, SIZE), generator=gen, dtype=torch.uint8)
        )


def tiny_generator(z: torch.Tensor) -> torch.Tensor:
    """``(B, LATENT)`` noise to ``(B, 3, SIZE, SIZE)`` images in [-1, 1]."""
    weight = torch.randn(LATENT, 3 * SIZE * SIZE, generator=torch.Generator().manual_seed(1))
    return torch.tanh(z @ weight / 2).view(-1, 3, SIZE, SIZE)


def digit_generator() -> DCGANGenerator:
    """A seeded, untrained DCGAN generator of 28 px digits (eval mode: no batch statistics)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2)
        return DCGANGenerator(latent_dim=16, channels=1, image_size=28, width=16).eval()


def score(extractor: str, weights: str, cache: Path) -> dict[str, Any]:
    """The whole protocol, as the training callback runs it, with every feature-set metric."""
    num_real, num_fake, batch = COUNTS[extractor]
    inception = extractor == "inception-v3-compat"
    metric = run_everywhere(
        lambda: FidelityMetrics(
            isc=False,
            inception_weights=weights,
            batch_size=batch,
            extractor=extractor,
            kid=True,
            precision_recall=True,
            density_coverage=True,
            dc_neighborhood=3 if inception else 5,
            classes=not inception,
            intra_fd_classes=0 if inception else 10,
        )
    )
    data = TinyImages() if inception else MNISTSubsetDataModule()
    reference = prepare_reference(metric, data, num_real, cache, batch_size=batch)
    if inception:
        sample, latent = tiny_generator, LATENT
    else:
        net = digit_generator()
        # Scored as a 10-class conditional generator (it ignores the class): intra-class FD and
        # class accuracy group its fakes by the class asked for, the reals by their labels.
        sample, latent = (lambda z, labels=None: net(z).detach()), net.latent_dim
    classes = 0 if inception else 10
    values = score_generator(
        metric, sample, latent, num_fake, seed=3, batch_size=batch, num_classes=classes
    )
    return {**values, "reference": reference.source}


def worker(rank: int, port: int, weights: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        with threadpool_limits(limits=1):
            results = {name: score(name, weights, Path(out) / name) for name in COUNTS}
        (Path(out) / f"rank{rank}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::gan_zoo.metrics.BiasedFIDWarning")  # tiny counts, on purpose
def test_feature_set_metrics_over_two_processes_equal_one(inception_weights, tmp_path) -> None:
    ranks = run_two_processes(worker, inception_weights, tmp_path, DEADLINE_S, "metrics")
    assert ranks[0] == ranks[1]  # every rank gets the same numbers
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers, so per-image features are computed alike
    try:
        with threadpool_limits(limits=1):
            one = {name: score(name, str(inception_weights), tmp_path / "one") for name in COUNTS}
            # The reference the 2 ranks gathered, cached by rank 0 with its features.
            reused = {name: score(name, str(inception_weights), tmp_path / name) for name in COUNTS}
    finally:
        torch.set_num_threads(threads)
    for name in COUNTS:
        two = ranks[0][name]
        assert two.pop("reference") == one[name].pop("reference") == "computed"
        assert reused[name].pop("reference") == "cache"
        assert set(two) >= {"fid", "kid_mean", "precision", "recall", "density", "coverage"}
        assert ("intra_fid" in two) == ("class_accuracy" in two) == (name == "mnist-cnn")
        # FD sums float64 statistics per rank, then across ranks: another order of additions;
        # so does intra-class FD, per class (the reference's per-class sums come from the cache).
        summed = ("fid", "intra_fid") if name == "mnist-cnn" else ("fid",)
        for values in (one[name], reused[name]):
            for key in summed:
                assert values.pop(key) == pytest.approx(two[key], rel=1e-6), (name, key)
        # The others see the same features in the same order: the same values, not close ones.
        assert {k: v for k, v in two.items() if k not in summed} == one[name] == reused[name]
        assert 0 < two["coverage"] <= 1 and two["fid"] > 0
