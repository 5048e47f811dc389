"""The replay buffer of past fakes (Shrivastava et al. 2017): mixing, capacity, checkpoints."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from gan_zoo.errors import ConfigValueError
from gan_zoo.models import WGANGP, NonSaturatingGAN
from gan_zoo.nets import MLPDiscriminator, MLPGenerator
from gan_zoo.replay import ReplayBuffer


def _batch(value: float, n: int = 8) -> Tensor:
    return torch.full((n, 3), value)  # (n, 3), every entry = value


@pytest.mark.parametrize("ratio,n_old", [(0.0, 0), (0.25, 2), (0.5, 4), (1.0, 8)])
def test_mix_takes_round_ratio_times_batch_from_the_pool(ratio: float, n_old: int) -> None:
    buf = ReplayBuffer(replay_size=16, replay_ratio=ratio)
    first, _, none_old = buf.mix(_batch(1.0))
    assert torch.equal(first, _batch(1.0)) and none_old == 0  # empty pool: current fakes only
    mixed, _, reported = buf.mix(_batch(2.0))
    assert mixed.shape == (8, 3) and reported == n_old
    assert (mixed[:, 0] == 1.0).sum().item() == n_old  # pooled fakes first...
    assert torch.equal(mixed[n_old:], _batch(2.0, 8 - n_old))  # ...then current ones


def test_mix_draws_at_most_what_the_pool_holds() -> None:
    buf = ReplayBuffer(replay_size=16, replay_ratio=1.0)
    buf.mix(_batch(1.0, n=2))  # the pool holds 2
    mixed, _, n_old = buf.mix(_batch(2.0))
    assert (mixed[:, 0] == 1.0).sum().item() == 2 and (mixed[:, 0] == 2.0).sum().item() == 6
    assert n_old == 2 and (mixed[:n_old, 0] == 1.0).all()


def test_capacity_is_never_exceeded_and_new_fakes_replace_old_ones() -> None:
    buf = ReplayBuffer(replay_size=10, replay_ratio=0.5)
    for step in range(1, 7):
        buf.mix(_batch(float(step), n=4))
        assert len(buf) == min(4 * step, 10)
    assert buf.samples is not None and buf.samples.shape == (10, 3)
    values = buf.samples[:, 0]
    # 24 fakes went through a pool of 10: after the first 10 every write replaces a random slot,
    # so the newest batch is fully present and the pool no longer matches the first fill.
    assert (values == 6.0).sum().item() == 4
    assert not torch.equal(values, torch.tensor([1.0] * 4 + [2.0] * 4 + [3.0] * 2))


def test_state_dict_round_trip_restores_the_pool_and_the_next_mix() -> None:
    torch.manual_seed(0)
    buf = ReplayBuffer(replay_size=6, replay_ratio=0.5)
    for step in range(3):
        buf.mix(torch.randn(4, 2) + step)
    state = buf.state_dict()
    assert state["count"] == 6 and state["samples"].shape == (6, 2)
    restored = ReplayBuffer(replay_size=6, replay_ratio=0.5)
    restored.load_state_dict(state)
    assert len(restored) == 6 and torch.equal(restored.samples, buf.samples)
    fake = torch.randn(4, 2)
    torch.manual_seed(1)
    expected, _, _ = buf.mix(fake)
    torch.manual_seed(1)
    assert torch.equal(restored.mix(fake)[0], expected)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_a_restored_pool_follows_the_dtype_of_the_fakes(dtype: torch.dtype) -> None:
    # A pool restored from a checkpoint is float32 on the CPU; the fakes may come in another
    # dtype (here) or on the GPU (next test). The mixed batch must match the fakes.
    saved = ReplayBuffer(replay_size=4, replay_ratio=0.5)
    saved.mix(torch.arange(12.0).reshape(4, 3))
    buf = ReplayBuffer(replay_size=4, replay_ratio=0.5)
    buf.load_state_dict(saved.state_dict())
    assert buf.samples is not None and buf.samples.dtype == torch.float32
    fake = torch.full((4, 3), -1.0, dtype=dtype)
    mixed, _, n_old = buf.mix(fake)
    assert mixed.dtype == dtype and buf.samples.dtype == dtype and n_old == 2
    pool_rows = torch.arange(12.0).reshape(4, 3).to(dtype)
    assert _rows_in(mixed[:2], pool_rows).all() and torch.equal(mixed[2:], fake[2:])


def test_a_restored_pool_follows_the_device_of_the_fakes() -> None:
    # The meta device stands in for the GPU: a CPU pool indexed with meta indices and
    # concatenated with meta fakes would raise, as CPU and CUDA tensors do.
    buf = ReplayBuffer(replay_size=4, replay_ratio=0.5)
    buf.load_state_dict({"samples": torch.ones(4, 3)})
    mixed, _, n_old = buf.mix(torch.empty(4, 3, device="meta"))
    assert mixed.device.type == "meta" and buf.samples.device.type == "meta"
    assert mixed.shape == (4, 3) and n_old == 2


def test_partially_filled_and_empty_state_round_trip() -> None:
    buf = ReplayBuffer(replay_size=8)
    empty = ReplayBuffer(replay_size=8)
    empty.load_state_dict(buf.state_dict())
    assert len(empty) == 0 and empty.samples is None
    buf.mix(torch.ones(3, 2))
    partial = ReplayBuffer(replay_size=8)
    partial.load_state_dict(buf.state_dict())
    assert len(partial) == 3 and torch.equal(partial.samples[:3], torch.ones(3, 2))
    assert partial.samples.shape == (8, 2)  # room for 5 more


@pytest.mark.parametrize("kwargs", [{"replay_size": 0}, {"replay_size": 4, "replay_ratio": 1.5}])
def test_invalid_settings_are_refused(kwargs) -> None:
    with pytest.raises(ConfigValueError):
        ReplayBuffer(**kwargs)


# ----------------------------------------------------------------- in the training loop
class _Recording(NonSaturatingGAN):
    """Records what the buffer receives and returns, and the fakes D's penalty hook is given."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.generated: list[Tensor] = []
        self.mixed: list[Tensor] = []
        self.seen_by_d: list[Tensor] = []
        self.n_old: list[int] = []
        self.scores: list[Tensor] = []  # the (B,) fake scores D's loss sees
        self.estimated: list[Tensor] = []  # the fake scores divergence_estimates is given
        mix = self.replay.mix

        def recording_mix(fake: Tensor, labels: Tensor | None = None) -> tuple:
            self.generated.append(fake.clone())
            mixed, mixed_labels, n_old = mix(fake, labels)
            self.mixed.append(mixed.clone())
            self.n_old.append(n_old)
            return mixed, mixed_labels, n_old

        self.replay.mix = recording_mix

    def discriminator_penalty(self, real: Tensor, fake: Tensor) -> Tensor:
        self.seen_by_d.append(fake.detach().clone())
        return super().discriminator_penalty(real, fake)

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        self.scores.append(fake_scores.detach().clone())
        return super().discriminator_loss(real_scores, fake_scores)

    def divergence_estimates(self, real_scores, fake_scores, real=None, fake=None):
        self.estimated.append(fake_scores.clone())
        return super().divergence_estimates(real_scores, fake_scores, real, fake)


