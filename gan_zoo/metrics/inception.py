"""torch-fidelity's InceptionV3 (the TF FID/IS graph ported to PyTorch), loaded safely and offline.

Heusel et al. 2017 (FID) and Salimans et al. 2016 (IS) both score images with the 2015 TensorFlow
InceptionV3. torch-fidelity's ``FeatureExtractorInceptionV3`` reproduces that graph, including its
TF1-style bilinear resize to 299x299 without antialiasing, so its numbers are comparable with
published ones. gan_zoo always goes through that class; this module only decides which weights
file it reads, and downloads the official one with a timeout so an offline machine fails fast.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import torch
from torch import nn
from torch_fidelity.feature_extractor_inceptionv3 import (
    URL_INCEPTION_V3,
    FeatureExtractorInceptionV3,
)

# The name torch-fidelity registers this extractor under; part of every protocol and cache key.
EXTRACTOR_NAME = "inception-v3-compat"
FID_FEATURES = "2048"  # pool3 features (Heusel et al. 2017)
IS_FEATURES = "logits_unbiased"  # logits without the fc bias, as torch-fidelity's IS uses
RESIZE = "tf1x-bilinear-299"  # interpolate_bilinear_2d_like_tensorflow1x, no antialias
# torch.hub names files <stem>-<first 8 hex of sha256>.pth; the download is checked against it.
WEIGHTS_FILENAME = Path(URL_INCEPTION_V3).name
WEIGHTS_SHA256_PREFIX = WEIGHTS_FILENAME.rsplit("-", 1)[-1].split(".")[0]
# A mirror of the official file can be named with this environment variable.
URL_ENV = "GAN_ZOO_INCEPTION_URL"
DOWNLOAD_TIMEOUT_S = 15.0


# How to point the Python API at a file; CLIs name their own keys (InceptionWeightsError.with_fix).
API_FIX = "pass inception_weights=PATH"


class InceptionWeightsError(RuntimeError):
    """The InceptionV3 weights are missing, unreadable or unsafe; the message is one line.

    ``problem`` says what is wrong. When ``where`` is set (where the official file belongs), the
    message goes on: put the file there, or ``fix``. ``fix`` defaults to the Python API's
    argument; a command-line entry point swaps in its own keys and off switch with
    :meth:`with_fix`, so the hint names what the user can actually type.

    >>> str(InceptionWeightsError("no weights", Path("/w.pth")).with_fix("set x=PATH"))
    'no weights; put the official file (https://...) at /w.pth, or set x=PATH'
    """

    def __init__(self, problem: str, where: Path | None = None, fix: str = API_FIX) -> None:
        self.problem, self.where, self.fix = problem, where, fix
        hint = f"; put the official file ({URL_INCEPTION_V3}) at {where}, or {fix}" if where else ""
        super().__init__(problem + hint)

    def with_fix(self, fix: str) -> InceptionWeightsError:
        """The same error, ending with ``fix`` as the way out."""
        return InceptionWeightsError(self.problem, self.where, fix)


def default_weights_path() -> Path:
    """Where torch.hub (and so torch-fidelity) keeps the official weights file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILENAME


def download_weights(url: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Fetch ``url`` to ``dest`` atomically; every connect and read gives up after ``timeout`` s.

    ``torch.hub`` opens URLs without a timeout, so a black-holed network can stall it for
    minutes; this never waits longer than ``timeout`` for any single network operation.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
        if not digest.hexdigest().startswith(WEIGHTS_SHA256_PREFIX):
            raise OSError(f"sha256 {digest.hexdigest()[:8]} != {WEIGHTS_SHA256_PREFIX}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def resolve_weights(
    path: str | os.PathLike[str] | None, timeout: float = DOWNLOAD_TIMEOUT_S
) -> Path:
    """The weights file to load: ``path`` if given, else the official file, downloaded once.

    Raises :class:`InceptionWeightsError` (one line: where to put the file, or what else to do)
    when ``path`` does not exist or the download fails.
    """
    if path is not None:
        given = Path(path).expanduser()
        if not given.is_file():
            raise InceptionWeightsError(
                f"inception_weights={str(path)!r} is not a file; expected a torch-fidelity "
                f"InceptionV3 state dict ({WEIGHTS_FILENAME}), "
                f"or null to use {default_weights_path()}"
            )
        return given
    cached = default_weights_path()
    if cached.is_file():
        return cached
    url = os.environ.get(URL_ENV, URL_INCEPTION_V3)
    try:
        return download_weights(url, cached, timeout)
    except (OSError, ValueError) as err:  # URLError, timeouts and refusals are OSErrors
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InceptionWeightsError(
            f"no InceptionV3 weights at {cached} and downloading {url} failed ({reason})", cached
        ) from None


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def load_extractor(path: Path, features: list[str]) -> FeatureExtractorInceptionV3:
    """torch-fidelity's extractor with the weights at ``path``, in eval mode, on the CPU.

    torch-fidelity reads the file with ``weights_only=False``; it is first opened with the safe
    loader here, so a file carrying pickled code is refused instead of executed.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InceptionWeightsError(
            f"InceptionV3 weights {path} are corrupt or unsafe ({reason})", path
        ) from None
    if not isinstance(state, dict) or "fc.weight" not in state:
        raise InceptionWeightsError(
            f"InceptionV3 weights {path} are not a torch-fidelity InceptionV3 state dict", path
        )
    try:
        extractor = FeatureExtractorInceptionV3(
            EXTRACTOR_NAME, features, feature_extractor_weights_path=str(path)
        )
    except RuntimeError as err:  # load_state_dict: missing keys or wrong shapes
        first = str(err).strip().splitlines()[0]
        raise InceptionWeightsError(f"InceptionV3 weights {path} do not fit: {first}") from None
    return extractor.eval()


class _Unloaded(FeatureExtractorInceptionV3):
    """The same architecture, left with PyTorch's default initialization (no weights read)."""

    def load_state_dict(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        return None


def write_random_weights(path: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write a seeded random-weight state dict for torch-fidelity's InceptionV3 to ``path``.

    For offline tests and benchmarks only: numbers computed with it are not FID or IS, but every
    computation (resize, network, statistics) is the real one, and timing does not depend on the
    weight values. Convolutions get He initialization, BatchNorm statistics are calibrated on
    smooth random images so activations stay O(1) through the 94 layers, and the classifier is
    scaled so the logits spread enough for a non-trivial Inception Score.
    """
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.pt"
        torch.save({}, empty)
        net = _Unloaded(EXTRACTOR_NAME, [FID_FEATURES], feature_extractor_weights_path=str(empty))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
                module.momentum = None  # cumulative average: running stats = calibration stats
        coarse = torch.rand(3, 3, 6, 6) * 255  # smooth images: upsampled low-resolution noise
        smooth = nn.functional.interpolate(coarse, size=(48, 48), mode="bilinear")
        calibration = torch.cat([smooth, torch.rand(3, 3, 48, 48) * 255]).round().to(torch.uint8)
        net.train()
        with torch.no_grad():
            net(calibration)
            net.eval()
            (features,) = net(calibration)  # (6, 2048)
        # Logits along the mean feature would be shared by every image and swamp the rest.
        mean = features.mean(0)
        weight = torch.randn(net.fc.weight.shape) / features.std(0).norm()
        weight -= torch.outer(weight @ mean, mean) / mean.dot(mean)
        net.fc.weight.data.copy_(3.0 * weight)
        nn.init.normal_(net.fc.bias, std=0.1)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path
