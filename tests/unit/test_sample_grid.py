"""SampleGrid: fixed noise from its own generator, so rendering never changes training, and the
step of its last render survives a resume."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from gan_zoo.callbacks import SampleGrid
from gan_zoo.checkpointing import read_checkpoint
from gan_zoo.data import Toy1DDataModule, Toy2DDataModule
from gan_zoo.models import NonSaturatingGAN
from gan_zoo.nets import MLPDiscriminator, MLPGenerator
from tests.integration.exactness import differences, run_in_process


def _toy(tmp_path: Path, dim: int = 2, step: int = 2) -> tuple[Any, NonSaturatingGAN]:
    """A stand-in trainer at generator step ``step`` and a tiny GAN on ``dim``-D toy data."""
    toy = Toy2DDataModule if dim == 2 else Toy1DDataModule
    data = toy(num_samples=64, batch_size=16)
    data.setup("fit")  # as the Trainer does before any batch
    trainer = SimpleNamespace(
        global_step=step, default_root_dir=str(tmp_path), datamodule=data, loggers=[]
    )
    gen = MLPGenerator(latent_dim=3, out_dim=dim, hidden=8, depth=1)
    return trainer, NonSaturatingGAN(gen, MLPDiscriminator(in_dim=dim, hidden=8), latent_dim=3)


@pytest.mark.parametrize("dim", [1, 2])
def test_the_toy_plot_draws_nothing_from_the_global_rng(tmp_path: Path, dim: int) -> None:
    trainer, gan = _toy(tmp_path, dim)
    grid = SampleGrid(every_n_steps=2)
    before = torch.get_rng_state()
    grid._render(trainer, gan, "a")
    assert torch.equal(before, torch.get_rng_state())
    torch.manual_seed(99)  # another global state: the plot is the same, fixed noise
    grid._render(trainer, gan, "b")
    samples = tmp_path / "samples"
    assert (samples / "a.png").read_bytes() == (samples / "b.png").read_bytes()


def test_weights_are_bitwise_the_same_with_a_grid_every_step_or_none(tmp_path: Path) -> None:
    """6 generator steps of the tiny toy2d run, rendering at every step against only at the end
    (after the last checkpoint). The scatter's 2000 noise vectors once came from the global RNG
    and shifted all later noise."""
    every, never = tmp_path / "every", tmp_path / "never"
    assert run_in_process(every, ["callbacks.sample_grid.every_n_steps=1"]) == "finished"
    assert run_in_process(never, ["callbacks.sample_grid.every_n_steps=0"]) == "finished"
    assert len(list((every / "samples").glob("step_*.png"))) == 6
    assert [p.name for p in (never / "samples").iterdir()] == ["final.png"]
    a = read_checkpoint(every / "checkpoints" / "step000006.ckpt")
    b = read_checkpoint(never / "checkpoints" / "step000006.ckpt")
    for key in ("state_dict", "optimizer_states", "lr_schedulers", "replay_buffer"):
        assert not differences(a[key], b[key]), key


def test_the_grid_is_drawn_on_its_interval_and_keeps_no_state(tmp_path: Path) -> None:
    """One training batch is one generator step, so the interval alone decides; nothing of the
    grid needs saving in checkpoints."""
    trainer, gan = _toy(tmp_path, step=4)
    grid = SampleGrid(every_n_steps=2)
    grid.on_train_batch_end(trainer, gan)
    assert (tmp_path / "samples" / "step_000004.png").exists()
    assert grid.state_dict() == {}
    trainer, gan = _toy(tmp_path / "odd", step=3)
    grid.on_train_batch_end(trainer, gan)
    assert not (tmp_path / "odd" / "samples").exists()
