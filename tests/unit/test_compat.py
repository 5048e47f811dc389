"""Every private API in ``gan_zoo.compat`` still exists and still means what gan_zoo relies on.

A Lightning, W&B or torch upgrade that moves one of them fails here, loudly, instead of deep in
a training run. The pinned range in setup.cfg is the one these tests pass on.
"""

from __future__ import annotations

from pathlib import Path

import lightning
import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from packaging.version import Version
from torch import nn

from gan_zoo import compat


def test_the_pinned_lightning_range() -> None:
    assert Version("2.6") <= Version(lightning.__version__) < Version("2.7")


def test_flat_tensor_round_trip() -> None:
    tensors = [torch.arange(3.0), torch.ones(2, 2)]
    flat = compat.flatten_dense_tensors(tensors)
    assert flat.shape == (7,)
    back = compat.unflatten_dense_tensors(flat, tensors)
    assert all(torch.equal(a, b) for a, b in zip(tensors, back))


def test_layer_base_classes() -> None:
    assert isinstance(nn.BatchNorm2d(3), compat.NormBase)
    assert isinstance(nn.InstanceNorm2d(3, track_running_stats=True), compat.NormBase)
    assert isinstance(nn.BatchNorm1d(3), compat.BatchNormBase)
    assert not isinstance(nn.LayerNorm(3), compat.BatchNormBase)
    assert isinstance(nn.Conv2d(1, 1, 3), compat.ConvNd)
    assert isinstance(nn.ConvTranspose2d(1, 1, 3), compat.ConvTransposeNd)
    assert isinstance(nn.ConvTranspose2d(1, 1, 3), compat.ConvNd)


def test_reversed_padding_is_what_f_pad_wants() -> None:
    layer = nn.Conv2d(1, 1, 3, padding=(1, 2), padding_mode="circular")
    assert tuple(compat.reversed_padding(layer)) == (2, 2, 1, 1)


def test_foreach_lerp() -> None:
    targets, sources = [torch.zeros(2)], [torch.full((2,), 4.0)]
    compat.foreach_lerp_(targets, sources, 0.25)
    assert torch.equal(targets[0], torch.ones(2))


class _Steps(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)
        self.flushed: list[bool] = []

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        self.flushed.append(compat.logs_flushed_this_step(self.trainer))
        loss = self.layer(batch).mean()
        self.log("loss", loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(
    tmp_path: Path, ckpt_path: Path | None = None, **kwargs: object
) -> tuple[_Steps, pl.Trainer]:
    model = _Steps()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,  # type: ignore[arg-type]
    )
    loader = torch.utils.data.DataLoader(torch.randn(40, 2), batch_size=4)  # 10 batches an epoch
    trainer.fit(model, loader, ckpt_path=ckpt_path)
    return model, trainer


def test_logs_flushed_this_step_is_lightnings_own_decision(tmp_path: Path) -> None:
    model, _ = _fit(tmp_path, max_steps=7, log_every_n_steps=3, logger=CSVLogger(tmp_path))
    assert model.flushed == [False, False, True, False, False, True, False]
    rows = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 2  # header, then the two flushed steps
    fast, _ = _fit(tmp_path / "fast", fast_dev_run=2)
    assert fast.flushed == [True, True]


def test_last_step_saved_and_save_last(tmp_path: Path) -> None:
    callback = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=2)
    _, trainer = _fit(tmp_path, max_steps=3, callbacks=[callback], logger=False)
    # Lightning saved at step 2 and, having saved once, not at the end (GANCheckpoint's reason).
    assert compat.last_step_saved(callback) == 2 and trainer.global_step == 3
    compat.save_last(callback, trainer)
    assert compat.last_step_saved(callback) == 3
    assert torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)["global_step"] == 3


class _NextEpoch(pl.Callback):
    def __init__(self, fix: bool) -> None:
        self.fix, self.fixed, self.epochs_started = fix, False, []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.fix:
            self.fixed = compat.start_next_epoch_normally(trainer)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epochs_started.append(trainer.current_epoch)


@pytest.mark.parametrize("fix", [True, False])
def test_start_next_epoch_normally_after_a_restart_on_an_epochs_last_batch(
    fix: bool, tmp_path: Path
) -> None:
    """Lightning 2.6 restarted from a checkpoint of an epoch's last batch skips the next epoch's
    ``on_train_epoch_start`` and its ready/started counts (which a later checkpoint then holds);
    the fix restores both. When an upgrade fixes Lightning, the ``fix=False`` case fails here."""
    settings = {"logger": False, "log_every_n_steps": 1}
    _, straight = _fit(tmp_path / "straight", max_steps=15, enable_checkpointing=False, **settings)
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=10, save_top_k=-1)
    _fit(tmp_path / "first", max_steps=10, callbacks=[saver], **settings)
    (path,) = (tmp_path / "ckpt").glob("*step=10.ckpt")  # saved on epoch 0's last batch
    probe = _NextEpoch(fix)
    _, resumed = _fit(tmp_path / "resumed", path, max_steps=15, callbacks=[probe], **settings)
    expected = straight.fit_loop.epoch_progress.state_dict()
    if fix:
        assert probe.fixed and probe.epochs_started == [1]
        assert resumed.fit_loop.epoch_progress.state_dict() == expected
    else:
        assert probe.epochs_started == []  # Lightning's own behaviour, the reason for the fix
        assert resumed.fit_loop.epoch_progress.state_dict() != expected


@pytest.mark.parametrize(
    "name",
    ["flatten_dense_tensors", "logs_flushed_this_step", "save_last", "start_next_epoch_normally"],
)
def test_every_entry_is_exported(name: str) -> None:
    assert name in compat.__all__
