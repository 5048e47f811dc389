"""``python -m bench.default_job``: the levers' table, and a one-line refusal of unknown ones."""

from __future__ import annotations

import pytest
import torch

from bench import default_job


def test_prints_one_row_per_lever_against_the_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    default_job.main(["--rounds", "2", "--chunk", "1", "--warmup", "0", "--levers",
                      "baseline,channels_last,width32"])  # fmt: skip
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in rows[1:]] == [
        "| baseline",
        "| channels_last",
        "| width32",
    ]
    assert "1.000× [1.000–1.000]" in rows[1]


def test_channels_last_changes_the_layout_not_the_step() -> None:
    """Same seed, same synthetic batch: the NHWC step trains the same nets (up to rounding)."""
    (base, real), (nhwc, real_nhwc) = (
        default_job.make_loop("baseline"),
        default_job.make_loop("channels_last"),
    )
    torch.testing.assert_close(real, real_nhwc)
    weight = next(p for p in nhwc.discriminator.parameters() if p.dim() == 4)
    assert weight.is_contiguous(memory_format=torch.channels_last)
    for loop, batch in ((base, real), (nhwc, real_nhwc)):
        torch.manual_seed(1)  # the same noise
        loop.train_cycle(iter([batch]))
    pairs = zip(base.generator.parameters(), nhwc.generator.parameters(), strict=True)
    for p, q in pairs:
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_an_unknown_lever_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        default_job.main(["--levers", "baseline,fp8"])
    assert exit_.value.code == 2
    assert "valid: baseline, channels_last, width48, width32, compile" in capsys.readouterr().err
