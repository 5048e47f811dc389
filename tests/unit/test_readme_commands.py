"""Every single-run ``python train.py ...`` line of the README composes and builds: a newcomer
copying one gets a run, not a Hydra error about a key the configs no longer have."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from gan_zoo.models import GAN
from gan_zoo.training import build
from tests.helpers import ROOT, compose_train, write_image_folder


def _readme_runs() -> list[list[str]]:
    """The overrides of each one-line ``python train.py`` command (sweeps, ``-m``, excluded)."""
    runs = []
    for line in (ROOT / "README.md").read_text().splitlines():
        if not line.startswith("python train.py") or line.rstrip().endswith("\\"):
            continue
        args = shlex.split(re.sub(r"\s+#.*$", "", line))[2:]
        if "-m" not in args:
            runs.append([a for a in args if not a.startswith("hydra.")])
    return runs


RUNS = _readme_runs()


def test_the_readme_has_commands_to_check() -> None:
    assert len(RUNS) >= 8


@pytest.mark.parametrize("overrides", RUNS, ids=[" ".join(r) or "default" for r in RUNS])
def test_readme_train_command_composes_and_builds(overrides: list[str], tmp_path: Path) -> None:
    # The README's placeholder folder becomes a real one, in the on-disk format it stands for.
    root = f"data.root={write_image_folder(tmp_path / 'images')}"
    overrides = [root if o.startswith("data.root=") else o for o in overrides]
    cfg = compose_train(overrides, run_dir=tmp_path)
    _, gan = build(cfg)  # nothing downloads before prepare_data
    assert isinstance(gan, GAN)
