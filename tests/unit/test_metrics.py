"""FID/IS building blocks without InceptionV3: conversion, statistics, formulas, sharding, weights.

Formulas are checked against independent references (scipy's ``sqrtm``, numpy's ``cov``,
torch-fidelity's own functions) and closed forms.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from torch_fidelity.metric_fid import fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric

from gan_zoo.callbacks import FidelityCallback
from gan_zoo.errors import ConfigValueError
from gan_zoo.evaluation import _load_metric
from gan_zoo.metrics import (
    FeatureStatistics,
    distributed,
    frechet_distance,
    inception_score,
    to_uint8_rgb,
)
from gan_zoo.metrics.distributed import shard, shard_batches
from gan_zoo.metrics.inception import (
    URL_ENV,
    InceptionWeightsError,
    download_weights,
    load_extractor,
    resolve_weights,
)
from gan_zoo.metrics.protocol import NOISE_CHUNK, add_fake_images, fake_noise, fid_name, is_name


# ---------------------------------------------------------------------- image conversion
def test_float_to_uint8_rounds_and_clamps_never_wraps() -> None:
    x = torch.tensor([-1.0009, -1.0, -0.9961, -0.0001, 0.0, 0.99, 1.0, 1.0009])
    out = to_uint8_rgb(x.view(1, 1, 1, -1))[0, 0, 0].tolist()
    # round((x + 1) * 127.5), clamped: 1.0009 -> 255 (a wrap-around would give 0 or 1).
    assert out == [0, 0, 0, 127, 128, 254, 255, 255]


def test_uint8_passes_through_and_gray_is_repeated_to_rgb() -> None:
    gray = torch.randint(0, 256, (2, 1, 5, 7), dtype=torch.uint8)
    rgb = to_uint8_rgb(gray)
    assert rgb.shape == (2, 3, 5, 7) and rgb.dtype == torch.uint8
    assert all(torch.equal(rgb[:, c], gray[:, 0]) for c in range(3))
    colour = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    assert torch.equal(to_uint8_rgb(colour), colour)


@pytest.mark.parametrize(
    ("images", "named"),
    [
        (torch.rand(2, 3, 4, 4) * 255, "[0"),  # float pixels in [0, 255]
        (torch.full((1, 3, 2, 2), -1.01), "-1.01"),  # outside [-1, 1] beyond tolerance
        (torch.full((1, 3, 2, 2), float("nan")), "nan"),
        (torch.zeros(1, 3, 2, 2, dtype=torch.int32), "int32"),
        (torch.zeros(1, 2, 4, 4), "(1, 2, 4, 4)"),  # two channels
        (torch.zeros(3, 4, 4), "(3, 4, 4)"),  # no batch dimension
    ],
)
def test_bad_images_are_a_one_line_error_naming_value_and_valid(images, named) -> None:
    with pytest.raises(ConfigValueError) as err:
        to_uint8_rgb(images)
    message = str(err.value)
    assert "\n" not in message and named in message.lower() and "expected" in message


# ---------------------------------------------------------------------- FID
def test_running_sums_give_numpy_mean_and_covariance() -> None:
    features = torch.randn(50, 6, dtype=torch.float64) * 3 + 1
    stats = FeatureStatistics.empty(6)
    for batch in features.split(7):  # uneven batches merge by summing
        stats.add(batch.float())
    assert stats.count == 50
    reference = features.float().double().numpy()
    np.testing.assert_allclose(stats.mean().numpy(), reference.mean(0), rtol=1e-12)
    np.testing.assert_allclose(
        stats.covariance().numpy(), np.cov(reference, rowvar=False), rtol=1e-10
    )


def _random_gaussian(dim: int, rank: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    factor = rng.standard_normal((dim, rank))
    return rng.standard_normal(dim), factor @ factor.T / rank


def test_frechet_distance_matches_sqrtm_formula_and_torch_fidelity() -> None:
    (mu1, s1), (mu2, s2) = _random_gaussian(64, 200, 0), _random_gaussian(64, 200, 1)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real  # the classic TTUR formula
    classic = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2 - 2 * covmean)
    ours = frechet_distance(mu1, s1, mu2, s2)
    theirs = fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, False)
    assert ours == pytest.approx(classic, rel=1e-8)
    assert ours == pytest.approx(theirs["frechet_inception_distance"], rel=1e-8)


def test_collapsed_generator_gives_finite_real_fid() -> None:
    mu1, s1 = _random_gaussian(256, 20, 2)  # rank 20 of 256, as with few real samples
    mu2 = np.full(256, 0.5)
    # Every fake identical: zero covariance, so FID = |mu1 - mu2|^2 + tr(S1) exactly.
    fid = frechet_distance(mu1, s1, mu2, np.zeros((256, 256)))
    assert np.isfinite(fid) and isinstance(fid, float)
    assert fid == pytest.approx((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1), rel=1e-9)
    # Rank-1 fakes against a rank-20 reference: still finite, real and non-negative.
    direction = np.random.default_rng(3).standard_normal(256)
    fid_rank1 = frechet_distance(mu1, s1, mu2, np.outer(direction, direction))
    assert np.isfinite(fid_rank1) and fid_rank1 >= 0


def test_identical_gaussians_are_at_distance_zero() -> None:
    mu, sigma = _random_gaussian(128, 30, 4)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


# ---------------------------------------------------------------------- IS
@pytest.mark.parametrize(("n", "splits"), [(50, 10), (37, 3), (12, 1)])
def test_inception_score_equals_torch_fidelity(n: int, splits: int) -> None:
    logits = torch.randn(n, 1008, generator=torch.Generator().manual_seed(n)) * 4
    expected = isc_features_to_metric(logits, splits=splits)
    mean, std = inception_score(logits, splits=splits)
    assert mean == pytest.approx(expected["inception_score_mean"], rel=1e-12)
    assert std == pytest.approx(expected["inception_score_std"], rel=1e-9, abs=1e-12)


def test_inception_score_closed_forms() -> None:
    # Confident predictions of distinct classes: p(y) uniform over the split, IS = split size.
    confident = torch.full((20, 1008), -40.0)  # p(y|x) ~ 1 on one class, 4e-18 elsewhere
    confident[torch.arange(20), torch.arange(20)] = 0.0
    mean, std = inception_score(confident, splits=4)
    assert mean == pytest.approx(5.0, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)
    # The same prediction for every image: no information, IS = 1.
    mean, _ = inception_score(torch.randn(1, 1008).expand(30, -1), splits=3)
    assert mean == pytest.approx(1.0, abs=1e-12)


def test_inception_score_refuses_empty_splits() -> None:
    with pytest.raises(ConfigValueError, match="splits=10 is invalid"):
        inception_score(torch.randn(5, 1008), splits=10)


# ---------------------------------------------------------------------- sharding and noise
@pytest.mark.parametrize("n", [0, 1, 7, 64, 1000])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shards_are_contiguous_balanced_and_cover_the_range(n: int, world: int) -> None:
    blocks = [shard(n, rank, world) for rank in range(world)]
    assert [i for block in blocks for i in block] == list(range(n))
    assert max(map(len, blocks)) - min(map(len, blocks)) <= 1


@pytest.mark.parametrize("world", [1, 2, 3, 4])
@pytest.mark.parametrize(("n", "batch"), [(7, 2), (10, 3), (129, 64), (2 * NOISE_CHUNK + 301, 250)])
def test_fakes_are_split_by_count_and_union_to_the_one_process_fakes(
    n: int, batch: int, world: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each rank's real ``add_fake_images``, as rank ``r`` of ``world`` (no processes started)."""
    dim, seed = 3, 7

    class Recorder:  # stands in for FidelityMetrics: keeps what a rank would score
        def __init__(self) -> None:
            self.batches: list[torch.Tensor] = []

        def update(self, images: torch.Tensor, real: bool) -> None:
            assert not real
            self.batches.append(images)

    per_rank = []
    for rank in range(world):
        monkeypatch.setattr(distributed, "rank_and_world", lambda r=rank: (r, world))
        recorder = Recorder()
        add_fake_images(recorder, lambda z: z * 2, dim, n, seed, batch)  # type: ignore[arg-type]
        assert all(1 <= len(b) <= batch for b in recorder.batches)
        per_rank.append(torch.cat(recorder.batches) if recorder.batches else torch.zeros(0, dim))
    sizes = [len(fakes) for fakes in per_rank]
    # By count, not whole batches: every rank works and shares differ by at most one.
    assert sum(sizes) == n and max(sizes) - min(sizes) <= 1 and min(sizes) == n // world
    # A row's noise depends on (seed, row) only: the union is exactly the 1-process fakes.
    assert torch.equal(torch.cat(per_rank), fake_noise(seed, 0, n, dim) * 2)
    if world > 1:
        assert not torch.equal(per_rank[0][:1], per_rank[1][:1])  # ranks draw different fakes


