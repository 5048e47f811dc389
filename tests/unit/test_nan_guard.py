"""NaN/Inf: caught in the step it happens, named in one line, never written into a checkpoint;
or, opted in, the bad step is skipped and counted."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torch.utils.data import DataLoader

from gan_zoo.callbacks import NaNGuard, NonFiniteError
from gan_zoo.callbacks.nan_guard import any_nonfinite
from gan_zoo.checkpointing import read_checkpoint
from gan_zoo.models import WGANGP
from gan_zoo.nets import MLPDiscriminator, MLPGenerator
from gan_zoo.training import build
from tests.helpers import compose_train
from tests.integration.exactness import TINY, cli_args, cli_env, run_in_process
from tests.warm_cli import run_python

WGAN_GP = ["model=wgan_gp", "model.n_critic=5"]
# A NaN in the real batch of generator step 3 (its first critic batch). Step 2 is saved.
POISON = ["+callbacks.poison._target_=tests.integration.fault_injection.PoisonAt"]
POISON += ["+callbacks.poison.at_batch=3"]


def test_a_nan_loss_stops_the_run_in_its_step_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteError) as info:
        run_in_process(tmp_path, [*WGAN_GP, *POISON])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("non-finite d_loss (NaN or Inf) at generator step 3 of WGANGP"), (
        message
    )
    # The last good checkpoint is the only one, and finite.
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "last.ckpt",
        "step000002.ckpt",
    ]
    state = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["state_dict"]
    assert all(t.isfinite().all() for t in state.values() if t.is_floating_point())


def test_non_finite_weights_are_named(tmp_path: Path) -> None:
    sgd = ["model.discriminator_optimizer._target_=torch.optim.SGD"]
    sgd += ["~model.discriminator_optimizer.betas", "model.discriminator_optimizer.lr=inf"]
    with pytest.raises(NonFiniteError, match=r"^non-finite discriminator weights .* step 1 of"):
        run_in_process(tmp_path, sgd)


def test_a_checkpoint_of_non_finite_weights_is_refused_before_writing(tmp_path: Path) -> None:
    """The check that protects the last good checkpoint when detection is one batch late (GPU)."""
    guard = NaNGuard()
    _, model = build(compose_train(TINY, run_dir=tmp_path))
    state = model.state_dict()
    state["generator.net.0.weight"][0, 0] = float("inf")
    with pytest.raises(NonFiniteError, match=r"non-finite weights \(generator.net.0.weight\)"):
        guard.on_save_checkpoint(pl.Trainer(logger=False), model, {"state_dict": state})


def test_non_finite_gradients_are_caught_before_the_optimizer_step(tmp_path: Path) -> None:
    guard = NaNGuard()
    trainer = pl.Trainer(logger=False, enable_progress_bar=False)
    _, model = build(compose_train(TINY, run_dir=tmp_path))
    optimizer = torch.optim.SGD(model.generator.parameters(), lr=0.1)
    guard.on_train_start(trainer, model)
    guard.on_train_batch_start(trainer, model, None, 0)
    for param in model.generator.parameters():
        param.grad = torch.zeros_like(param)
    next(model.generator.parameters()).grad[0] = float("nan")
    guard.on_before_optimizer_step(trainer, model, optimizer)
    with pytest.raises(NonFiniteError, match="non-finite generator gradients .* step 1 "):
        guard.on_train_batch_end(trainer, model, {}, None, 0)


def test_skipping_opt_in_skips_the_bad_step_counts_it_and_trains_on(tmp_path: Path) -> None:
    assert run_in_process(tmp_path, [*WGAN_GP, *POISON, "nan_guard.skip_nonfinite_steps=true"])
    last = read_checkpoint(tmp_path / "checkpoints" / "step000006.ckpt")
    assert all(t.isfinite().all() for t in last["state_dict"].values() if t.is_floating_point())
    assert last["callbacks"]["NaNGuard"] == {"skipped_steps": 1}
    # 30 critic steps were taken, one skipped: its optimizer state did not move either.
    critic_state = last["optimizer_states"][0]["state"]
    assert {int(s["step"]) for s in critic_state.values()} == {29}
    (metrics,) = tmp_path.glob("csv/version_*/metrics.csv")
    counts = [r["train/skipped_steps"] for r in csv.DictReader(metrics.open())]
    assert [float(c) for c in counts if c][-1] == 1.0


def test_train_py_exits_3_with_one_line(tmp_path: Path) -> None:
    args = cli_args(tmp_path, [*WGAN_GP, *POISON])
    result = run_python(args, timeout=300, env=cli_env())
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: non-finite d_loss (NaN or Inf) at generator step 3"), last
    # the run's own log says why it stopped, as a sweep's job directory needs
    assert (
        "non-finite d_loss (NaN or Inf) at generator step 3" in (tmp_path / "train.log").read_text()
    )


def test_under_fp16_a_nan_in_the_data_still_stops_the_run() -> None:
    """GradScaler would skip that step silently; only an overflowing penalty is the scaler's."""
    torch.manual_seed(0)
    gen, critic = MLPGenerator(latent_dim=2, hidden=16), MLPDiscriminator(hidden=16)
    model = WGANGP(gen, critic, latent_dim=2, n_critic=2)
    data = torch.randn(256, 2)
    data[50] = float("nan")  # in rows 32-63: the training batch of generator step 2
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=6,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[NaNGuard()],
        plugins=[MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))],
    )
    with pytest.raises(NonFiniteError) as info:
        trainer.fit(model, DataLoader(data, batch_size=2 * 16))  # 2 critic batches of 16
    assert str(info.value).startswith(
        "non-finite d_loss (NaN or Inf) at generator step 2 of WGANGP"
    ), str(info.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_any_nonfinite_finds_one_bad_element_in_any_dtype(bad: float, dtype: torch.dtype) -> None:
    tensors = [torch.randn(3, 4, dtype=dtype), torch.randn(50, dtype=dtype)]
    assert not any_nonfinite(tensors)
    tensors[1][17] = bad
    assert any_nonfinite(tensors)


def test_any_nonfinite_sees_opposite_infinities_and_no_false_alarm_from_large_sums() -> None:
    both = torch.tensor([float("inf"), float("-inf"), 1.0])  # sums to NaN
    assert any_nonfinite([both])
    large = torch.full((1000,), 60000.0, dtype=torch.float16)  # sums past fp16's range
    assert not any_nonfinite([large]) and not any_nonfinite([])
