"""W&B runs continued across restarts without a step going backwards (offline, no network), and
secrets redacted from configs and from Hydra's record of the command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import wandb
import yaml

from gan_zoo.loggers import (
    REDACTED,
    STATE_FILE,
    ResumableWandbLogger,
    continuation,
    redact_hydra_files,
    redact_secrets,
    wandb_logger,
)
from tests.wandb_records import logged_steps


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("WANDB_MODE", "offline")
    yield
    wandb.finish()


def log_run(
    save_dir: Path, steps: range, resume_from: Path | None = None, width: int = 1
) -> ResumableWandbLogger:
    """A real offline W&B run through the logger, as train.py drives it (continuing the run of
    the checkpoint ``resume_from``, if given); finished on return."""
    extra = continuation(save_dir, resume_from) if resume_from is not None else {}
    logger = wandb_logger(save_dir=str(save_dir), **extra)
    logger.log_hyperparams({"seed": 0})
    for step in steps:
        logger.log_metrics({f"train/m{i}": step + i / 10 for i in range(width)}, step=step)
    logger.experiment.finish()
    wandb.teardown()  # stops W&B's service process, which may still be writing the run file
    return logger


def run_files(save_dir: Path) -> list[Path]:
    """W&B's run files under ``save_dir``, oldest first (folders are named by start time)."""
    return [next(f.glob("*.wandb")) for f in sorted((save_dir / "wandb").glob("offline-run-*"))]


def test_resuming_in_the_same_directory_continues_the_run(tmp_path: Path) -> None:
    """Steps 1-6 logged, then a resume from the step-2 checkpoint logs 3-8: W&B gets 7 and 8."""
    first = log_run(tmp_path, range(1, 7))
    second = log_run(tmp_path, range(3, 9), tmp_path / "checkpoints" / "step000002.ckpt")
    assert second.experiment.id == first.experiment.id
    later = run_files(tmp_path)[-1]
    assert later.name == f"run-{first.experiment.id}.wandb"
    assert logged_steps(later, "train/") == [7, 8]  # 3-6 were logged already
    assert json.loads(second.state_path.read_text()) == {"id": first.experiment.id, "last_step": 8}


def test_resuming_from_another_run_directory_continues_the_checkpoints_run(tmp_path: Path) -> None:
    """Run A's checkpoint of step 2 resumed in directory B, which last logged another run Y."""
    run_a = log_run(tmp_path / "a", range(1, 7)).experiment.id
    (tmp_path / "b" / "wandb").mkdir(parents=True)
    other = {"id": "runyyyyy", "last_step": 40}
    (tmp_path / "b" / "wandb" / STATE_FILE).write_text(json.dumps(other))
    checkpoint = tmp_path / "a" / "checkpoints" / "step000002.ckpt"
    assert continuation(tmp_path / "b", checkpoint) == {
        "id": run_a,
        "resume": "allow",
        "logged_up_to": 6,
    }
    second = log_run(tmp_path / "b", range(3, 9), checkpoint)
    assert second.experiment.id == run_a
    (run_file,) = run_files(tmp_path / "b")
    assert logged_steps(run_file, "train/") == [7, 8]


def test_without_any_record_of_the_run_a_new_run_is_started(tmp_path: Path) -> None:
    first = log_run(tmp_path, range(1, 7))
    shutil.rmtree(tmp_path / "wandb")
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    assert continuation(tmp_path, checkpoint) == {}
    second = log_run(tmp_path, range(3, 9), checkpoint)
    assert second.experiment.id != first.experiment.id
    (run_file,) = run_files(tmp_path)
    assert logged_steps(run_file, "train/") == [3, 4, 5, 6, 7, 8]


# --- secrets ---------------------------------------------------------------------------------


def test_keys_named_like_secrets_are_redacted() -> None:
    env = {"MY_API_TOKEN": "env-secret-1234", "PATH": "/usr/bin"}
    config = {
        "aws_secret_access_key": "a",
        "logger": {"wandb": {"api_key": "b", "notes": "env-secret-1234", "project": "gan"}},
        "db": {"Password": "c", "credentials": {"user": "bob"}},
        "hf_token": "d",
        "model": {"n_critic": 5, "latent_dim": 2, "key_count": 3},
        "path": "/usr/bin",
    }
    assert redact_secrets(config, env) == {
        "aws_secret_access_key": REDACTED,
        "logger": {"wandb": {"api_key": REDACTED, "notes": REDACTED, "project": "gan"}},
        "db": {"Password": REDACTED, "credentials": {"user": REDACTED}},
        "hf_token": REDACTED,
        "model": {"n_critic": 5, "latent_dim": 2, "key_count": 3},  # not strings: kept
        "path": "/usr/bin",
    }


