"""The loop and each variant's hooks, on tiny MLPs and toy data."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gan_zoo.errors import ConfigValueError
from gan_zoo.models import GAN, SNGAN, WGANGP, MinimaxGAN, NonSaturatingGAN, WGANClip
from gan_zoo.nets import DCGANDiscriminator, MLPDiscriminator, MLPGenerator

VARIANTS = [MinimaxGAN, NonSaturatingGAN, WGANClip, WGANGP, SNGAN]


def _nets() -> tuple[nn.Module, nn.Module]:
    return MLPGenerator(latent_dim=2, hidden=16, depth=2), MLPDiscriminator(hidden=16, depth=2)


def _loader(n: int = 64, batch: int = 8) -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(n, 2)), batch_size=batch, drop_last=True)


def _trainer(tmp_path, **kwargs) -> pl.Trainer:
    options = dict(
        default_root_dir=tmp_path,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    return pl.Trainer(**{**options, **kwargs})


class _Counting(NonSaturatingGAN):
    """Counts how often each part of the loop runs, and keeps every critic step's batch."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls = {"d": 0, "g": 0, "steps": 0, "critic_batches": []}

    def discriminator_loss(self, real_scores, fake_scores):
        self.calls["d"] += 1
        return super().discriminator_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores):
        self.calls["g"] += 1
        return super().generator_loss(fake_scores)

    def critic_batches(self, batch):
        self.calls["steps"] += 1
        batches = super().critic_batches(batch)
        self.calls["critic_batches"] += [real.clone() for real, _ in batches]
        return batches


