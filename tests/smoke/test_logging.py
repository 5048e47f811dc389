"""Through the real train.py with logger=tensorboard: losses and divergence on the generator-step
axis, the sample grid logged as an image, and the resolved config logged as hyperparameters."""

from __future__ import annotations

from pathlib import Path

import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.helpers import FAST


def test_tensorboard_run_logs_losses_samples_and_config(run_cli, tmp_path: Path) -> None:
    overrides = [o for o in FAST if not o.startswith("logger=")]
    result = run_cli(
        "train.py", "model=wgan_gp", *overrides, "logger=tensorboard", f"hydra.run.dir={tmp_path}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (events,) = (tmp_path / "tensorboard" / "version_0").glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    # wgan_gp has n_critic=5: 4 generator steps are 20 critic batches, and the axis counts the 4
    for key in ("train/d_loss", "train/g_loss", "train/penalty", "divergence/w1"):
        assert [e.step for e in acc.Scalars(key)] == [1, 2, 3, 4], key
    assert [e.step for e in acc.Images("samples")] == [2, 4, 4]  # every 2 steps, then final
    hparams = yaml.safe_load((events.parent / "hparams.yaml").read_text())
    assert hparams["model"]["_target_"] == "gan_zoo.models.WGANGP"
    assert hparams["model"]["n_critic"] == 5 and hparams["trainer"]["max_steps"] == 4
