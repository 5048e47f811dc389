"""The packed-critic experiment: a fresh D per pack size against a fixed generator on grid25."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from gan_zoo.experiments import common, packed_critic
from gan_zoo.models import NonSaturatingGAN


def test_quick_run_writes_one_learning_curve_per_pack(tmp_path: Path) -> None:
    rows = packed_critic.main(["--quick", "--out", str(tmp_path), "--packs", "1", "4"])
    with open(tmp_path / "packed_critic.csv") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == list(packed_critic.COLUMNS)
        written = list(reader)
    assert [(r["pack"], r["step"]) for r in written] == [
        ("1", "20"), ("1", "40"), ("4", "20"), ("4", "40")
    ]  # fmt: skip
    assert all(math.isfinite(float(r["loss"])) for r in written)
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in written)
    assert [row["pack"] for row in rows] == [1, 1, 4, 4]
    assert (tmp_path / "packed_critic.png").stat().st_size > 10_000


def test_gaussian_generator_matches_the_data_moments_only() -> None:
    real = torch.randn(4096, 2) * 3.0 + 1.0
    fake = common.fixed_generator(None, real)(20_000)
    assert fake.shape == (20_000, 2)
    assert fake.mean(0) == pytest.approx(real.mean(0).tolist(), abs=0.1)
    assert torch.cov(fake.T) == pytest.approx(torch.cov(real.T).numpy(), rel=0.05, abs=0.1)


def test_the_critic_scores_packs_and_train_critic_reports_every_step() -> None:
    model = common.critic_model(NonSaturatingGAN, 2, 8, 2, 1e-3, pack=4)
    assert model.pack == 4 and model.discriminator(torch.randn(12, 2)).shape == (3,)
    seen: list[int] = []
    common.train_critic(
        model, lambda n: torch.randn(n, 2), lambda n: torch.randn(n, 2) + 3, 5, 16,
        lambda step, loss: seen.append(step),
    )  # fmt: skip
    assert seen == [1, 2, 3, 4, 5]
    # a pack size that does not divide the batch is refused with the value in the message
    with pytest.raises(SystemExit):
        packed_critic.main(["--quick", "--packs", "3", "--batch-size", "512"])
