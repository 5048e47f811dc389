"""``python -m bench.small_data``: the small-data table and plot from real run directories."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest

from bench import sample_quality, small_data
from tests.conftest import run_script
from tests.helpers import FAST


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two 4-step runs of the small-data experiment on 100 digits, checkpoints at steps 2 and 4
    (debug=fast): no augmentation, and ADA."""
    root = tmp_path_factory.mktemp("small")
    dirs = {}
    for name, extra in (("none", []), ("ada", ["augment=ada"])):
        dirs[name] = root / name
        result = run_script(
            "train.py",
            "experiment=small_data_mnist",
            "data.subset=100",
            *extra,
            *FAST,
            f"hydra.run.dir={dirs[name]}",
        )
        assert result.returncode == 0, result.stderr[-3000:]
    return dirs


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def logged(run_dir: Path, metric: str) -> dict[int, float]:
    """``metric`` by step, straight from the run's one CSV log."""
    rows = read_rows(run_dir / "csv/version_0/metrics.csv")
    return {int(r["step"]): float(r[metric]) for r in rows if r.get(metric)}


@pytest.mark.filterwarnings("ignore::gan_zoo.metrics.BiasedFIDWarning")  # 40 fakes, on purpose
def test_one_row_per_kept_checkpoint_with_the_runs_logs(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sample_quality, "CACHE", str(tmp_path / "cache"))
    out, cache = tmp_path / "out", tmp_path / "judged.jsonl"
    argv = [str(runs["none"]), str(runs["ada"]), "--steps", "2", "3", "4", "--gap-steps", "4"]
    argv += ["--window", "2", "--num-samples", "40", "--num-gap", "16", "--cache", str(cache)]
    small_data.main([*argv, "--out", str(out)])
    rows = read_rows(out / "small_data_runs.csv")
    # again with the cache, a run dir spelled another way: nothing is judged twice, and the
    # table is the same but for that spelling
    monkeypatch.setattr(small_data, "judge_checkpoint", lambda *a: pytest.fail(f"judged {a[0]}"))
    respelled = runs["none"].parent / ".." / runs["none"].parent.name / "none"
    small_data.main([str(respelled), *argv[1:], "--out", str(tmp_path / "again")])
    again = read_rows(tmp_path / "again/small_data_runs.csv")
    strip = [{k: v for k, v in r.items() if k != "checkpoint"} for r in rows]
    assert [{k: v for k, v in r.items() if k != "checkpoint"} for r in again] == strip
    assert (out / "small_data_fd.png").stat().st_size > 0
    # step 3 has no checkpoint (every 2 steps): skipped, not an error
    assert [(r["augmentation"][:4], r["step"]) for r in rows] == [
        ("none", "2"),
        ("none", "4"),
        ("ADA(", "2"),
        ("ADA(", "4"),
    ]
    assert {(r["digits"], r["seed"]) for r in rows} == {("100", "0")}
    for row in rows:
        assert float(row["fd_mnist_train"]) > 0 and 0 <= float(row["precision"]) <= 1
        # D's overfitting only where asked (step 4): 100 training digits leave 4,900 unseen
        assert (row["sign_gap"] != "") == (row["step"] == "4")
        assert -2 <= float(row["sign_gap"] or 0) <= 2
    for row, name in zip(rows, ["none", "none", "ada", "ada"], strict=True):
        js, step = logged(runs[name], "divergence/js"), int(row["step"])
        # the window (step - 2, step]: the values logged at step - 1 and step
        expected = statistics.mean(js[s] for s in js if step - 2 < s <= step)
        assert float(row["js_window"]) == pytest.approx(expected, abs=1e-4)
        ada_p = logged(runs[name], "augment/p")
        assert row["ada_p"] == ("" if name == "none" else str(round(ada_p[step], 4)))


def test_a_run_without_the_steps_is_refused_in_one_line(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    refusal = r"^error: .*none has no checkpoints/step<k>.ckpt for k in 7, 9$"
    with pytest.raises(SystemExit, match=refusal):
        small_data.main([str(runs["none"]), "--out", str(tmp_path), "--steps", "7", "9"])
    assert not (tmp_path / "small_data_runs.csv").exists()  # nothing half-written


def test_a_run_that_is_not_mnist_is_refused_in_one_line(tmp_path: Path) -> None:
    run = tmp_path / "toy"
    result = run_script("train.py", "data=toy2d", *FAST, f"hydra.run.dir={run}")
    assert result.returncode == 0, result.stderr[-3000:]
    refusal = r"^error: .*step000002.ckpt samples \(2,\); the MNIST judge needs \(1, 28, 28\)$"
    with pytest.raises(SystemExit, match=refusal):
        small_data.main([str(run), "--out", str(tmp_path / "out"), "--steps", "2"])


def test_a_cache_that_is_not_json_lines_is_refused_in_one_line(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    cache = tmp_path / "judged.jsonl"
    cache.write_text("not json\n")
    refusal = rf"^error: --cache {cache} line 1 is not a judged checkpoint .*remove the file$"
    with pytest.raises(SystemExit, match=refusal):
        small_data.main(
            [str(runs["none"]), "--out", str(tmp_path / "o"), "--steps", "2", "--cache", str(cache)]
        )
    assert cache.read_text() == "not json\n"  # nothing lost