def test_max_steps_counts_generator_steps_with_n_critic_5(tmp_path) -> None:
    model = _Counting(*_nets(), latent_dim=2, n_critic=5)
    trainer = _trainer(tmp_path, max_steps=4, logger=CSVLogger(tmp_path), log_every_n_steps=1)
    trainer.fit(model, _loader(n=400, batch=5 * 8))  # a training batch: 5 critic batches of 8
    assert model.calls["g"] == 4 and model.calls["d"] == 20 and model.calls["steps"] == 4
    assert trainer.global_step == 4
    # every critic step saw its own real batch of 8
    batches = model.calls["critic_batches"]
    assert len(batches) == 20 and all(b.shape == (8, 2) for b in batches)
    assert all(not torch.equal(batches[i], batches[i + 1]) for i in range(19))
    # every logged row is on the generator-step axis, 1..4
    import csv

    rows = list(csv.DictReader(open(tmp_path / "lightning_logs/version_0/metrics.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]


def test_generator_steps_continue_across_epochs(tmp_path) -> None:
    # 56 rows make 1 training batch of 5 x 8 per epoch: 3 generator steps take 3 epochs
    model = _Counting(*_nets(), latent_dim=2, n_critic=5)
    trainer = _trainer(tmp_path, max_steps=3)
    trainer.fit(model, _loader(n=56, batch=40))
    assert model.calls["d"] == 15 and model.calls["g"] == 3 and trainer.current_epoch == 3


def test_a_batch_that_does_not_split_into_n_critic_batches_is_refused(tmp_path) -> None:
    model = NonSaturatingGAN(*_nets(), latent_dim=2, n_critic=3)
    with pytest.raises(ConfigValueError, match=r"^batch='8 samples' is invalid: expected n_critic"):
        _trainer(tmp_path, max_steps=1).fit(model, _loader(batch=8))


class _Frozen(WGANGP):
    """Checks after every critic step that the generator is what it was when the step began."""

    def training_step(self, batch, batch_idx):
        self.before = [p.detach().clone() for p in self.generator.parameters()]
        self.grads = [
            None if p.grad is None else p.grad.clone() for p in self.generator.parameters()
        ]
        self.critic_steps_checked = getattr(self, "critic_steps_checked", 0)
        return super().training_step(batch, batch_idx)

    def after_discriminator_step(self) -> None:
        super().after_discriminator_step()
        now = list(self.generator.parameters())
        assert all(torch.equal(a, b) for a, b in zip(self.before, now))
        for grad, p in zip(self.grads, now):  # nor its gradients
            assert (grad is None and p.grad is None) or torch.equal(grad, p.grad)
        self.critic_steps_checked += 1


def test_discriminator_steps_do_not_touch_the_generator(tmp_path) -> None:
    model = _Frozen(*_nets(), latent_dim=2, n_critic=5)
    _trainer(tmp_path, max_steps=2).fit(model, _loader(n=80, batch=40))
    assert model.critic_steps_checked == 10


class _Recorder(pl.Callback):
    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen.append((batch_idx, trainer.global_step))


def test_lightnings_own_counters_count_generator_steps(tmp_path) -> None:
    """A plain Trainer(max_steps=20) and a user's callback, as a new user writes them (WGAN-GP,
    5 critic steps per generator step): 20 calls, batch_idx 0..19, global_step 1..20; Lightning's
    own checkpoint interval and log interval count the same steps."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    recorder = _Recorder()
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=5, save_top_k=-1)
    model = WGANGP(*_nets(), latent_dim=2)
    trainer = _trainer(
        tmp_path,
        max_steps=20,
        callbacks=[recorder, checkpoints],
        enable_checkpointing=True,
        logger=CSVLogger(tmp_path),
        log_every_n_steps=5,
    )
    trainer.fit(model, _loader(n=5 * 8 * 100, batch=5 * 8))
    assert recorder.seen == [(i, i + 1) for i in range(20)]
    assert trainer.global_step == 20 and trainer.num_training_batches == 100
    saved = sorted(int(p.stem.split("step=")[1]) for p in (tmp_path / "ckpt").glob("*.ckpt"))
    assert saved == [5, 10, 15, 20]
    import csv

    rows = list(csv.DictReader(open(tmp_path / "lightning_logs/version_0/metrics.csv")))
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20]


def test_wgan_clip_clamps_every_critic_parameter(tmp_path) -> None:
    model = WGANClip(*_nets(), latent_dim=2, n_critic=1, clip_value=0.01)
    with torch.no_grad():
        for p in model.discriminator.parameters():
            p.mul_(100)
    _trainer(tmp_path, max_steps=1).fit(model, _loader())
    params = torch.cat([p.flatten() for p in model.discriminator.parameters()])
    assert params.abs().max().item() == pytest.approx(0.01)


def test_wgan_gp_refuses_batchnorm_critic() -> None:
    with pytest.raises(ConfigValueError, match="discriminator=.*BatchNorm"):
        WGANGP(MLPGenerator(), DCGANDiscriminator(norm="batch"), latent_dim=2)


@pytest.mark.parametrize(
    "critic",
    [
        lambda: DCGANDiscriminator(),  # norm="batch" is DCGAN's default
        lambda: MLPDiscriminator(hidden=16, depth=2, norm="batch"),
        lambda: nn.Sequential(nn.Linear(2, 4), nn.SyncBatchNorm(4), nn.Linear(4, 1)),
    ],
)
def test_sngan_refuses_a_batchnorm_critic_in_one_line(critic) -> None:
    with pytest.raises(ConfigValueError) as error:
        SNGAN(MLPGenerator(), critic(), latent_dim=2)
    message = str(error.value)
    assert "\n" not in message and message.startswith("discriminator=")
    assert "without BatchNorm" in message and "norm=none" in message


@pytest.mark.parametrize("norm", ["none", "layer"])
def test_sngan_accepts_critics_without_batchnorm(norm: str) -> None:
    critic = DCGANDiscriminator(width=8, norm=norm)
    model = SNGAN(MLPGenerator(latent_dim=2), critic, latent_dim=2)
    assert model.discriminator(torch.randn(3, 1, 28, 28)).shape == (3,)


def test_wgan_gp_penalty_is_lambda_times_gp() -> None:
    gen, disc = _nets()
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    from gan_zoo.penalties import gradient_penalty

    torch.manual_seed(3)
    expected = 10.0 * gradient_penalty(disc, real, fake)
    torch.manual_seed(3)
    got = WGANGP(gen, disc, latent_dim=2, gp_weight=10.0).discriminator_penalty(real, fake)
    torch.testing.assert_close(got, expected)


def test_sngan_normalizes_every_critic_layer() -> None:
    from torch.nn.utils import parametrize

    model = SNGAN(*_nets(), latent_dim=2)
    layers = [m for m in model.discriminator.modules() if isinstance(m, nn.Linear)]
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    # after enough power iterations the largest singular value of each layer is ~1
    x = torch.randn(4, 2)
    for _ in range(50):
        model.discriminator(x)
    for layer in layers:
        assert torch.linalg.matrix_norm(layer.weight, ord=2).item() == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_trains_and_stays_finite(variant, tmp_path) -> None:
    model = variant(*_nets(), latent_dim=2, n_critic=2)
    _trainer(tmp_path, max_steps=3).fit(model, _loader())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    samples = model.sample(10, batch_size=3)
    assert samples.shape == (10, 2) and not samples.requires_grad


def test_paper_default_optimizers() -> None:
    gen, disc = _nets()
    d_opt, g_opt = WGANClip(gen, disc, latent_dim=2).configure_optimizers()
    assert isinstance(d_opt, torch.optim.RMSprop) and d_opt.defaults["lr"] == 5e-5
    d_opt, _ = WGANGP(*_nets(), latent_dim=2).configure_optimizers()
    assert d_opt.defaults["lr"] == 1e-4 and tuple(d_opt.defaults["betas"]) == (0.0, 0.9)
    d_opt, _ = NonSaturatingGAN(*_nets(), latent_dim=2).configure_optimizers()
    assert d_opt.defaults["lr"] == 2e-4 and tuple(d_opt.defaults["betas"]) == (0.5, 0.999)
    assert WGANClip(*_nets(), latent_dim=2).n_critic == 5
    assert SNGAN(*_nets(), latent_dim=2).n_critic == 5


@pytest.mark.parametrize(
    ("build", "key"),
    [
        (lambda g, d: NonSaturatingGAN(g, d, latent_dim=2, n_critic=0), "n_critic=0"),
        (lambda g, d: NonSaturatingGAN(g, d, latent_dim=0), "latent_dim=0"),
        (lambda g, d: NonSaturatingGAN(g, d, latent_dim=3), "latent_dim=3"),
        (lambda g, d: WGANClip(g, d, latent_dim=2, clip_value=0.0), "clip_value=0.0"),
        (lambda g, d: WGANClip(g, d, latent_dim=2, clip_value=-1), "clip_value=-1"),
        (lambda g, d: WGANGP(g, d, latent_dim=2, gp_weight=-1.0), "gp_weight=-1.0"),
        (lambda g, d: SNGAN(g, d, latent_dim=2, loss="wasserstein"), "loss='wasserstein'"),
    ],
)
def test_bad_hyperparameters_are_refused(build, key) -> None:
    with pytest.raises(ConfigValueError, match=key.replace("(", r"\(")):
        build(*_nets())


def test_sample_uses_given_noise_and_restores_train_mode() -> None:
    model = NonSaturatingGAN(*_nets(), latent_dim=2)
    model.generator.train()
    z = torch.randn(5, 2)
    a, b = model.sample(5, z=z), model.sample(5, z=z)
    torch.testing.assert_close(a, b)
    assert model.generator.training


def test_base_class_demands_the_loss_hooks() -> None:
    with pytest.raises(NotImplementedError, match="discriminator_loss"):
        GAN(*_nets(), latent_dim=2).discriminator_loss(torch.zeros(1), torch.zeros(1))
