"""Studies (docs/studies.md): sweeps through Hydra's launchers and sweepers, and the report over
their run directories (``gan_zoo.experiments.study``)."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.types import RunMode
from omegaconf import OmegaConf

from gan_zoo.experiments.study import StudyReport, main
from gan_zoo.experiments.sweep_runs import final_metrics, metric_history
from tests.helpers import CONFIG_DIR, FAST

FD = "val/fd_mnist_2k_train"
HEADER = ["epoch", "step", "train/d_loss", "train/g_loss", FD, "val/classes_mnist_2k"]


def write_run(
    run_dir: Path, overrides: Sequence[str], max_steps: int, *versions: list[dict[str, Any]]
) -> Path:
    """A run directory as train.py leaves it: .hydra/{overrides,config}.yaml and one
    csv/version_<k>/metrics.csv per (re)start, rows as Lightning's CSVLogger writes them."""
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra/overrides.yaml").write_text(yaml.safe_dump(list(overrides)))
    seed = int(next(o for o in overrides if o.startswith("seed=")).split("=")[1])
    config = {"seed": seed, "trainer": {"max_steps": max_steps}, "run_name": "${hydra:x}"}
    (run_dir / ".hydra/config.yaml").write_text(yaml.safe_dump(config))
    for version, rows in enumerate(versions):
        path = run_dir / f"csv/version_{version}/metrics.csv"
        path.parent.mkdir(parents=True)
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, HEADER, restval="")
            writer.writeheader()
            writer.writerows({"epoch": 0, **row} for row in rows)
    return run_dir


def losses(step: int, d_loss: float = 1.0) -> dict[str, Any]:
    return {"step": step, "train/d_loss": d_loss, "train/g_loss": 0.7}


def evaluation(step: int, fd: float) -> dict[str, Any]:
    return {"step": step, FD: fd, "val/classes_mnist_2k": 10}


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """2 variants x 2 seeds over 1,000 steps, one of them preempted and resumed (version_1),
    and a third wgan_gp seed that diverged at step 612, after an evaluation at step 500."""
    root = tmp_path / "sweep"
    study = ["experiment=study_mnist"]
    write_run(
        root / "0-ns_gan",
        ["model=ns_gan", "seed=0", *study],
        1000,
        [losses(50), evaluation(500, 150.0), losses(1000), evaluation(1000, 80.0)],
    )
    write_run(
        root / "1-ns_gan",
        ["model=ns_gan", "seed=1", *study],
        1000,
        [losses(50), evaluation(500, 160.0)],
        [losses(800), evaluation(1000, 90.0)],
    )
    for num, (seed, fd) in enumerate([(0, 120.0), (1, 140.0)], start=2):
        rows = [losses(1000), evaluation(1000, fd)]
        write_run(root / f"{num}-wgan_gp", ["model=wgan_gp", f"seed={seed}", *study], 1000, rows)
    diverged = [evaluation(500, 100.0), losses(600), losses(612, float("nan"))]
    write_run(root / "10-wgan_gp", ["model=wgan_gp", "seed=2", *study], 1000, diverged)
    return root


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_final_metrics_follow_resumed_versions(sweep: Path) -> None:
    values, steps = final_metrics(sweep / "1-ns_gan")
    assert values[FD] == 90.0 and steps[FD] == 1000  # version_1's, not version_0's 160
    assert values["train/d_loss"] == 1.0 and steps["train/d_loss"] == 800
    values, steps = final_metrics(sweep / "10-wgan_gp")
    assert math.isnan(values["train/d_loss"]) and steps == {
        FD: 500,
        "val/classes_mnist_2k": 500,
        "train/d_loss": 612,
        "train/g_loss": 612,
    }


def test_metric_history_keeps_a_resumed_runs_later_value(tmp_path: Path) -> None:
    # preempted after logging step 100, resumed from the step-50 checkpoint: step 100 again
    run = write_run(
        tmp_path / "run",
        ["seed=0"],
        200,
        [losses(50, 1.5), losses(100, 1.4)],
        [losses(100, 1.2), evaluation(100, 70.0), losses(150, 1.1)],
    )
    assert metric_history(run, "train/d_loss") == {50: 1.5, 100: 1.2, 150: 1.1}
    assert metric_history(run, FD) == {100: 70.0}
    assert metric_history(run, "augment/p") == {}


