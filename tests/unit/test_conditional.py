"""Class-conditional GANs: the nets' conditioning against hand-computed values, labels from
every labelled DataModule, sampling by label, and the loop's AC-GAN term."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor, nn

from gan_zoo import losses
from gan_zoo.data import MNISTSubsetDataModule, Toy1DDataModule, Toy2DDataModule
from gan_zoo.data.image_folder import ImageFolderDataModule
from gan_zoo.errors import ConfigValueError
from gan_zoo.models import SNGAN, WGANGP, NonSaturatingGAN
from gan_zoo.nets import DCGANGenerator, MLPDiscriminator, MLPGenerator
from gan_zoo.nets.conditioning import ClassConditioning, ConditionalBatchNorm2d
from gan_zoo.nets.resnet import ResNetGenerator


def test_conditional_batch_norm_starts_as_batch_norm_and_learns_per_class() -> None:
    torch.manual_seed(0)
    layer, plain = ConditionalBatchNorm2d(4, num_classes=3), nn.BatchNorm2d(4, affine=False)
    x, labels = torch.randn(6, 4, 5, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    assert torch.allclose(layer(x, labels), plain(x))  # gains 1, biases 0
    with torch.no_grad():
        layer.gain.weight[1] = 2.0
        layer.bias.weight[2] = -1.0
    out, normed = layer(x, labels), plain(x)
    assert torch.allclose(out[1], 2.0 * normed[1]) and torch.allclose(out[2], normed[2] - 1.0)
    assert torch.allclose(out[0], normed[0])


def test_the_projection_term_is_the_class_embedding_dotted_with_the_features() -> None:
    """Miyato & Koyama 2018, Eq. 3: D(x, y) = psi(phi(x)) + y^T V phi(x)."""
    head = ClassConditioning(features=3, num_classes=2, conditioning="projection")
    with torch.no_grad():
        head.embed.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, -1.0]]))
    features, scores = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]), torch.tensor([0.5, 0.5])
    out = head(features, scores, torch.tensor([0, 1]))
    assert out.tolist() == pytest.approx([0.5 + 1.0, 0.5 + (4.0 - 3.0)])


def test_the_auxiliary_classifier_returns_logits_and_its_loss_is_the_cross_entropy() -> None:
    d = MLPDiscriminator(hidden=8, num_classes=4, conditioning="ac")
    scores, logits = d(torch.randn(5, 2), torch.arange(5) % 4)
    assert scores.shape == (5,) and logits.shape == (5, 4)
    labels = torch.tensor([0, 3])
    by_hand = -torch.log_softmax(torch.zeros(2, 4), 1)[torch.arange(2), labels].mean()
    assert losses.auxiliary_classifier_loss(torch.zeros(2, 4), labels).item() == pytest.approx(
        by_hand.item()
    )


@pytest.mark.parametrize(
    "generator",
    [
        MLPGenerator(latent_dim=4, hidden=8, num_classes=3),
        DCGANGenerator(latent_dim=4, width=8, num_classes=3),
        ResNetGenerator(latent_dim=4, width=8, num_classes=3),
    ],
)
def test_conditional_generators_depend_on_the_label(generator: nn.Module) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        for module in generator.modules():  # make the per-class gains differ from 1
            if isinstance(module, ConditionalBatchNorm2d):
                module.gain.weight.normal_(1.0, 0.5)
    z = torch.randn(2, 4).repeat(2, 1)  # the same noise twice
    out = generator.eval()(z, torch.tensor([0, 0, 1, 2]))
    assert not torch.allclose(out[0], out[2]) and not torch.allclose(out[1], out[3])
    with pytest.raises(ValueError, match="class-conditional: pass labels"):
        generator(z)


def _cgan(cls: type = NonSaturatingGAN, conditioning: str = "projection", **kwargs) -> nn.Module:
    g = MLPGenerator(latent_dim=2, hidden=16, num_classes=8)
    d = MLPDiscriminator(hidden=16, norm="none", num_classes=8, conditioning=conditioning)
    return cls(g, d, latent_dim=2, num_classes=8, **kwargs)


def test_sample_by_label() -> None:
    model = _cgan()
    z = torch.randn(6, 2)
    threes = model.sample(6, z=z, labels=3)
    assert torch.equal(threes, model.sample(6, z=z, labels=[3] * 6))
    assert not torch.equal(threes, model.sample(6, z=z, labels=4))
    assert model.sample(10).shape == (10, 2)  # classes drawn uniformly
    with pytest.raises(ConfigValueError, match=r"labels=9 is invalid: expected one class or 6"):
        model.sample(6, labels=9)
    with pytest.raises(ConfigValueError, match="labels=3 is invalid: expected None"):
        NonSaturatingGAN(MLPGenerator(), MLPDiscriminator(), latent_dim=2).sample(2, labels=3)


def test_nets_and_model_must_agree_on_the_classes() -> None:
    with pytest.raises(ConfigValueError, match=r"^num_classes=8 is invalid: expected 0, the gen"):
        NonSaturatingGAN(MLPGenerator(), MLPDiscriminator(num_classes=8), 2, num_classes=8)


def _labelled_fit(model: nn.Module, datamodule: pl.LightningDataModule, steps: int = 2) -> None:
    pl.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    ).fit(model, datamodule=datamodule)


class _Seen(NonSaturatingGAN):
    def critic_batches(self, batch):  # type: ignore[no-untyped-def]
        self.batch = batch
        return super().critic_batches(batch)


def test_a_toy_mixture_labels_each_sample_with_its_mode() -> None:
    data = Toy2DDataModule(name="ring8", num_samples=512, batch_size=32)
    model = _Seen(
        MLPGenerator(latent_dim=2, hidden=8, num_classes=8),
        MLPDiscriminator(hidden=8, num_classes=8),
        latent_dim=2,
        num_classes=8,
    )
    _labelled_fit(model, data, steps=1)
    x, y = model.batch
    assert x.shape == (32, 2) and y.shape == (32,) and y.dtype == torch.long
    assert data.modes is not None
    assert torch.equal(torch.cdist(x, data.modes).argmin(dim=1), y)  # the nearest mode


def test_mnist_batches_carry_the_digits_and_an_unconditional_model_gets_none() -> None:
    data = MNISTSubsetDataModule(batch_size=16)
    data.setup("fit")
    assert data.num_classes == 10
    model = _Seen(
        MLPGenerator(latent_dim=2, hidden=8, num_classes=10, out_dim=784),
        _Flat(MLPDiscriminator(in_dim=784, hidden=8, num_classes=10)),
        latent_dim=2,
        num_classes=10,
    )
    model.generator = _Images(model.generator)
    _labelled_fit(model, data, steps=1)
    x, y = model.batch
    assert x.shape == (16, 1, 28, 28) and y.shape == (16,)
    dataset = data.dataset
    index = [
        int((dataset.images.float() / 127.5 - 1.0 - x[i]).abs().flatten(1).sum(1).argmin())
        for i in range(3)
    ]
    assert [int(dataset.labels[i]) for i in index] == y[:3].tolist()  # each image's own digit
    plain = _Seen(MLPGenerator(out_dim=784), _Flat(MLPDiscriminator(in_dim=784)), latent_dim=2)
    plain.generator = _Images(plain.generator)
    _labelled_fit(plain, MNISTSubsetDataModule(batch_size=16), steps=1)
    assert isinstance(plain.batch, Tensor)  # unconditional: bare images, as before


class _Flat(nn.Module):
    """Flattens images for an MLP critic (keeps the test's nets tiny)."""

    input_shape = (1, 28, 28)

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.num_classes, self.pack = inner, inner.num_classes, 1

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.inner(x.flatten(1), labels) if labels is not None else self.inner(x.flatten(1))


class _Images(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.latent_dim, self.num_classes = inner, inner.latent_dim, inner.num_classes

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        out = self.inner(z, labels) if labels is not None else self.inner(z)
        return out.view(-1, 1, 28, 28)


def test_data_without_labels_refuses_a_conditional_model_in_one_line() -> None:
    data = Toy2DDataModule(name="swiss_roll", num_samples=256, batch_size=32)
    with pytest.raises(
        ConfigValueError, match=r"model.num_classes=8 is invalid: expected 0: Toy2D"
    ):
        _labelled_fit(_cgan(), data)
    ring = Toy1DDataModule(num_samples=256, batch_size=32)  # two modes, not eight
    with pytest.raises(ConfigValueError, match=r"model.num_classes=8 is invalid: expected 2, the"):
        _labelled_fit(_cgan(), ring)


def test_image_folder_classes_are_its_sub_folders(tmp_path: Path) -> None:
    from PIL import Image

    for cls, colour in (("cats", (255, 0, 0)), ("dogs", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.new("RGB", (30, 30), colour).save(tmp_path / cls / f"{i}.png")
    data = ImageFolderDataModule(root=str(tmp_path), image_size=28, batch_size=2)
    data.setup("fit")
    assert data.num_classes == 2 and data.dataset.labels.tolist() == [0, 0, 1, 1]
    Image.new("RGB", (30, 30)).save(tmp_path / "loose.png")  # an image outside the classes
    flat = ImageFolderDataModule(root=str(tmp_path), image_size=28, batch_size=2)
    flat.setup("fit")
    assert flat.num_classes == 0


class _Terms(WGANGP):
    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        self.plain = super().discriminator_loss(real_scores, fake_scores)
        return self.plain


@pytest.mark.parametrize("cls", [NonSaturatingGAN, _Terms, SNGAN])
@pytest.mark.parametrize("conditioning", ["projection", "ac"])
def test_every_variant_trains_conditionally_with_either_head(cls: type, conditioning: str) -> None:
    """The same hooks give conditional NS-GAN, WGAN-GP and SN-GAN, projection or AC."""
    torch.manual_seed(0)
    model = _cgan(cls, conditioning, n_critic=2, replay_size=32)
    _labelled_fit(model, Toy2DDataModule(name="ring8", num_samples=512, batch_size=32), steps=3)
    assert model.trainer.global_step == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert model.replay is not None and model.replay.labels is not None  # labels kept with fakes
    assert int(model.replay.labels[: model.replay.count].max()) < 8
