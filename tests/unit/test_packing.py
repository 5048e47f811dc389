"""PacGAN packing (Lin et al. 2018): shapes, per-pack penalties, losses on packs, and the loop."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from gan_zoo.errors import ConfigValueError
from gan_zoo.models import WGANGP, NonSaturatingGAN
from gan_zoo.models.critic import Critic
from gan_zoo.nets import DCGANDiscriminator, MLPDiscriminator, MLPGenerator, ResNetDiscriminator
from gan_zoo.nets.conditioning import pack_samples
from gan_zoo.penalties import gradient_penalty, input_gradient_norms


def test_pack_concatenates_consecutive_samples_along_features_and_channels() -> None:
    points = torch.arange(12.0).reshape(6, 2)
    assert torch.equal(
        pack_samples(points, 3), torch.tensor([[0.0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
    )
    images = torch.randn(4, 3, 8, 8)
    packed = pack_samples(images, 2)  # (2, 6, 8, 8): sample 2k's channels, then 2k+1's
    assert packed.shape == (2, 6, 8, 8)
    assert torch.equal(packed[1, :3], images[2]) and torch.equal(packed[1, 3:], images[3])


@pytest.mark.parametrize(
    ("net", "shape"),
    [
        (MLPDiscriminator(in_dim=2, hidden=8, pack=4), (8, 2)),
        (
            DCGANDiscriminator(channels=1, image_size=28, width=8, norm="none", pack=4),
            (8, 1, 28, 28),
        ),
        (ResNetDiscriminator(channels=3, width=8, pack=4), (8, 3, 32, 32)),
    ],
)
def test_packed_discriminators_score_one_value_per_pack(net: nn.Module, shape: tuple) -> None:
    x = torch.randn(shape)
    assert net(x).shape == (2,) and net.pack == 4 and net.input_shape == shape[1:]
    # A pack's score sees all four of its samples: changing one changes that score, no other.
    y = x.clone()
    y[5] += 1.0  # the second pack
    before, after = net(x), net(y)
    assert torch.equal(before[0], after[0]) and not torch.equal(before[1], after[1])


class _Affine(nn.Module):
    """D(x) = a . pack(x): gradients per pack are ``a`` reshaped, known in closed form."""

    pack = 2

    def __init__(self, weights: Tensor) -> None:
        super().__init__()
        self.weights = weights  # (pack * D,)

    def forward(self, x: Tensor) -> Tensor:
        return pack_samples(x, self.pack) @ self.weights


def test_gradients_and_the_penalty_are_taken_per_pack() -> None:
    critic = _Affine(torch.tensor([3.0, 0.0, 0.0, 4.0]))  # ||grad|| = 5 per pack of two 2-d points
    x = torch.randn(6, 2)
    assert torch.allclose(input_gradient_norms(critic, x), torch.full((3,), 5.0))
    penalty = gradient_penalty(critic, torch.randn(6, 2), torch.randn(6, 2))
    assert penalty.item() == pytest.approx((5.0 - 1.0) ** 2)  # per pack: not per 2-d point
    with pytest.raises(RuntimeError):  # epsilon is one per pack: 3 here, not 6
        gradient_penalty(critic, torch.randn(6, 2), torch.randn(6, 2), epsilon=torch.rand(6))


def test_the_critic_wrapper_keeps_the_pack() -> None:
    net = MLPDiscriminator(in_dim=2, hidden=8, pack=2)
    critic = Critic(net, pack=net.pack)
    assert critic(torch.randn(4, 2)).shape == (2,) and critic.pack == 2


def _nets(pack: int) -> tuple[MLPGenerator, MLPDiscriminator]:
    return MLPGenerator(latent_dim=2, hidden=16), MLPDiscriminator(hidden=16, pack=pack)


def _fit(model: pl.LightningModule, batch: int, steps: int = 3) -> None:
    pl.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    ).fit(model, DataLoader(TensorDataset(torch.randn(512, 2)), batch_size=batch))


class _Scores(WGANGP):
    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        self.shapes = (real_scores.shape, fake_scores.shape)
        return super().discriminator_loss(real_scores, fake_scores)


def test_a_packed_model_trains_with_losses_and_penalty_on_packs() -> None:
    torch.manual_seed(0)
    model = _Scores(*_nets(4), latent_dim=2, pack=4, replay_size=32)  # n_critic 5, GP, replay
    _fit(model, batch=5 * 16)
    assert model.shapes == (torch.Size([4]), torch.Size([4]))  # 16 samples in packs of 4
    assert model.trainer.global_step == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_pack_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ConfigValueError, match=r"^pack=4 is invalid: expected 1, the discrim"):
        NonSaturatingGAN(*_nets(1), latent_dim=2, pack=4)
    with pytest.raises(ConfigValueError, match=r"batch='10 samples' is invalid: .*pack=4"):
        _fit(NonSaturatingGAN(*_nets(4), latent_dim=2, pack=4), batch=10)
    g, d = MLPGenerator(num_classes=3), MLPDiscriminator(pack=2, num_classes=3)
    with pytest.raises(ConfigValueError, match=r"pack=2 is invalid: expected 1 with num_classes"):
        NonSaturatingGAN(g, d, latent_dim=2, pack=2, num_classes=3)


def test_the_config_switch_packs_the_toy_critic(tmp_path: Path) -> None:
    from gan_zoo.training import build
    from tests.helpers import compose_train

    _, model = build(compose_train(["data=toy2d", "model.pack=4"], run_dir=tmp_path))
    assert model.pack == model.discriminator.pack == 4
    assert model.discriminator.net[0].in_features == 8  # four 2-d points side by side