def test_the_example_of_idle_ranks_is_gone() -> None:
    # 128 fakes at batch 64 on 4 ranks: 32 each (whole batches would give 64, 64, 0, 0).
    shares = [shard_batches(128, 64, rank, 4) for rank in range(4)]
    assert shares == [[range(0, 32)], [range(32, 64)], [range(64, 96)], [range(96, 128)]]
    assert shard_batches(5, 2, 0, 2) == [range(0, 2), range(2, 3)]
    assert shard_batches(1, 4, 1, 2) == []  # fewer samples than ranks: some ranks get none


def test_noise_rows_do_not_depend_on_how_they_are_drawn() -> None:
    n, dim = 2 * NOISE_CHUNK + 300, 8
    whole = fake_noise(7, 0, n, dim)
    pieces = [
        fake_noise(7, a, b, dim) for a, b in ((0, 5), (5, NOISE_CHUNK + 1), (NOISE_CHUNK + 1, n))
    ]
    assert torch.equal(torch.cat(pieces), whole)
    assert not torch.equal(fake_noise(8, 0, 10, dim), whole[:10])  # the seed matters


def test_metric_names_state_the_protocol() -> None:
    assert fid_name(10_000, 10_000) == "fid_10k_train"
    assert fid_name(10_000, 5_000) == "fid_10k_train_5k"
    assert fid_name(128, 128) == "fid_128_train"
    assert is_name(50_000) == "is_50k"


