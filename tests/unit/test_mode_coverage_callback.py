"""PacGAN's mode-coverage statistics (``gan_zoo.metrics.mode_statistics``, shared by the
experiment and the callback) on hand-made samples, and ``ModeCoverageCallback``'s schedule, its
private noise and its switching off for data without known modes."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from gan_zoo.callbacks import ModeCoverageCallback
from gan_zoo.data import MNISTSubsetDataModule, Toy1DDataModule, Toy2DDataModule
from gan_zoo.data.toy import MIXTURES
from gan_zoo.experiments import mode_coverage as experiment
from gan_zoo.metrics import mode_metric_names, mode_statistics
from gan_zoo.models import NonSaturatingGAN
from gan_zoo.nets import MLPDiscriminator, MLPGenerator


def test_the_experiment_scores_what_the_callback_logs() -> None:
    # The experiment reads its scores from the runs' logs: the callback's own metric names.
    stats = {"modes_covered": 1, "high_quality_pct": 2.0, "reverse_kl": 0.5, "num_modes": 8}
    logged = {f"val/{name}" for name in mode_metric_names(stats, 2500)}
    assert {metric for _, metric in experiment.SCORES} == logged


def test_mode_statistics_hand_cases() -> None:
    modes, std = MIXTURES["ring8"]
    # 20 samples on each of 4 modes, 30 on a fifth, 20 far from every mode
    on_modes = torch.cat([modes[k].repeat(20 if k < 4 else 30, 1) for k in range(5)])
    samples = torch.cat([on_modes, torch.full((20, 2), 5.0)])
    stats = mode_statistics(samples, modes, std)
    assert stats["modes_covered"] == 5 and stats["num_modes"] == 8
    assert stats["high_quality_pct"] == pytest.approx(100 * 110 / 130)
    hist = torch.tensor([20, 20, 20, 20, 30, 0, 0, 0], dtype=torch.float64) / 110
    expected = sum(h * math.log(8 * h) for h in hist.tolist() if h > 0)
    assert stats["reverse_kl"] == pytest.approx(expected)
    # 19 high-quality samples do not make a mode; 3.1 std away is not high quality
    just_off = modes[0] + torch.tensor([3.1 * std, 0.0])
    few = torch.cat([modes[1].repeat(19, 1), just_off.repeat(50, 1)])
    stats = mode_statistics(few, modes, std)
    assert stats["modes_covered"] == 0 and stats["high_quality_pct"] == pytest.approx(100 * 19 / 69)
    assert stats["reverse_kl"] == pytest.approx(math.log(8))  # all on one mode
    uniform = mode_statistics(modes.repeat(25, 1), modes, std)
    assert uniform["reverse_kl"] == pytest.approx(0.0) and uniform["modes_covered"] == 8
    nothing = mode_statistics(torch.full((10, 2), 9.0), modes, std)  # no high-quality sample
    assert nothing["high_quality_pct"] == 0 and nothing["reverse_kl"] == pytest.approx(math.log(8))


def test_names_state_the_sample_count() -> None:
    stats = mode_statistics(MIXTURES["grid25"][0].repeat(100, 1), *MIXTURES["grid25"])
    assert mode_metric_names(stats, 2500) == {
        "modes_covered_2500": 25.0,
        "hq_pct_2500": 100.0,
        "reverse_kl_2500": pytest.approx(0.0),
    }


def _stand_in(data: Any, tmp_path: Path, step: int = 2) -> tuple[Any, NonSaturatingGAN]:
    """A trainer at generator step ``step`` with a CSV-like logger, and a tiny GAN."""
    data.setup("fit")
    logged: list[tuple[dict[str, float], int]] = []
    logger = SimpleNamespace(
        log_metrics=lambda values, step: logged.append((values, step)),
        log_hyperparams=lambda params: None,
    )
    trainer = SimpleNamespace(global_step=step, datamodule=data, loggers=[logger], callbacks=[])
    trainer.logged = logged
    dim = data.sample_shape[0]
    generator = MLPGenerator(latent_dim=3, out_dim=dim, hidden=8, depth=1)
    return trainer, NonSaturatingGAN(generator, MLPDiscriminator(in_dim=dim, hidden=8), 3)


@pytest.mark.parametrize(
    ("data", "name"),
    [(Toy2DDataModule(name="swiss_roll", num_samples=64), "Toy2DDataModule"),
     (MNISTSubsetDataModule(), "MNISTSubsetDataModule")],
)  # fmt: skip
def test_data_without_modes_turns_it_off_with_one_info_line(
    data: Any, name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    trainer, gan = _stand_in(data, tmp_path)
    callback = ModeCoverageCallback(every_n_steps=2)
    callback.setup(trainer, gan, "fit")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [f"Mode coverage off: {name} has no known modes (modes, mode_std)"]
    callback.on_train_batch_end(trainer, gan)
    callback.on_train_end(trainer, gan)
    assert trainer.logged == []


@pytest.mark.parametrize("toy", [Toy2DDataModule(name="grid25", num_samples=64), Toy1DDataModule()])
def test_scores_fixed_noise_without_touching_the_global_rng(toy: Any, tmp_path: Path) -> None:
    trainer, gan = _stand_in(toy, tmp_path)
    callback = ModeCoverageCallback(every_n_steps=2, num_samples=500)
    callback.setup(trainer, gan, "fit")
    before = torch.get_rng_state()
    callback.on_train_batch_end(trainer, gan)
    assert torch.equal(before, torch.get_rng_state())
    torch.manual_seed(99)  # another global state: the same samples, the same values
    callback.evaluate(trainer, gan)
    (first, step), (again, _) = trainer.logged
    assert step == 2 and first == again
    samples = gan.sample(500, z=callback.fixed_noise(3))
    expected = mode_statistics(samples, toy.modes, toy.mode_std)
    assert first == {
        "val/modes_covered_500": expected["modes_covered"],
        "val/hq_pct_500": expected["high_quality_pct"],
        "val/reverse_kl_500": expected["reverse_kl"],
    }


def test_every_n_steps_and_at_the_end_once(tmp_path: Path) -> None:
    trainer, gan = _stand_in(Toy2DDataModule(num_samples=64), tmp_path)
    callback = ModeCoverageCallback(every_n_steps=500, num_samples=50)
    callback.setup(trainer, gan, "fit")
    for step in range(1, 1201):
        trainer.global_step = step
        callback.on_train_batch_end(trainer, gan)
    callback.on_train_end(trainer, gan)  # 1200 is off the schedule: scored at the end
    trainer.global_step = 1500
    callback.on_train_batch_end(trainer, gan)
    callback.on_train_end(trainer, gan)  # 1500 is on it: not scored twice
    assert [step for _, step in trainer.logged] == [500, 1000, 1200, 1500]
