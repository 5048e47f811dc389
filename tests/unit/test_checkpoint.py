"""Checkpoints of a plain ``lightning.Trainer`` (no gan_zoo config inside) load back, weights
only, through ``gan_zoo.load_model`` with the nets given or Lightning's
``load_from_checkpoint``: weights, EMA generator and replay buffer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch

import gan_zoo
from gan_zoo.checkpointing import CheckpointError
from gan_zoo.data import Toy2DDataModule
from gan_zoo.models import WGANGP
from gan_zoo.nets import MLPDiscriminator, MLPGenerator
from tests.unit.test_safe_loading import Payload

STATE = {"latent_dim": 2, "ema_decay": 0.9, "replay_size": 16}


def nets(hidden: int = 8) -> tuple[MLPGenerator, MLPDiscriminator]:
    """Fresh (untrained) nets of the trained architecture."""
    return MLPGenerator(latent_dim=2, hidden=hidden, depth=1), MLPDiscriminator(
        hidden=hidden, depth=1
    )


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> tuple[WGANGP, Path]:
    """A WGAN-GP trained 3 generator steps (n_critic=5) by a plain Trainer, and its checkpoint."""
    torch.manual_seed(0)
    model = WGANGP(*nets(), **STATE)
    root = tmp_path_factory.mktemp("plain")
    trainer = pl.Trainer(
        default_root_dir=root,
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    # 3 training batches of 5 critic batches of 16: 3 generator steps in one epoch.
    trainer.fit(model, datamodule=Toy2DDataModule(num_samples=3 * 5 * 16, batch_size=16))
    assert trainer.global_step == 3
    (path,) = (root / "checkpoints").glob("*.ckpt")
    return model, path


def assert_same_model(loaded: WGANGP, trained: WGANGP) -> None:
    assert type(loaded) is WGANGP and not loaded.training
    weights, expected = loaded.state_dict(), trained.state_dict()
    assert weights.keys() == expected.keys() and any(
        k.startswith("generator_ema.") for k in weights
    )
    for key, value in expected.items():
        assert torch.equal(weights[key], value), key
    # The EMA generator differs from the raw one after 3 updates with decay 0.9: it was restored.
    assert not torch.equal(weights["generator_ema.net.0.weight"], weights["generator.net.0.weight"])
    assert loaded.replay is not None and trained.replay is not None
    assert loaded.replay.count == trained.replay.count == 16
    assert torch.equal(loaded.replay.samples, trained.replay.samples)  # type: ignore[arg-type]
    z = torch.randn(5, 2)
    assert torch.equal(loaded.sample(5, z=z), trained.sample(5, z=z))


def test_the_checkpoint_has_no_gan_zoo_config(plain: tuple[WGANGP, Path]) -> None:
    checkpoint = torch.load(plain[1], weights_only=True)
    assert "gan_zoo_config" not in checkpoint and "hyper_parameters" not in checkpoint


def test_load_model_without_a_config_says_what_to_do_in_one_line(
    plain: tuple[WGANGP, Path],
) -> None:
    with pytest.raises(CheckpointError) as info:
        gan_zoo.load_model(plain[1])
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"checkpoint {plain[1]} has no")
    assert "load_model(path, model_class=" in message and ".load_from_checkpoint(" in message


def test_load_model_with_the_nets_given(plain: tuple[WGANGP, Path]) -> None:
    generator, discriminator = nets()
    loaded = gan_zoo.load_model(
        plain[1],
        model_class=WGANGP,
        generator=generator,
        discriminator=discriminator,
        ema_decay=0.9,
        replay_size=16,
    )  # latent_dim comes from generator.latent_dim
    assert isinstance(loaded, WGANGP)
    assert_same_model(loaded, plain[0])


def test_lightning_load_from_checkpoint_weights_only(plain: tuple[WGANGP, Path]) -> None:
    """The documented alternative: Lightning 2.6's own loader, also weights-only."""
    generator, discriminator = nets()
    loaded = WGANGP.load_from_checkpoint(
        plain[1], generator=generator, discriminator=discriminator, weights_only=True, **STATE
    )
    loaded.eval()
    assert_same_model(loaded, plain[0])


@pytest.mark.parametrize(
    ("hidden", "kwargs", "message"),
    [
        (None, {"model_class": WGANGP}, "missing generator, discriminator"),
        (None, {"latent_dim": 2}, "missing model_class, generator, discriminator"),
        (8, {"model_class": torch.nn.Linear, "ema_decay": 0.9}, "is not a gan_zoo.GAN subclass"),
        (8, {"model_class": WGANGP}, "holds an EMA generator (generator_ema.*): pass ema_decay="),
        (4, {"model_class": WGANGP, "ema_decay": 0.9}, "does not fit the nets and arguments"),
    ],
)
def test_wrong_or_partial_arguments_are_one_line_errors(
    hidden: int | None, kwargs: dict[str, Any], message: str, plain: tuple[WGANGP, Path]
) -> None:
    if hidden is not None:  # nets given, of this width
        kwargs = dict(zip(("generator", "discriminator"), nets(hidden))) | kwargs
    with pytest.raises(CheckpointError) as info:
        gan_zoo.load_model(plain[1], **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_a_pickled_payload_is_refused_with_the_nets_given_too(
    plain: tuple[WGANGP, Path], tmp_path: Path
) -> None:
    marker = tmp_path / "payload_ran"
    checkpoint = torch.load(plain[1], weights_only=True)
    checkpoint["innocent_looking_entry"] = Payload(marker)
    path = tmp_path / "malicious.ckpt"
    torch.save(checkpoint, path)
    generator, discriminator = nets()
    with pytest.raises(CheckpointError, match="refused"):
        gan_zoo.load_model(
            path, model_class=WGANGP, generator=generator, discriminator=discriminator, **STATE
        )
    assert not marker.exists()
