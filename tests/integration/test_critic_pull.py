"""The critic-pull experiment: fresh shipped critics against a fixed generator on grid25."""

from __future__ import annotations

import csv
import functools
import math
from pathlib import Path

import pytest
import torch

from gan_zoo.data.toy import MIXTURES
from gan_zoo.experiments import common, critic_pull
from gan_zoo.models import WGANGP, WGANClip
from gan_zoo.nets import MLPDiscriminator


def test_quick_run_writes_a_curve_per_critic_built_as_train_py_builds_it(tmp_path: Path) -> None:
    rows = critic_pull.main(
        ["--quick", "--out", str(tmp_path), "--critics", "wgan_clip", "wgan_gp"]
    )
    with open(tmp_path / "critic_pull.csv") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == list(critic_pull.COLUMNS)
        written = list(reader)
    assert [(r["critic"], r["step"]) for r in written] == [
        ("wgan_clip", "10"), ("wgan_clip", "20"), ("wgan_gp", "10"), ("wgan_gp", "20")
    ]  # fmt: skip
    assert all(
        -1 <= float(r["cos_mean"]) <= 1 and 0 <= float(r["share_towards"]) <= 1 for r in written
    )
    assert all(math.isfinite(float(r["dual"])) for r in written)
    assert [r["critic"] for r in rows] == ["wgan_clip"] * 2 + ["wgan_gp"] * 2
    assert (tmp_path / "critic_pull.png").stat().st_size > 10_000


def test_the_critics_are_built_as_train_py_builds_them_from_the_toy_configs() -> None:
    clipped, batch = critic_pull.shipped_critic("wgan_clip")  # configs/tuned/toy2d_wgan_clip
    assert isinstance(clipped, WGANClip) and clipped.clip_value == 0.01 and batch == 128
    optimizer = clipped.discriminator_optimizer
    assert isinstance(optimizer, functools.partial) and optimizer.keywords["lr"] == 2e-4
    penalized, _ = critic_pull.shipped_critic("wgan_gp")
    assert isinstance(penalized, WGANGP) and penalized.gp_weight == 1.0
    common.train_critic(
        clipped, lambda n: torch.randn(n, 2), lambda n: torch.randn(n, 2) + 2, 3, 16
    )  # the variant's own hook clips after each step
    assert max(p.abs().max().item() for p in clipped.discriminator.parameters()) <= 0.01


class Radial(torch.nn.Module):
    """D(x) = -sign * ||x - m||² around one mode m: its gradient points at m (sign 1) or away."""

    def __init__(self, mode: torch.Tensor, sign: float) -> None:
        super().__init__()
        self.mode, self.sign = mode, sign

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.sign * ((x - self.mode) ** 2).sum(1)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_pull_is_plus_or_minus_one_for_a_critic_pointing_at_or_away_from_the_mode(
    sign: float,
) -> None:
    modes = MIXTURES["grid25"][0]
    centre = modes[12]  # (0, 0)
    probes = centre + torch.tensor([[0.5, 0.2], [-0.3, 0.4], [0.1, -0.6]])  # nearest mode: it
    model = WGANGP(torch.nn.Identity(), MLPDiscriminator(in_dim=2), latent_dim=2)
    model.discriminator = Radial(centre, sign)
    got = critic_pull.pull(model, probes, modes)
    assert got == pytest.approx({"cos_mean": sign, "share_towards": float(sign > 0)})


def test_bad_step_counts_are_refused() -> None:
    with pytest.raises(SystemExit):
        critic_pull.main(["--steps", "5", "--every", "10"])


def test_an_unknown_critic_is_refused_in_one_line_naming_the_valid_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        critic_pull.main(["--quick", "--critics", "nope"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--critics: invalid choice: 'nope'" in error and "wgan_clip" in error


def test_a_generator_with_nothing_off_mode_exits_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modes = MIXTURES["grid25"][0]
    on_modes = lambda *_: lambda n: modes[torch.arange(n) % len(modes)]  # noqa: E731
    monkeypatch.setattr(common, "fixed_generator", on_modes)
    with pytest.raises(SystemExit, match=r"^critic_pull: every generator sample lies within 3 std"):
        critic_pull.main(["--quick", "--out", str(tmp_path), "--critics", "wgan_gp"])
