"""FID/IS over 2 gloo processes: the same numbers as 1 process, and no hang when a rank fails.

Two CPU processes are spawned with ``torch.multiprocessing`` and joined under a deadline, so a
deadlock fails the test instead of stalling the suite. InceptionV3 is torch-fidelity's real
extractor with seeded random weights; both runs use one thread per process. The 6 fakes are
split 3 + 3 (by count, not in whole batches of 2), so fake 2 meets InceptionV3 alone on rank 0
but paired with fake 3 in 1 process: its pool features come out the same, its logits (a
batch-of-one matrix product) differ by float32 rounding, ~1e-5, which moved IS by ~6e-9 (mean)
and ~5e-7 (std over 2 splits) relative when this was written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from gan_zoo.data.base import GANDataModule, UInt8ImageDataset
from gan_zoo.metrics import FidelityError, FidelityMetrics, write_random_weights
from gan_zoo.metrics.distributed import run_everywhere
from gan_zoo.metrics.protocol import score_generator
from gan_zoo.metrics.reference import prepare_reference
from tests.integration.two_processes import run_two_processes

LATENT, SIZE, NUM_REAL, NUM_FAKE, BATCH = 4, 8, 4, 6, 2
DEADLINE_S = 240


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "inception_random_seed0.pth"
    return path if path.exists() else write_random_weights(path, seed=0)


class TinyImages(GANDataModule):
    """``NUM_REAL`` fixed random uint8 images (3, SIZE, SIZE)."""

    def __init__(self) -> None:
        super().__init__(batch_size=2)
        self.sample_shape = (3, SIZE, SIZE)

    def build_dataset(self) -> Dataset:
        gen = torch.Generator().manual_seed(0)
        return UInt8ImageDataset(
            torch.randint(0, 256, (NUM_REAL, 3, SIZE, SIZE), generator=gen, dtype=torch.uint8)
        )


def generator(z: torch.Tensor) -> torch.Tensor:
    """A fixed 'generator': ``(B, LATENT)`` noise to ``(B, 3, SIZE, SIZE)`` images in [-1, 1]."""
    weight = torch.randn(LATENT, 3 * SIZE * SIZE, generator=torch.Generator().manual_seed(1))
    return torch.tanh(z @ weight / 2).view(-1, 3, SIZE, SIZE)


def broken_on_rank_1(z: torch.Tensor) -> torch.Tensor:
    images = generator(z)
    return images * float("nan") if dist.get_rank() == 1 else images


def score(weights: Path | str, cache: Path, sample=generator) -> dict[str, Any]:
    """The whole protocol as the callback runs it: weights, reference, fakes, FID and IS."""
    metric = run_everywhere(
        lambda: FidelityMetrics(inception_weights=weights, isc_splits=2, batch_size=BATCH)
    )
    reference = prepare_reference(metric, TinyImages(), NUM_REAL, cache, batch_size=BATCH)
    values = score_generator(metric, sample, LATENT, NUM_FAKE, seed=3, batch_size=BATCH)
    return {**values, "reference": reference.source}


def outcome(fn) -> dict[str, Any]:
    try:
        return {"ok": fn()}
    except FidelityError as err:
        return {"error": str(err)}


def worker(rank: int, port: int, weights: str, out: str) -> None:
    """One of 2 ranks: two failure scenarios, then a full run that must still work."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        missing = weights if rank == 0 else weights + ".missing"
        results = {
            "weights_missing_on_rank_1": outcome(lambda: score(missing, Path(out) / "c1")),
            "nan_fakes_on_rank_1": outcome(
                lambda: score(weights, Path(out) / "c2", broken_on_rank_1)
            ),
            "full": outcome(lambda: score(weights, Path(out) / "c3")),
        }
        (Path(out) / f"rank{rank}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_equal_one_and_failures_never_hang(inception_weights, tmp_path) -> None:
    ranks = run_two_processes(worker, inception_weights, tmp_path, DEADLINE_S, "FID/IS")

    # A failure on rank 1 only becomes the same error on both ranks, and nobody waits forever.
    for scenario, reason in (
        ("weights_missing_on_rank_1", "is not a file"),
        ("nan_fakes_on_rank_1", "nan"),
    ):
        rank0, rank1 = ranks[0][scenario], ranks[1][scenario]
        assert "error" in rank0 and "error" in rank1, scenario
        assert reason in rank1["error"].lower() and "another rank failed" in rank0["error"]

    # After both failures the process group still works: the full run agrees with 1 process.
    two = ranks[0]["full"]["ok"]
    assert ranks[1]["full"]["ok"] == two and two["reference"] == "computed"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers, so per-image features are computed alike
    try:
        one = score(inception_weights, tmp_path / "one-process")
        # The reference the 2 ranks reduced, cached by rank 0, serves a 1-process run.
        reused = score(inception_weights, tmp_path / "c3")
    finally:
        torch.set_num_threads(threads)
    assert two["fid"] == pytest.approx(one["fid"], rel=1e-6)
    assert two["is_mean"] == pytest.approx(one["is_mean"], rel=1e-6)
    assert two["is_std"] == pytest.approx(one["is_std"], rel=1e-5)  # a std of 2 splits, ~0.02
    assert reused["reference"] == "cache" and reused["fid"] == pytest.approx(one["fid"], rel=1e-6)
