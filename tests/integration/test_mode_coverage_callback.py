"""``callbacks.mode_coverage`` in real toy2d runs: PacGAN's statistics as columns of the CSV
metrics file, equal to ``mode_statistics`` on the same samples, and training bitwise unchanged.

Runs compose the real ``configs/train.yaml`` (``debug=fast``, which keeps this callback on).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gan_zoo.callbacks import ModeCoverageCallback
from gan_zoo.checkpointing import load_model, read_checkpoint
from gan_zoo.data.toy import MIXTURES
from gan_zoo.metrics import mode_statistics
from gan_zoo.training import train
from tests.helpers import FAST, compose_train
from tests.integration.exactness import differences, run_in_process
from tests.integration.test_metrics_callback import logged, read_metrics

NAMES = ("val/modes_covered_2500", "val/hq_pct_2500", "val/reverse_kl_2500")
TOY = [
    *FAST,
    "data=toy2d",
    "data.num_samples=512",
    "data.batch_size=32",
    "net.generator.hidden=32",
    "net.discriminator.hidden=32",
    "model.ema_decay=0.9",
    "trainer.max_steps=5",
    "callbacks.mode_coverage.every_n_steps=2",
]


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_the_statistics_are_csv_columns_equal_to_mode_statistics_of_the_same_samples(
    name: str, tmp_path: Path
) -> None:
    train(compose_train([*TOY, f"data.name={name}"], run_dir=tmp_path))
    rows = read_metrics(tmp_path)
    assert set(NAMES) <= set(rows[0])  # logger=csv: columns of the run's metrics file
    for column in NAMES:  # steps 2 and 4 on the schedule, 5 the end
        assert sorted(logged(rows, column)) == [2, 4, 5], column

    # The final checkpoint's EMA generator on the callback's fixed noise: the step-5 row.
    model = load_model(tmp_path / "checkpoints" / "last.ckpt")
    callback = ModeCoverageCallback()  # the config's seed and count are the defaults
    samples = model.sample(2500, z=callback.fixed_noise(model.latent_dim))  # (2500, 2)
    stats = mode_statistics(samples, *MIXTURES[name])
    assert logged(rows, "val/modes_covered_2500")[5] == stats["modes_covered"]
    assert logged(rows, "val/hq_pct_2500")[5] == pytest.approx(stats["high_quality_pct"])
    assert logged(rows, "val/reverse_kl_2500")[5] == pytest.approx(stats["reverse_kl"])

    hparams = yaml.safe_load((tmp_path / "csv" / "version_0" / "hparams.yaml").read_text())
    protocol = hparams["metric_protocol"]["val/hq_pct_2500"]
    assert protocol["generator"] == "ema" and protocol["num_samples"] == 2500
    assert protocol["num_modes"] == len(MIXTURES[name][0])
    assert protocol["high_quality"] == "within 3 std of the nearest mode"


def test_training_is_bitwise_the_same_with_the_statistics_every_step_or_never(
    tmp_path: Path,
) -> None:
    """The tiny toy2d run of the resume tests (EMA, replay, LR decay, lazy penalty), scored at
    every generator step against not at all: the same checkpoint at step 6."""
    every, never = tmp_path / "every", tmp_path / "never"
    assert run_in_process(every, ["callbacks.mode_coverage.every_n_steps=1"]) == "finished"
    assert run_in_process(never, ["callbacks.mode_coverage=null"]) == "finished"
    assert sorted(logged(read_metrics(every), NAMES[0])) == [1, 2, 3, 4, 5, 6]
    assert not [k for k in read_metrics(never)[0] if k.startswith("val/")]
    a = read_checkpoint(every / "checkpoints" / "step000006.ckpt")
    b = read_checkpoint(never / "checkpoints" / "step000006.ckpt")
    for key in ("state_dict", "optimizer_states", "lr_schedulers", "replay_buffer"):
        assert not differences(a[key], b[key]), key
