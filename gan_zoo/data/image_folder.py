"""Any folder of images (searched recursively, no class sub-folders needed), square-cropped.

When every image sits in a sub-folder of the root, each sub-folder is a class (as torchvision's
``ImageFolder``): a class-conditional model gets the sub-folder's index as the label.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import torch
from lightning.pytorch.utilities import rank_zero_warn
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms

from gan_zoo.data.base import GANDataModule, uint8_to_float
from gan_zoo.errors import ConfigValueError, check
from gan_zoo.validation import PositiveInt, StrictBool, validated

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp")
# PIL mode per channel count; converting RGBA/LA/P images to these drops alpha.
CHANNEL_MODES = {1: "L", 3: "RGB"}


def find_images(root: Path) -> list[Path]:
    """Files under ``root`` (recursively) with an image extension, any case, in sorted order.

    Sorted so every rank and every run indexes the same file list.
    """
    return sorted(
        p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )


def image_problem(path: Path, mode: str = "RGB") -> str | None:
    """Why ``path`` cannot be used as an image of PIL ``mode``, or None when it decodes fully.

    ``verify()`` checks headers and chunk checksums but decodes no pixels, so a JPEG cut short
    passes it and only fails when ``__getitem__`` decodes it mid-training. So the file is opened
    again and converted to ``mode``, which decodes every pixel, as training will.
    """
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            image.convert(mode)  # loads (decodes) the whole image
    # PIL plugins signal damaged data with many exception types (OSError, SyntaxError,
    # struct.error, IndexError, ...), depending on the format and the damage.
    except Exception as err:
        return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return None


def scan_images(files: list[Path], mode: str) -> dict[Path, str]:
    """The files of ``files`` that do not decode, mapped to the reason; decoded in threads.

    PIL releases the GIL while decoding, so a few threads cut the scan of a large folder.
    """
    workers = min(8, os.cpu_count() or 1, max(1, len(files)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        problems = pool.map(lambda p: image_problem(p, mode), files)
        return {p: reason for p, reason in zip(files, problems, strict=True) if reason}


class ImageFileDataset(Dataset[torch.Tensor]):
    """Image files decoded on access into float32 ``(channels, image_size, image_size)`` in [-1, 1].

    The shorter side is resized to ``image_size`` and the centre cropped to a square.
    """

    def __init__(
        self, files: list[Path], image_size: int, channels: int, labels: torch.Tensor | None = None
    ) -> None:
        self.files, self.labels = files, labels
        self.mode = CHANNEL_MODES[channels]
        self.transform = transforms.Compose(
            [
                transforms.Resize(image_size, antialias=True),
                transforms.CenterCrop(image_size),
                transforms.PILToTensor(),  # uint8 (C, H, W)
            ]
        )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        path = self.files[index]
        try:
            with Image.open(path) as image:
                pixels = self.transform(image.convert(self.mode))
        except OSError as err:
            # The scan decoded it; a file changed or removed since then still names itself.
            raise OSError(f"could not decode image {path}: {err}") from err
        return uint8_to_float(pixels)


def folder_labels(root: Path, files: list[Path]) -> torch.Tensor | None:
    """``(N,)`` classes: the index of each file's top-level sub-folder among the sorted
    sub-folder names; None when some image sits directly in ``root`` (no classes then)."""
    tops = [p.relative_to(root).parts for p in files]
    if any(len(parts) < 2 for parts in tops):
        return None
    names = sorted({parts[0] for parts in tops})
    index = {name: i for i, name in enumerate(names)}
    return torch.tensor([index[parts[0]] for parts in tops], dtype=torch.long)


class ImageFolderDataModule(GANDataModule):
    """Every image file under ``root`` as float32 ``(B, channels, image_size, image_size)``.

    Extensions png/jpg/jpeg/bmp/webp/gif in any case are used; other files are ignored. At setup
    every image is decoded once (:func:`image_problem`), so truncated or corrupt files are found
    before training, not mid-epoch: they are skipped and counted in ``num_skipped`` (one warning
    on rank zero), or with ``strict=True`` the first one is a one-line error naming it.

    Args:
        root: directory searched recursively for images.
        image_size: side of the square output; shorter side resized, then centre-cropped.
        channels: 1 (grayscale) or 3 (RGB); alpha is dropped.
        batch_size: samples per batch.
        num_workers: DataLoader worker processes (decoding is CPU-bound; use several on GPU).
        strict: raise at setup if any image file is unreadable instead of skipping it.
        subset: train on this many images, a fixed random choice (``GANDataModule``).
    """

    @validated
    def __init__(
        self,
        root: str,
        image_size: PositiveInt = 64,
        channels: Literal[1, 3] = 3,
        batch_size: int = 64,
        num_workers: int = 0,
        subset: int | None = None,
        strict: StrictBool = False,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, subset=subset)
        check(Path(root).is_dir(), "root", root, "an existing directory of images")
        self.root = Path(root)
        self.image_size = image_size
        self.channels = channels
        self.strict = strict
        self.sample_shape = (channels, image_size, image_size)
        self.files: list[Path] = []
        self.num_skipped = 0

    def build_dataset(self) -> Dataset[torch.Tensor]:
        candidates = find_images(self.root)
        check(
            len(candidates) > 0,
            "root",
            str(self.root),
            f"a directory containing images, but no image files were found "
            f"(accepted extensions: {', '.join(IMAGE_EXTENSIONS)}, any case, searched recursively)",
        )
        unreadable = scan_images(candidates, CHANNEL_MODES[self.channels])
        if unreadable:
            first, reason = next(iter(unreadable.items()))
            more = f" and {len(unreadable) - 1} more" if len(unreadable) > 1 else ""
            if self.strict:
                raise ConfigValueError(
                    "root",
                    str(self.root),
                    f"only readable images (strict=true): {first} is unreadable ({reason}){more}; "
                    "data.strict=false skips unreadable files",
                )
            rank_zero_warn(
                f"ImageFolderDataModule skipped {len(unreadable)} unreadable image file(s) of "
                f"{len(candidates)} under {self.root}, e.g. {first} ({reason}); data.strict=true "
                "makes this an error"
            )
        self.files = [p for p in candidates if p not in unreadable]
        self.num_skipped = len(unreadable)
        check(
            len(self.files) > 0,
            "root",
            str(self.root),
            f"a directory containing readable images, but all {len(candidates)} failed to open",
        )
        return ImageFileDataset(
            self.files, self.image_size, self.channels, folder_labels(self.root, self.files)
        )