def test_report_rows_summary_and_plot(sweep: Path, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "report"
    main([str(sweep), "--out", str(out), "--name", "mnist"])

    runs = read_csv(out / "mnist_runs.csv")
    assert [(r["variant"], r["seed"], r["complete"], r["step"], float(r[FD])) for r in runs] == [
        ("model=ns_gan", "0", "True", "1000", 80.0),
        ("model=ns_gan", "1", "True", "1000", 90.0),
        ("model=wgan_gp", "0", "True", "1000", 120.0),
        ("model=wgan_gp", "1", "True", "1000", 140.0),
        # Diverged: its last evaluation (step 500) is recorded but is not a final score.
        ("model=wgan_gp", "2", "False", "500", 100.0),
    ]
    assert runs[1]["overrides"] == "model=ns_gan seed=1 experiment=study_mnist"
    assert runs[1]["run_dir"] == str(sweep / "1-ns_gan")
    assert runs[0]["val/classes_mnist_2k"] == "10"  # every val/* column, not only the score
    assert "train/d_loss" not in runs[0]

    summary = read_csv(out / "mnist_summary.csv")  # best median first
    assert [(s["variant"], s["runs"], s["complete"]) for s in summary] == [
        ("model=ns_gan", "2", "2"),
        ("model=wgan_gp", "3", "2"),
    ]
    assert float(summary[0]["mean"]) == 85.0 and float(summary[1]["mean"]) == 130.0
    assert float(summary[1]["std"]) == pytest.approx(math.sqrt(200), rel=1e-5)  # sample std
    assert (float(summary[1]["min"]), float(summary[1]["max"])) == (120.0, 140.0)

    assert (out / "mnist.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "| model=ns_gan | 2/2 | 85 ± 7.1 |" in printed and "| model=wgan_gp | 2/3 |" in printed


def test_report_groups_by_the_keys_asked_for(sweep: Path, tmp_path: Path) -> None:
    main([str(sweep), "--out", str(tmp_path), "--by", "experiment"])
    summary = read_csv(tmp_path / "study_summary.csv")
    assert [(s["variant"], s["runs"], s["complete"]) for s in summary] == [
        ("experiment=study_mnist", "5", "4")
    ]
    assert float(summary[0]["median"]) == 105.0


def test_report_refuses_bad_input_in_one_line(sweep: Path, tmp_path: Path, capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(sweep), "--metric", "val/nope", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: --metric='val/nope' is invalid")
    assert FD in err and "train/g_loss" in err
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "empty")])
    assert exit_info.value.code == 2
    assert "sweep_dir=" in capsys.readouterr().err


def test_hydra_callback_reports_into_the_sweep_dir(sweep: Path, caplog: Any) -> None:
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})
    StudyReport(metric=FD).on_multirun_end(config=config)
    assert len(read_csv(sweep / "study_runs.csv")) == 5 and (sweep / "study.png").exists()
    StudyReport(metric="val/nope", name="other").on_multirun_end(config=config)
    assert "study report not written: metric='val/nope'" in caplog.text
    assert not (sweep / "other_runs.csv").exists()


def compose_hydra(overrides: Sequence[str]) -> Any:
    """The real train.yaml with its Hydra node, as a multirun would compose it."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def test_study_preset_and_slurm_launcher_config_resolve() -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    overrides = ["experiment=study_mnist", "hydra/launcher=submitit_slurm"]
    cfg = compose_hydra(
        [*overrides, "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=1"]
    )
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert isinstance(launcher, dict)
    assert launcher["_target_"] == (
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    )
    assert launcher["partition"] == "gpu" and launcher["gpus_per_node"] == 1
    assert launcher["submitit_folder"].endswith("/.submitit/%j")  # under hydra.sweep.dir
    params = cfg.hydra.sweeper.params
    assert params.model.split(",") == ["minimax_gan", "ns_gan", "wgan_clip", "wgan_gp", "sngan"]
    assert params.seed == "0,1,2"
    assert cfg.hydra.callbacks.study_report._target_ == "gan_zoo.experiments.study.StudyReport"
    assert cfg.data._target_.endswith("MNISTSubsetDataModule") and cfg.callbacks.fidelity is None
    assert list(cfg.logger) == ["csv"]


def test_optuna_search_config_composes() -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = compose_hydra(["+hparams_search=mnist_optuna", "model=wgan_gp"])
    assert cfg.optimized_metric == FD
    assert cfg.hydra.mode == RunMode.MULTIRUN
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweeper.direction == "minimize" and sweeper.sampler.seed == 1234
    assert set(sweeper.params) == {
        "model.generator_optimizer.lr",
        "model.discriminator_optimizer.lr",
        "data.batch_size",
    }
    # Every swept key exists in the composed run config.
    for key in sweeper.params:
        assert OmegaConf.select(cfg, key) is not None, key


RunCli = Callable[..., Any]


def last_logged(run_dir: Path, metric: str) -> float:
    """The last non-empty ``metric`` cell of the run's metrics.csv, read independently."""
    (path,) = run_dir.glob("csv/version_*/metrics.csv")
    return [float(r[metric]) for r in read_csv(path) if r.get(metric)][-1]


