"""Two gloo processes on CPU: every variant's step equals single-process training on the
concatenated batch, parameters and buffers stay identical across ranks, BatchNorm running
statistics are the mean of the ranks' own updates, gradients missing on one rank are reduced
without a size mismatch, and the CLI runs DDP."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn
from torch.utils.data import DataLoader

from gan_zoo.distributed import GANDDPStrategy, all_reduce_
from gan_zoo.models import SNGAN, WGANGP, MinimaxGAN, NonSaturatingGAN, WGANClip
from gan_zoo.nets import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from gan_zoo.penalties import gradient_penalty
from tests.integration.two_processes import START_METHOD

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
    """Rank r's critic step t gets rows [t*W*B + r*B, t*W*B + (r+1)*B): no shuffling. A
    training batch holds the N_CRITIC critic batches of one generator step, each the
    concatenation over ``ranks`` of their rows."""

    def __init__(self, ranks: tuple[int, ...]) -> None:
        super().__init__()
        self.ranks = ranks

    def train_dataloader(self) -> DataLoader:
        rows = [
            DATA[t * WORLD * B + r * B : t * WORLD * B + (r + 1) * B]
            for t in range(STEPS * N_CRITIC)
            for r in self.ranks
        ]
        batch = B * len(self.ranks) * N_CRITIC
        return DataLoader(torch.cat(rows), batch_size=batch, shuffle=False)


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
    if job == "reduce":
        _reduce_job(rank, Path(out))
        return
    # "buffers"/"sync_batchnorm": BatchNorm in G, spectral norm in D, RNG-driven noise and data
    torch.manual_seed(0)
    model = SNGAN(
        DCGANGenerator(latent_dim=8, width=8),
        DCGANDiscriminator(width=8, norm="none"),
        latent_dim=8,
        n_critic=1,
    )
    local: dict[str, Tensor] = {}  # G's running statistics after its last forward, before sync
    for name, layer in model.generator.named_modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.register_forward_hook(_record_running_stats(local, f"generator.{name}"))
    images = torch.rand(64, 1, 28, 28) * 2 - 1
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=WORLD,
        strategy=GANDDPStrategy(process_group_backend="gloo"),
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        sync_batchnorm=job == "sync_batchnorm",
    )
    try:
        trainer.fit(model, DataLoader(images, batch_size=8, shuffle=True))  # n_critic=1
        error = ""
    except ValueError as err:
        error = str(err)
    result = {"state": model.state_dict(), "local": local, "error": error}
    result["steps"] = trainer.global_step
    torch.save(result, Path(out) / f"rank{rank}.pt")


def _record_running_stats(store: dict[str, Tensor], prefix: str) -> Any:
    def hook(layer: nn.Module, inputs: Any, output: Any) -> None:
        store[f"{prefix}.running_mean"] = layer.running_mean.clone()
        store[f"{prefix}.running_var"] = layer.running_var.clone()

    return hook


class _Branchy(nn.Module):
    """``used`` on every rank, ``branch`` only where asked, ``unused`` nowhere; a BatchNorm, a
    spectral-norm layer and a plain float buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.used, self.branch, self.unused = nn.Linear(3, 3), nn.Linear(3, 3), nn.Linear(3, 3)
        self.norm = nn.BatchNorm1d(3)
        self.sn = nn.utils.parametrizations.spectral_norm(nn.Linear(3, 3))
        self.register_buffer("per_rank", torch.zeros(2))

    def forward(self, x: Tensor, take_branch: bool) -> Tensor:
        h = self.sn(self.norm(self.used(x)))
        return self.branch(h) if take_branch else h


def _reduce_job(rank: int, out: Path) -> None:
    """all_reduce_ by hand: rank 0 alone takes the branch; its own buffers are saved before."""
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=timedelta(seconds=60))
    torch.manual_seed(0)
    net = _Branchy()
    net.per_rank.fill_(rank)
    net(_bank(rank, 0, (6, 3)), take_branch=rank == 0).square().sum().backward()
    with torch.no_grad():  # u is equal on every rank by construction; make it differ here
        net.sn.parametrizations.weight[0]._u.add_(rank)
    grads = {k: None if p.grad is None else p.grad.clone() for k, p in net.named_parameters()}
    before = {"grads": grads, "state": {k: v.clone() for k, v in net.state_dict().items()}}
    all_reduce_(net)
    grads = {k: None if p.grad is None else p.grad.clone() for k, p in net.named_parameters()}
    after = {"grads": grads, "state": net.state_dict()}
    torch.save({"before": before, "after": after}, out / f"rank{rank}.pt")
    dist.destroy_process_group()