# ---------------------------------------------------------------------- weights
@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A torch hub cache without the weights, and a download URL that refuses at once."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(URL_ENV, f"http://127.0.0.1:{port}/weights.pth")
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_failed_download_is_one_line_saying_where_and_what_to_pass(empty_hub: Path) -> None:
    with pytest.raises(InceptionWeightsError) as err:
        resolve_weights(None)
    message = str(err.value)
    assert "\n" not in message
    assert str(empty_hub / "weights-inception-2015-12-05-6726825d.pth") in message
    # The Python API's own argument; no command-line keys, which mean nothing to a library user.
    assert message.endswith(", or pass inception_weights=PATH") and "callbacks" not in message
    assert not list(empty_hub.glob("*"))  # no partial file left behind


def test_each_command_line_names_its_own_switch(empty_hub: Path) -> None:
    with pytest.raises(InceptionWeightsError) as train_err:
        FidelityCallback(inception_weights=None)._load()
    settings = {"fid": True, "isc": True, "inception_weights": None, "isc_splits": 10}
    with pytest.raises(InceptionWeightsError) as evaluate_err:
        _load_metric({**settings, "batch_size": 4})
    where = str(empty_hub / "weights-inception-2015-12-05-6726825d.pth")
    for err in (train_err, evaluate_err):
        assert "\n" not in str(err.value) and where in str(err.value)
    assert str(train_err.value).endswith(
        ", or set metrics.inception_weights=PATH, or turn the metrics off with "
        "callbacks.fidelity=null"
    )
    # evaluate.py's metrics all need InceptionV3: no off switch to suggest, and no callbacks.
    assert str(evaluate_err.value).endswith(
        ", or set metrics.inception_weights=PATH (evaluate.py needs InceptionV3 for FID and IS)"
    )


def test_missing_local_weights_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InceptionWeightsError, match="is not a file") as err:
        resolve_weights(tmp_path / "nope.pth")
    assert "\n" not in str(err.value)


@pytest.mark.timeout(60)
def test_download_gives_up_on_a_silent_server(tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()  # accepts connections but never answers
    url = f"http://127.0.0.1:{server.getsockname()[1]}/weights.pth"
    try:
        with pytest.raises(OSError):  # socket.timeout is an OSError
            download_weights(url, tmp_path / "w.pth", timeout=0.5)
    finally:
        server.close()
    assert not list(tmp_path.glob("*"))


def test_download_with_the_wrong_hash_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    payload = b"not the inception weights" * 1000
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve_once() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)
            header = f"HTTP/1.0 200 OK\r\nContent-Length: {len(payload)}\r\n\r\n"
            conn.sendall(header.encode() + payload)

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/weights.pth"
    try:
        with pytest.raises(OSError, match="sha256"):
            download_weights(url, tmp_path / "w.pth", timeout=10)
    finally:
        thread.join(timeout=10)
        server.close()
    assert not list(tmp_path.glob("*"))


def test_corrupt_or_unsafe_weights_are_refused_in_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00\x01 definitely not a state dict")
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"fc.weight": torch.zeros(1), "code": time.sleep}, unsafe)  # pickles a function
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(3)}, wrong)
    for path, reason in (
        (garbage, "corrupt or unsafe"),
        (unsafe, "corrupt or unsafe"),
        (wrong, "do not fit"),
    ):
        with pytest.raises(InceptionWeightsError, match=reason) as err:
            load_extractor(path, ["2048"])
        assert "\n" not in str(err.value) and str(path) in str(err.value)
