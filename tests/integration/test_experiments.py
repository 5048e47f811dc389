"""Small runs of each experiment (CSV columns, finite numbers, a PNG), and their exact parts."""

from __future__ import annotations

import csv
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_zoo.experiments import js_vs_w1, lipschitz, mode_coverage


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


def test_js_vs_w1_lines_geometry(tmp_path: Path) -> None:
    js_vs_w1.main(["--quick", "--geometry", "lines", "--out", str(tmp_path)])
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


def test_mode_coverage_runs_a_launcher_sweep_per_variant(tmp_path: Path) -> None:
    """Each variant is a ``train.py -m`` sweep (joblib launcher) over data sets x seeds; the
    report has every run and mean ± std per (variant, data set), the packed row included."""
    summary = mode_coverage.main(
        ["--quick", "--out", str(tmp_path), "--variants", "ns_gan_pack4", "--seeds", "0", "1",
         "--jobs", "1"]  # one process: joblib runs n_jobs=1 in the launcher's own
    )  # fmt: skip
    columns, runs = _read(tmp_path / "mode_coverage_runs.csv")
    assert columns == list(mode_coverage.RUN_COLUMNS)
    assert sorted((r["variant"], r["dataset"], r["seed"]) for r in runs) == sorted(
        ("ns_gan_pack4", d, s) for d in ("ring8", "grid25") for s in "01"
    )
    assert {r["step"] for r in runs} == {"4"}  # --quick's budget, scored at the end
    scores = ("modes_covered", "high_quality_pct", "reverse_kl")
    assert _finite(runs, scores)
    config = (Path(runs[0]["run_dir"]) / ".hydra" / "config.yaml").read_text()
    assert "pack: 4" in config and "n_critic: 5" in config  # the packed row's settings
    columns, means = _read(tmp_path / "mode_coverage.csv")
    assert columns == list(mode_coverage.COLUMNS) and len(means) == len(summary) == 2
    for row in means:
        mine = [r for r in runs if (r["variant"], r["dataset"]) == (row["variant"], row["dataset"])]
        values = [float(r["high_quality_pct"]) for r in mine]
        assert float(row["high_quality_pct_mean"]) == pytest.approx(np.mean(values), abs=1e-4)
        assert float(row["high_quality_pct_std"]) == pytest.approx(np.std(values, ddof=1), abs=1e-4)
    table = (tmp_path / "mode_coverage.md").read_text()
    assert table.startswith("| variant | ring8 modes") and "| ns_gan_pack4 |" in table
    assert (tmp_path / "mode_coverage.png").stat().st_size > 5_000


def test_mode_coverage_reports_a_failed_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def failing_sweep(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        stderr = "[a log line]\nerror: model.n_critic=0 is invalid: expected >= 1\n"
        return subprocess.CompletedProcess(command, 2, "", stderr)

    monkeypatch.setattr(mode_coverage.subprocess, "run", failing_sweep)
    one_line = r"ns_gan's sweep failed \(.*\): error: model.n_critic=0 is invalid: expected >= 1$"
    with pytest.raises(SystemExit, match=one_line):
        mode_coverage.main(["--quick", "--out", str(tmp_path), "--variants", "ns_gan"])
    assert len(calls) == 1 and calls[0][2:4] == ["-m", "model=ns_gan"]


def test_mode_coverage_reports_a_diverged_variant_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep the NaN guard stopped is a result (a row saying so), not a failed experiment."""
    calls: list[list[str]] = []
    nan = "error: non-finite d_loss (NaN or Inf) at generator step 162 of FGAN: training stopped"

    def diverging_sweep(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", f"[a log line]\n{nan}\nTraceback\n")

    monkeypatch.setattr(mode_coverage.subprocess, "run", diverging_sweep)
    variants = ["fgan_kl", "fgan_reverse_kl"]
    summary = mode_coverage.main(["--quick", "--out", str(tmp_path), "--variants", *variants])
    assert summary == [] and len(calls) == 2  # both variants were tried
    table = (tmp_path / "mode_coverage.md").read_text().splitlines()
    assert table[0].startswith("| variant | ring8 modes")
    assert table[2] == f"| fgan_kl | diverged: {nan.removeprefix('error: ')} | | | | | |"
    assert table[3].startswith("| fgan_reverse_kl | diverged: non-finite d_loss")
