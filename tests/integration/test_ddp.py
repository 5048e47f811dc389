"""Two gloo processes on CPU: every variant's step equals single-process training on the
concatenated batch, parameters and buffers stay identical across ranks, and the CLI runs DDP."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import torch.multiprocessing as mp
from torch import Tensor
from torch.utils.data import DataLoader

from gan_zoo.distributed import GANDDPStrategy
from gan_zoo.models import SNGAN, WGANGP, MinimaxGAN, NonSaturatingGAN, WGANClip
from gan_zoo.nets import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from gan_zoo.penalties import gradient_penalty

pytestmark = pytest.mark.slow
VARIANTS = [MinimaxGAN, NonSaturatingGAN, WGANClip, WGANGP, SNGAN]
B, STEPS, N_CRITIC, WORLD = 8, 2, 2, 2
DATA = torch.randn(B * WORLD * STEPS * N_CRITIC, 2, generator=torch.Generator().manual_seed(0))


def _bank(rank: int, index: int, shape: tuple[int, ...], uniform: bool = False) -> Tensor:
    gen = torch.Generator().manual_seed(10_000 * rank + index)
    return torch.rand(shape, generator=gen) if uniform else torch.randn(shape, generator=gen)


class _Controlled:
    """Draws noise and GP interpolation weights from a per-rank bank instead of the RNG.

    ``ranks=(r,)`` is what rank r draws in the 2-process run; ``ranks=(0, 1)`` concatenates
    both, which is what one process training on the concatenated batch must draw.
    """

    ranks: tuple[int, ...] = (0,)

    def _noise(self, n: int, device: torch.device) -> Tensor:
        self.calls = getattr(self, "calls", 0) + 1
        per = n // len(self.ranks)
        return torch.cat([_bank(r, self.calls, (per, self.latent_dim)) for r in self.ranks])

    def discriminator_penalty(self, real: Tensor, fake: Tensor) -> Tensor:
        if not isinstance(self, WGANGP):
            return super().discriminator_penalty(real, fake)  # type: ignore[misc]
        self.eps_calls = getattr(self, "eps_calls", 0) + 1
        per = real.shape[0] // len(self.ranks)
        eps = torch.cat([_bank(r, 500 + self.eps_calls, (per,), uniform=True) for r in self.ranks])
        return self.gp_weight * gradient_penalty(self.discriminator, real, fake, epsilon=eps)


def _controlled(variant: type) -> type:
    return type(f"Controlled{variant.__name__}", (_Controlled, variant), {})


CONTROLLED = {v.__name__: _controlled(v) for v in VARIANTS}
for _cls in CONTROLLED.values():
    globals()[_cls.__name__] = _cls  # picklable by reference for the worker processes


class _Shards(pl.LightningDataModule):
    """Rank r's critic step t gets rows [t*W*B + r*B, t*W*B + (r+1)*B): no shuffling."""

    def __init__(self, ranks: tuple[int, ...]) -> None:
        super().__init__()
        self.ranks = ranks

    def train_dataloader(self) -> DataLoader:
        rows = [
            DATA[t * WORLD * B + r * B : t * WORLD * B + (r + 1) * B]
            for t in range(STEPS * N_CRITIC)
            for r in self.ranks
        ]
        return DataLoader(torch.cat(rows), batch_size=B * len(self.ranks), shuffle=False)


def _fit(variant: str, ranks: tuple[int, ...], **trainer: Any) -> pl.LightningModule:
    torch.manual_seed(0)
    model = CONTROLLED[variant](
        MLPGenerator(latent_dim=2, hidden=16, depth=2),
        MLPDiscriminator(hidden=16, depth=2),
        latent_dim=2,
        n_critic=N_CRITIC,
    )
    model.ranks = ranks
    pl.Trainer(
        accelerator="cpu",
        max_steps=STEPS,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        **trainer,
    ).fit(model, datamodule=_Shards(ranks))
    return model


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, port: int, out: str, job: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(WORLD),
        NODE_RANK="0",
        LOCAL_RANK=str(rank),
        RANK=str(rank),
    )
    if job == "variants":
        states = {}
        for name in CONTROLLED:
            strategy = GANDDPStrategy(process_group_backend="gloo")
            model = _fit(name, (rank,), devices=WORLD, strategy=strategy)
            states[name] = {k: v.clone() for k, v in model.state_dict().items()}
        torch.save(states, Path(out) / f"rank{rank}.pt")
        return
    # job == "buffers": BatchNorm in G, spectral norm in D, real RNG-driven noise and GP
    torch.manual_seed(0)
    model = SNGAN(
        DCGANGenerator(latent_dim=8, width=8),
        DCGANDiscriminator(width=8, norm="none"),
        latent_dim=8,
        n_critic=1,
    )
    images = torch.rand(64, 1, 28, 28) * 2 - 1
    pl.Trainer(
        accelerator="cpu",
        devices=WORLD,
        strategy=GANDDPStrategy(process_group_backend="gloo"),
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    ).fit(model, DataLoader(images, batch_size=8, shuffle=True))
    torch.save(model.state_dict(), Path(out) / f"rank{rank}.pt")


def _spawn(job: str, tmp_path: Path) -> list[dict[str, Any]]:
    mp.spawn(_worker, args=(_free_port(), str(tmp_path), job), nprocs=WORLD, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]


def test_every_variant_matches_single_process_on_concatenated_batch(tmp_path: Path) -> None:
    rank0, rank1 = _spawn("variants", tmp_path)
    for name in CONTROLLED:
        single = _fit(name, (0, 1), devices=1).state_dict()
        for key, value in single.items():
            assert torch.equal(rank0[name][key], rank1[name][key]), (name, key)
            torch.testing.assert_close(rank0[name][key], value, rtol=1e-6, atol=1e-6, msg=name)
        # the run did move the weights (so equality is not vacuous)
        start = _controlled_init(name)
        assert any(not torch.equal(start[k], single[k]) for k in single if "weight" in k), name


def _controlled_init(name: str) -> dict[str, Tensor]:
    torch.manual_seed(0)
    model = CONTROLLED[name](
        MLPGenerator(latent_dim=2, hidden=16, depth=2),
        MLPDiscriminator(hidden=16, depth=2),
        latent_dim=2,
        n_critic=N_CRITIC,
    )
    return model.state_dict()


def test_batchnorm_and_spectral_norm_buffers_agree_across_ranks(tmp_path: Path) -> None:
    rank0, rank1 = _spawn("buffers", tmp_path)
    buffers = [k for k in rank0 if "running_" in k or k.endswith(("_u", "_v"))]
    assert any("running_mean" in k for k in buffers) and any(k.endswith("_u") for k in buffers)
    for key, value in rank0.items():
        assert torch.equal(value, rank1[key]), key


def test_cli_trains_with_two_gloo_processes(run_cli, tmp_path: Path) -> None:
    result = run_cli(
        "train.py",
        "model=wgan_gp",
        "data=toy2d",
        "debug=fast",
        "logger=csv",
        "trainer=cpu",
        "trainer.devices=2",
        "trainer.max_steps=3",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    from gan_zoo.checkpoint import read_checkpoint

    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 3
