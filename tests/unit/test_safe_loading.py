"""Checkpoints are data, never code: pickled payloads and hostile ``_target_``s are refused
before they run; truncated or corrupt files give one line naming the file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

import gan_zoo
from gan_zoo.checkpointing import CheckpointError, read_checkpoint
from tests.helpers import ROOT
from tests.integration.exactness import cli_args, cli_env, run_in_process
from tests.warm_cli import run_python


class Payload:
    """Unpickling this creates ``marker`` (``pathlib.Path.touch``): code that runs on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("trained")
    assert run_in_process(run, ["trainer.max_steps=2"]) == "finished"
    return run / "checkpoints" / "last.ckpt"


@pytest.fixture
def malicious(trained: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A real checkpoint plus a pickled payload; returns it and the payload's marker file."""
    marker = tmp_path / "payload_ran"
    checkpoint = torch.load(trained, weights_only=True)
    checkpoint["innocent_looking_entry"] = Payload(marker)
    path = tmp_path / "malicious.ckpt"
    torch.save(checkpoint, path)
    return path, marker


def test_the_payload_is_live(malicious: tuple[Path, Path]) -> None:
    """An unsafe load would run it: the refusals below are real protection."""
    path, marker = malicious
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_library_loaders_refuse_pickled_code(malicious: tuple[Path, Path]) -> None:
    path, marker = malicious
    for load in (read_checkpoint, gan_zoo.load_model):
        with pytest.raises(CheckpointError) as info:
            load(path)
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"checkpoint {path} refused")
        assert "Path.touch" in message or "GLOBAL" in message, message
    assert not marker.exists()


@pytest.mark.parametrize(
    "script", ["generate.py", "evaluate.py", "train.py"], ids=["generate", "evaluate", "resume"]
)
def test_clis_refuse_pickled_code_with_one_line(
    script: str, malicious: tuple[Path, Path], tmp_path: Path
) -> None:
    path, marker = malicious
    if script == "train.py":
        args = cli_args(tmp_path / "run", [f"ckpt_path={path}", "trainer.max_steps=4"])
    else:
        args = [sys.executable, str(ROOT / script), f"ckpt_path={path}", f"out_dir={tmp_path}"]
        args = args[:-1] if script == "evaluate.py" else args
    result = run_python(args, timeout=300, env=cli_env())
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: checkpoint {path} refused"), last
    assert "Traceback" not in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize(
    ("target", "argument"),
    [("builtins.open", "file"), ("gan_zoo.checkpointing.atomic_io.os.makedirs", "name")],
    ids=["builtin", "reached-through-a-gan_zoo-module"],
)
def test_a_config_naming_a_function_is_not_instantiated(
    target: str, argument: str, trained: Path, tmp_path: Path
) -> None:
    """weights_only stops pickles, not a config that Hydra would call: that is checked too."""
    marker = tmp_path / "config_payload_ran"
    node = {"_target_": target, argument: str(marker)}
    node |= {"mode": "w"} if argument == "file" else {}
    instantiate(node)  # the node is live: Hydra's own blocklist lets it through
    assert marker.exists()
    if marker.is_dir():
        marker.rmdir()
    else:
        marker.unlink()
    checkpoint = torch.load(trained, weights_only=True)
    checkpoint["gan_zoo_config"]["model"] = node
    path = tmp_path / "hostile_config.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(
        CheckpointError, match=r"model\._target_=.* is not an nn.Module or optimizer class"
    ):
        gan_zoo.load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_checkpoint_gives_one_line_naming_the_file(
    damage: str, trained: Path, tmp_path: Path
) -> None:
    path = tmp_path / f"{damage}.ckpt"
    data = trained.read_bytes()
    path.write_bytes(
        {"truncated": data[: len(data) // 2], "garbage": b"\x00" * 999, "empty": b""}[damage]
    )
    with pytest.raises(CheckpointError) as info:
        gan_zoo.load_model(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"checkpoint {path} is truncated or corrupt"), message
    if damage != "truncated":
        return  # the CLI check once is enough
    result = run_python(
        [sys.executable, str(ROOT / "generate.py"), f"ckpt_path={path}", f"out_dir={tmp_path}"],
        timeout=300,
        env=cli_env(),
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: {message}"


def test_resume_refuses_a_checkpoint_of_another_model(trained: Path, tmp_path: Path) -> None:
    args = cli_args(tmp_path / "run", [f"ckpt_path={trained}", "model=wgan_gp"])
    result = run_python(args, timeout=300, env=cli_env())
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: checkpoint {trained} is a gan_zoo.models.NonSaturatingGAN run")