@pytest.mark.slow
def test_joblib_sweep_then_report(run_cli: RunCli, tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = tmp_path / "sweep"
    sweep_args = ["model=ns_gan,wgan_gp", "seed=0,1", f"hydra.sweep.dir={sweep}"]
    launcher = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    result = run_cli("train.py", "-m", *launcher, *sweep_args, *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    multirun = yaml.safe_load((sweep / "multirun.yaml").read_text())
    assert multirun["hydra"]["launcher"]["_target_"].endswith("JoblibLauncher")

    main([str(sweep), "--metric", "train/g_loss"])
    runs = read_csv(sweep / "study_runs.csv")
    assert [(r["variant"], r["seed"], r["complete"]) for r in runs] == [
        (f"model={m}", s, "True") for m in ("ns_gan", "wgan_gp") for s in ("0", "1")
    ]
    for row in runs:
        assert f"seed={row['seed']}" in row["overrides"].split()
        expected = last_logged(Path(row["run_dir"]), "train/g_loss")
        assert float(row["train/g_loss"]) == pytest.approx(expected, rel=1e-5)
    assert runs[0]["train/g_loss"] != runs[1]["train/g_loss"]  # the seed reached the run
    summary = read_csv(sweep / "study_summary.csv")
    assert sorted((s["variant"], s["complete"]) for s in summary) == [
        ("model=ns_gan", "2"),
        ("model=wgan_gp", "2"),
    ]
    assert (sweep / "study.png").stat().st_size > 0


@pytest.mark.slow
def test_a_diverged_job_fails_alone(run_cli: RunCli, tmp_path: Path) -> None:
    """A NaN stops its own job, not the sweep: the other job still trains to the end."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = tmp_path / "sweep"
    fault = "+callbacks.fault._target_=tests.integration.fault_injection.PoisonAt"
    launcher = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    args = [fault, "+callbacks.fault.at_batch=2,99", f"hydra.sweep.dir={sweep}", *FAST]
    result = run_cli("train.py", "-m", *launcher, *args)
    assert result.returncode != 0  # the sweep reports the failed job when it ends
    assert "error: " in result.stderr and "NaN" in result.stderr
    main([str(sweep), "--metric", "train/g_loss"])
    runs = read_csv(sweep / "study_runs.csv")
    assert [(r["variant"], r["complete"]) for r in runs] == [
        ("callbacks.fault.at_batch=2", "False"),
        ("callbacks.fault.at_batch=99", "True"),
    ]


@pytest.mark.slow
def test_optuna_trials_get_the_final_metric(run_cli: RunCli, tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "search"
    search = ["+hparams_search=mnist_optuna", "hydra.sweeper.n_trials=2"]
    metric = ["optimized_metric=train/g_loss", f"hydra.sweep.dir={sweep}"]
    result = run_cli("train.py", *search, *metric, *FAST)  # hydra.mode=MULTIRUN: no -m
    assert result.returncode == 0, result.stderr[-3000:]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    finals = [last_logged(run, "train/g_loss") for run in sorted(sweep.glob("[0-9]*"))]
    assert len(finals) == 2 and math.isfinite(best["best_value"])
    assert best["best_value"] == pytest.approx(min(finals), rel=1e-5)
    assert set(best["best_params"]) == {
        "model.generator_optimizer.lr",
        "model.discriminator_optimizer.lr",
        "data.batch_size",
    }


@pytest.mark.slow
def test_an_unlogged_optimized_metric_is_one_line(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("train.py", "+optimized_metric=val/nope", f"hydra.run.dir={tmp_path}", *FAST)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: optimized_metric='val/nope' is invalid: expected a metric")
    assert "train/g_loss" in last