def test_a_secret_on_the_command_line_stays_out_of_wandbs_run_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """W&B records sys.argv in its run file (the control shows it); with a secret there, not."""
    marker, secret = "plain0marker0value", "wandb0key0from0argv"
    monkeypatch.setattr(sys, "argv", ["train.py", f"notes={marker}"])
    log_run(tmp_path / "control", range(1, 2))
    assert marker.encode() in run_files(tmp_path / "control")[0].read_bytes()

    monkeypatch.setattr(sys, "argv", ["train.py", f"notes={marker}", f"+x.api_key={secret}"])
    with pytest.warns(UserWarning, match="metadata .* not recorded: the command line holds"):
        log_run(tmp_path / "secret", range(1, 2))
    files = [p for p in (tmp_path / "secret").rglob("*") if p.is_file()]
    assert len(files) > 3 and not [p for p in files if secret.encode() in p.read_bytes()]


APP = """
import hydra
from hydra.core.hydra_config import HydraConfig
from gan_zoo.loggers import redact_hydra_files

@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg):
    run_dir = HydraConfig.get().runtime.output_dir
    print(sorted(p.name for p in redact_hydra_files(run_dir)))

main()
"""


SECRETS = ["wandb0key0abcdef", "tok-123456", "hunter2", "from-the-env-99"]
SECRET_ARGS = [
    f"logger.wandb.api_key={SECRETS[0]}",
    f"+hf_token='{SECRETS[1]}'",
    f"+db.password={SECRETS[2]}",
    f"notes={SECRETS[3]}",  # a harmless key, but the value of a secret variable
]
SECRET_ENV = {"PATH": "/usr/bin:/bin", "MY_PASSWORD": SECRETS[3], "PYTHONPATH": str(Path.cwd())}


def run_app(tmp_path: Path, *args: str) -> str:
    """A real Hydra app given secrets on its command line, as train.py is; returns its stdout."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    conf = {"seed": 0, "logger": {"wandb": {"project": "p", "api_key": None}}, "notes": ""}
    (tmp_path / "conf" / "train.yaml").write_text(yaml.safe_dump(conf))
    result = subprocess.run(
        [sys.executable, "app.py", *args, *SECRET_ARGS],
        cwd=tmp_path,
        env=SECRET_ENV,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def assert_no_secrets(folder: Path, count: int) -> None:
    files = sorted(folder.rglob("*.yaml"))
    assert len(files) == count
    for path in files:
        text = path.read_text()
        assert not [s for s in SECRETS if s in text], path
        yaml.safe_load(text)  # still YAML


def test_hydra_files_are_rewritten_without_the_secrets(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    out = run_app(tmp_path, "seed=3", f"hydra.run.dir={run_dir}")
    assert out.strip() == "['config.yaml', 'hydra.yaml', 'overrides.yaml']"
    assert_no_secrets(run_dir, 3)
    overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    assert overrides == [
        "seed=3",
        f"logger.wandb.api_key={REDACTED}",
        f"+hf_token={REDACTED}",
        f"+db.password={REDACTED}",
        f"notes={REDACTED}",
    ]
    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert config["seed"] == 3 and config["logger"]["wandb"]["project"] == "p"
    assert config["db"]["password"] == config["hf_token"] == REDACTED
    assert redact_hydra_files(run_dir, SECRET_ENV) == []  # idempotent: nothing left to rewrite
    assert redact_hydra_files(tmp_path / "no_such_run") == []


def test_a_sweeps_multirun_yaml_is_rewritten_too(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    out = run_app(tmp_path, "-m", "seed=3,4", f"hydra.sweep.dir={sweep}")
    assert out.count("'multirun.yaml'") == 1  # the first job rewrote it, the second had no need
    assert_no_secrets(sweep, 1 + 2 * 3)  # multirun.yaml, then 3 files per job
    (task,) = [
        o
        for o in yaml.safe_load((sweep / "multirun.yaml").read_text())["hydra"]["overrides"]["task"]
        if o.startswith("+db")
    ]
    assert task == f"+db.password={REDACTED}"