def _spawn(job: str, tmp_path: Path) -> list[dict[str, Any]]:
    args = (_free_port(), str(tmp_path), job)
    mp.spawn(_worker, args=args, nprocs=WORLD, join=True, start_method=START_METHOD)
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


@pytest.fixture(scope="module")
def buffers_run(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """3 steps of SN-GAN (BatchNorm in G, spectral norm in D) on 2 ranks, shuffled data."""
    return _spawn("buffers", tmp_path_factory.mktemp("buffers"))


def test_batchnorm_and_spectral_norm_buffers_agree_across_ranks(
    buffers_run: list[dict[str, Any]],
) -> None:
    rank0, rank1 = (run["state"] for run in buffers_run)
    buffers = [k for k in rank0 if "running_" in k or k.endswith(("_u", "_v"))]
    assert any("running_mean" in k for k in buffers) and any(k.endswith("_u") for k in buffers)
    for key, value in rank0.items():
        assert torch.equal(value, rank1[key]), key


def test_batchnorm_running_stats_are_the_mean_of_each_ranks_own_update(
    buffers_run: list[dict[str, Any]],
) -> None:
    local0, local1 = (run["local"] for run in buffers_run)
    assert len(local0) >= 4
    for key, own0 in local0.items():
        assert not torch.allclose(own0, local1[key]), key  # the ranks saw different batches
        for run in buffers_run:
            torch.testing.assert_close(run["state"][key], (own0 + local1[key]) / 2, msg=key)


def test_missing_gradients_and_buffers_in_all_reduce(tmp_path: Path) -> None:
    rank0, rank1 = _spawn("reduce", tmp_path)
    g0, g1 = rank0["before"]["grads"], rank1["before"]["grads"]
    assert g0["branch.weight"] is not None and g1["branch.weight"] is None
    for run in (rank0, rank1):
        grads = run["after"]["grads"]
        for key in ("used.weight", "norm.bias", "sn.parametrizations.weight.original"):
            torch.testing.assert_close(grads[key], (g0[key] + g1[key]) / 2, msg=key)
        for key in ("branch.weight", "branch.bias"):  # rank 1 contributes zeros
            torch.testing.assert_close(grads[key], g0[key] / 2, msg=key)
        assert grads["unused.weight"] is None and grads["unused.bias"] is None
    s0, s1 = rank0["before"]["state"], rank1["before"]["state"]
    for key in ("norm.running_mean", "norm.running_var"):
        assert not torch.allclose(s0[key], s1[key])
        for run in (rank0, rank1):
            torch.testing.assert_close(run["after"]["state"][key], (s0[key] + s1[key]) / 2)
    # every other buffer is left as each rank had it
    for key in ("per_rank", "sn.parametrizations.weight.0._u", "norm.num_batches_tracked"):
        assert torch.equal(rank0["after"]["state"][key], s0[key]), key
        assert torch.equal(rank1["after"]["state"][key], s1[key]), key
    assert rank1["after"]["state"]["per_rank"].tolist() == [1.0, 1.0]


def test_sync_batchnorm_needs_gpu_inputs(tmp_path: Path) -> None:
    """The module docstring's claim about trainer.sync_batchnorm=true on CPU."""
    for run in _spawn("sync_batchnorm", tmp_path):
        # Lightning converted G's BatchNorm2d (and reverts it after fit); its first forward fails
        assert run["error"].startswith("SyncBatchNorm expected input tensor to be on GPU")
        assert run["steps"] == 0


# The loop options under DDP: PacGAN packing with augmentation, and a conditional critic (the
# labels split with the batch) with EMA. Packing and classes exclude each other.
OPTIONS = {
    "plain": [],
    "packed_augmented": ["model.pack=2", "augment=instance_noise"],
    "conditional_ema": ["model.num_classes=8", "model.ema_decay=0.9"],
}


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_cli_trains_with_two_gloo_processes(option: str, run_cli, tmp_path: Path) -> None:
    result = run_cli(
        "train.py",
        "model=wgan_gp",
        "data=toy2d",
        "debug=fast",
        "logger=csv",
        "trainer=cpu",
        "trainer.devices=2",
        "trainer.max_steps=3",
        *OPTIONS[option],
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    from gan_zoo.checkpointing import read_checkpoint

    checkpoint = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 3
    model = checkpoint["gan_zoo_config"]["model"]
    assert (model["pack"], model["num_classes"]) == (
        (2, 0)
        if option == "packed_augmented"
        else (1, 8)
        if option == "conditional_ema"
        else (1, 0)
    )