def _nets() -> tuple[MLPGenerator, MLPDiscriminator]:
    return MLPGenerator(latent_dim=2, hidden=16, depth=2), MLPDiscriminator(hidden=16, depth=2)


def _loader(batch: int = 8) -> DataLoader:
    """Training batches of ``batch`` rows: n_critic critic batches of the model's B."""
    return DataLoader(TensorDataset(torch.randn(256, 2)), batch_size=batch, drop_last=True)


def _trainer(tmp_path: Path, steps: int) -> pl.Trainer:
    return pl.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        log_every_n_steps=1,  # divergence estimates at every generator step
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )


def _rows_in(rows: Tensor, pool: Tensor) -> Tensor:
    """``(n,)`` mask: which rows of ``rows`` (n, D) occur exactly in ``pool`` (m, D)."""
    return (rows[:, None, :] == pool[None, :, :]).all(dim=2).any(dim=1)


def test_discriminator_trains_on_past_fakes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _Recording(*_nets(), latent_dim=2, replay_size=64, replay_ratio=0.5)
    _trainer(tmp_path, steps=6).fit(model, _loader())
    assert len(model.mixed) == 6
    assert model.n_old == [0, 4, 4, 4, 4, 4]
    for step in range(1, 6):
        mixed, current = model.mixed[step], model.generated[step]
        assert torch.equal(model.seen_by_d[step], mixed)  # D is trained on the mixed batch
        past = torch.cat(model.generated[:step])
        old = mixed[:4]  # round(0.5 * 8) pooled fakes
        assert _rows_in(old, past).all()  # every pooled row is an earlier generator output...
        assert not _rows_in(old, current).any()  # ...not one of this step's
        assert torch.equal(mixed[4:], current[4:])


def test_divergence_estimates_see_only_the_current_fakes(tmp_path: Path) -> None:
    # The estimates bound a divergence to P_G, so the replayed rows (a mixture of past
    # generators) must be left out of them, while D's loss still sees the whole mixed batch.
    torch.manual_seed(0)
    model = _Recording(*_nets(), latent_dim=2, replay_size=64, replay_ratio=0.75)
    _trainer(tmp_path, steps=4).fit(model, _loader())
    assert model.n_old == [0, 6, 6, 6]  # round(0.75 * 8)
    assert len(model.estimated) == 4  # one per generator step (n_critic = 1)
    for scores, n_old, estimated in zip(model.scores, model.n_old, model.estimated):
        assert scores.shape == (8,) and estimated.shape == (8 - n_old,)
        assert torch.equal(estimated, scores[n_old:])


def test_no_estimates_when_every_fake_is_replayed(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _Recording(*_nets(), latent_dim=2, replay_size=64, replay_ratio=1.0)
    _trainer(tmp_path, steps=3).fit(model, _loader())
    assert model.n_old == [0, 8, 8]
    assert [len(e) for e in model.estimated] == [8]  # the first step only: the pool was empty


def test_buffer_survives_checkpoint_save_and_resume(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = WGANGP(*_nets(), latent_dim=2, n_critic=2, replay_size=20, replay_ratio=0.25)
    trainer = _trainer(tmp_path, steps=3)
    trainer.fit(model, _loader(batch=2 * 8))
    path = tmp_path / "replay.ckpt"
    trainer.save_checkpoint(path)
    (saved,) = torch.load(path, weights_only=True)["replay_buffer"]  # one pool per rank
    assert saved["count"] == 20 and torch.equal(saved["samples"], model.replay.samples)

    resumed = WGANGP(*_nets(), latent_dim=2, n_critic=2, replay_size=20, replay_ratio=0.25)
    assert len(resumed.replay) == 0
    # max_steps equal to the checkpoint's: restore everything, train nothing
    _trainer(tmp_path, steps=3).fit(resumed, _loader(batch=2 * 8), ckpt_path=path)
    assert len(resumed.replay) == 20
    assert torch.equal(resumed.replay.samples, model.replay.samples)
    # and training goes on from there with the restored pool
    _trainer(tmp_path, steps=5).fit(resumed, _loader(batch=2 * 8), ckpt_path=path)
    assert len(resumed.replay) == 20 and torch.isfinite(resumed.replay.samples).all()
