"""Small runs of each experiment (CSV columns, finite numbers, a PNG), and their exact parts."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_zoo.data.toy import MIXTURES
from gan_zoo.experiments import js_vs_w1, lipschitz, mode_coverage
from tests.helpers import ROOT


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path) as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _finite(rows: list[dict[str, str]], columns: tuple[str, ...]) -> bool:
    return all(math.isfinite(float(row[c])) for row in rows for c in columns)


def test_gaussian_js_exact_values() -> None:
    assert js_vs_w1.gaussian_js(0.0, 0.5) == pytest.approx(0.0, abs=1e-12)
    assert js_vs_w1.gaussian_js(10.0, 0.5) == pytest.approx(math.log(2.0), abs=1e-9)
    # against a plain Riemann sum on a fine grid
    x = np.linspace(-6.0, 8.0, 400_001)
    p = np.exp(-0.5 * (x - 2.0) ** 2) / math.sqrt(2 * math.pi)
    q = np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    m = (p + q) / 2
    riemann = (0.5 * p * np.log(p / m) + 0.5 * q * np.log(q / m)).sum() * (x[1] - x[0])
    assert js_vs_w1.gaussian_js(2.0, 1.0) == pytest.approx(riemann, abs=1e-6)
    assert js_vs_w1.exact_values("lines", 0.5, 0.1) == (math.log(2.0), 0.5)


def test_js_vs_w1_quick_run(tmp_path: Path) -> None:
    js_vs_w1.main(["--quick", "--out", str(tmp_path)])
    columns, rows = _read(tmp_path / "js_vs_w1.csv")
    assert columns == ["separation", "js_estimate", "js_exact", "w1_exact"] + [
        f"{variant}_{key}"
        for variant in ("wgan_clip", "wgan_gp", "sngan")
        for key in ("w1", "w1_normalized")
    ]
    assert [float(r["separation"]) for r in rows] == [0.0, 5.0, 10.0]
    assert _finite(rows, tuple(columns))
    assert float(rows[-1]["js_exact"]) == pytest.approx(math.log(2.0), abs=1e-6)
    # the normalized value is the raw one divided by a Lipschitz constant: same sign, and for
    # the clipped critic (slope ~1e-3) on W1's scale where the raw value is not
    for row in rows[1:]:
        for variant in ("wgan_clip", "wgan_gp", "sngan"):
            assert float(row[f"{variant}_w1_normalized"]) > 0 < float(row[f"{variant}_w1"])
        assert float(row["wgan_clip_w1"]) < 0.05 < float(row["wgan_clip_w1_normalized"])
    assert (tmp_path / "js_vs_w1.png").stat().st_size > 10_000


def test_js_vs_w1_target_names_every_miss() -> None:
    def row(theta: float, **normalized: float) -> dict[str, float]:
        exact = {f"{v}_w1_normalized": theta for v in js_vs_w1.W1_VARIANTS}
        return {"separation": theta, "w1_exact": theta, **exact, **normalized}

    rows = [
        row(0.5, wgan_gp_w1_normalized=1.0),  # off by 100%, but below 1: not checked
        row(1.0, wgan_clip_w1_normalized=1.11),  # +11%
        row(4.0, sngan_w1_normalized=3.61),  # -9.75%: within
        row(10.0, sngan_w1_normalized=8.9, wgan_gp_w1_normalized=10.9),  # -11%, +9%
    ]
    assert js_vs_w1.misses(rows) == ["wgan_clip@1", "sngan@10"]


def test_js_vs_w1_lines_runs_as_a_module(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "gan_zoo.experiments.js_vs_w1", "--quick", "--geometry", "lines"]
    done = subprocess.run([*cmd, "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    _, rows = _read(tmp_path / "js_vs_w1.csv")
    assert [float(r["js_exact"]) for r in rows] == pytest.approx([0.0, math.log(2), math.log(2)])
    assert [float(r["w1_exact"]) for r in rows] == [0.0, 5.0, 10.0]


def test_lipschitz_quick_run(tmp_path: Path) -> None:
    lipschitz.main(["--quick", "--out", str(tmp_path)])
    columns, rows = _read(tmp_path / "lipschitz.csv")
    assert columns == list(lipschitz.COLUMNS)
    assert [r["critic"] for r in rows] == ["clip", "gp", "sn_hinge", "sn_wgan"]
    assert _finite(rows, lipschitz.COLUMNS[1:])
    clip = rows[0]
    assert float(clip["weights_abs_max"]) <= lipschitz.CLIP_VALUE + 1e-7
    assert (tmp_path / "lipschitz.png").exists()


def test_exact_w1_matches_a_known_transport() -> None:
    # shifting every point by (3, 4) costs exactly 5 per point
    real = torch.randn(300, 2, dtype=torch.float64)
    assert lipschitz.exact_w1(real, real + torch.tensor([3.0, 4.0])) == pytest.approx(5.0)


def test_mode_statistics_hand_cases() -> None:
    modes, std = MIXTURES["ring8"]
    # 20 samples on each of 4 modes, 30 on a fifth, 20 far from every mode
    on_modes = torch.cat([modes[k].repeat(20 if k < 4 else 30, 1) for k in range(5)])
    samples = torch.cat([on_modes, torch.full((20, 2), 5.0)])
    stats = mode_coverage.mode_statistics(samples, modes, std)
    assert stats["modes_covered"] == 5 and stats["num_modes"] == 8
    assert stats["high_quality_pct"] == pytest.approx(100 * 110 / 130)
    hist = torch.tensor([20, 20, 20, 20, 30, 0, 0, 0], dtype=torch.float64) / 110
    expected = sum(h * math.log(8 * h) for h in hist.tolist() if h > 0)
    assert stats["reverse_kl"] == pytest.approx(expected)
    # 19 high-quality samples do not make a mode; 3.1 std away is not high quality
    just_off = modes[0] + torch.tensor([3.1 * std, 0.0])
    few = torch.cat([modes[1].repeat(19, 1), just_off.repeat(50, 1)])
    stats = mode_coverage.mode_statistics(few, modes, std)
    assert stats["modes_covered"] == 0 and stats["high_quality_pct"] == pytest.approx(100 * 19 / 69)
    assert stats["reverse_kl"] == pytest.approx(math.log(8))  # all on one mode
    uniform = mode_coverage.mode_statistics(modes.repeat(25, 1), modes, std)
    assert uniform["reverse_kl"] == pytest.approx(0.0) and uniform["modes_covered"] == 8


def test_mode_coverage_quick_run(tmp_path: Path) -> None:
    mode_coverage.main(["--quick", "--out", str(tmp_path), "--variants", "ns_gan", "wgan_gp"])
    columns, rows = _read(tmp_path / "mode_coverage.csv")
    assert columns == list(mode_coverage.COLUMNS)
    assert [(r["variant"], r["dataset"]) for r in rows] == [
        ("ns_gan", "ring8"), ("wgan_gp", "ring8"), ("ns_gan", "grid25"), ("wgan_gp", "grid25")
    ]  # fmt: skip
    assert _finite(rows, ("modes_covered", "high_quality_pct", "reverse_kl", "seconds"))
    assert [int(r["generator_steps"]) for r in rows] == [5, 1, 5, 1]  # equal critic steps
    table = (tmp_path / "mode_coverage.md").read_text()
    assert table.startswith("| variant | ring8 modes") and "| wgan_gp |" in table
    assert (tmp_path / "mode_coverage.png").exists()


@pytest.mark.slow
def test_mode_coverage_every_variant_quick(tmp_path: Path) -> None:
    mode_coverage.main(["--quick", "--out", str(tmp_path)])
    _, rows = _read(tmp_path / "mode_coverage.csv")
    assert len(rows) == 2 * len(mode_coverage.VARIANTS)
    assert _finite(rows, ("modes_covered", "high_quality_pct", "reverse_kl"))
