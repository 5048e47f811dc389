"""The Dirac-GAN finding of Mescheder et al. 2018 on a short run (``--quick``: 100 generator steps
of every method, SGD lr 0.2, start (1, -1)), through the real variants, loop and Trainer."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from gan_zoo.experiments import dirac_gan

METHODS = {
    "minimax_gan",
    "ns_gan",
    "r1_gan",
    "ns_gan_instance_noise",
    "wgan_clip_ncritic1",
    "wgan_clip_ncritic5",
    "wgan_gp_ncritic1",
    "wgan_gp_ncritic5",
}
STEPS = 100
Run = tuple[Path, dict[str, list[float]]]  # the output folder, each method's distances


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The quick run's output folder and each method's distance to (0, 0), read from the CSV."""
    out = tmp_path_factory.mktemp("dirac_gan")
    dirac_gan.main(["--quick", "--out", str(out)])
    with open(out / "dirac_gan.csv") as handle:
        rows = list(csv.DictReader(handle))
    dist: dict[str, list[float]] = {}
    for row in rows:
        dist.setdefault(row["method"], []).append(
            math.hypot(float(row["theta"]), float(row["psi"]))
        )
    return out, dist


def test_csv_has_the_columns_and_one_row_per_method_and_step(run: Run) -> None:
    out, _ = run
    with open(out / "dirac_gan.csv") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        assert reader.fieldnames == ["method", "step", "theta", "psi"]
    keys = [(row["method"], int(row["step"])) for row in rows]
    assert len(keys) == len(set(keys))  # no (method, step) twice
    assert set(keys) == {(m, s) for m in METHODS for s in range(STEPS + 1)}  # step 0: the start
    assert all(math.isfinite(float(row[c])) for row in rows for c in ("theta", "psi"))
    start = [row for row in rows if row["step"] == "0"]
    assert {(float(r["theta"]), float(r["psi"])) for r in start} == {(1.0, -1.0)}
    assert (out / "dirac_gan.png").stat().st_size > 50_000


def test_r1_and_instance_noise_converge_to_the_equilibrium(run: Run) -> None:
    _, dist = run
    start = math.sqrt(2.0)
    for method in ("r1_gan", "ns_gan_instance_noise"):
        assert dist[method][0] == pytest.approx(start)
        assert dist[method][-1] < 0.15 * start, method
    # R1 converges at a linear rate: its distance keeps falling over the second half of the run
    assert dist["r1_gan"][-1] < 0.5 * dist["r1_gan"][STEPS // 2]


def test_the_unregularized_gan_does_not_approach_the_equilibrium(run: Run) -> None:
    _, dist = run
    start = math.sqrt(2.0)
    # the paper's game (its Eq. 1) circles at the start's distance (Sec. 2: a pure rotation)
    assert min(dist["minimax_gan"]) > 0.9 * start
    # the non-saturating one loses distance only slowly (like 1/sqrt(t), see docs/theory.md)
    assert min(dist["ns_gan"]) > 0.3 * start
    assert dist["ns_gan"][-1] > 3 * max(dist["r1_gan"][-1], dist["ns_gan_instance_noise"][-1])


def test_wgans_with_finite_critic_steps_keep_cycling(run: Run) -> None:
    _, dist = run
    for method in ("wgan_clip_ncritic1", "wgan_clip_ncritic5", "wgan_gp_ncritic1",
                   "wgan_gp_ncritic5"):  # fmt: skip
        assert max(dist[method][-STEPS // 5 :]) > 0.5 * math.sqrt(2.0), method


def test_vector_field_is_the_papers_rotation_at_the_equilibrium() -> None:
    # near (0, 0): d(theta)/dt = psi / 2, d(psi)/dt = -theta / 2 (our psi is the paper's -psi)
    theta, psi = torch.tensor([[1e-3, 0.0]]), torch.tensor([[0.0, 1e-3]])
    v_theta, v_psi = dirac_gan.unregularized_field(theta, psi)
    torch.testing.assert_close(v_theta, torch.tensor([[0.0, 5e-4]]), atol=1e-9, rtol=1e-3)
    torch.testing.assert_close(v_psi, torch.tensor([[-5e-4, 0.0]]), atol=1e-9, rtol=1e-3)
