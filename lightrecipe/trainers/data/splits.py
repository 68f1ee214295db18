"""Splits: a labelled set of uint8 images that hands out batches on the training device, and the fixed,
stratified ways a dataset is cut into train / val / test.

Every cut depends on a fixed seed (`SPLIT_SEED`), never on `recipe.seed`, so every trial of a sweep trains and is
scored on the same images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from lightrecipe.errors import UserError
from lightrecipe.words import counted

SPLIT_SEED = 20230103  # fixed: splits must not move with recipe.seed, or trials would be scored on different images


class Split:
    """One split (train/val/test): `len(split)`, `split.labels` (int64, CPU), `split.num_classes`."""

    crops_in_loader = False  # True: `training_batches` yields two views the loader cropped, (B, 2, 3, S, S)

    def __init__(self, labels: torch.Tensor, num_classes: int, image_size: int):
        self.labels = labels.to(torch.int64).cpu()
        self.num_classes = num_classes
        self.image_size = image_size

    def __len__(self) -> int:
        return int(self.labels.numel())

    def batches(self, batch_size: int, *, shuffle: bool, drop_last: bool, device: torch.device,
                generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yields (uint8 images (B, 3, S, S), int64 labels (B,)), both on `device`.

        `shuffle=True` draws the order from `generator` (a CPU generator), so an epoch is reproducible.
        """
        order = self.epoch_order(batch_size, shuffle=shuffle, drop_last=drop_last, generator=generator)
        yield from self._batches(order, batch_size, torch.device(device))

    def epoch_order(self, batch_size: int, *, shuffle: bool, drop_last: bool,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Positions of one epoch in batch order (shuffled from `generator`, trimmed to full batches)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if drop_last and len(self) < batch_size:
            raise UserError(
                f"batch_size ({batch_size}) exceeds the {counted(len(self), 'image')} of this split, so no full batch "
                "exists; lower batch_size or raise data_fraction"
            )
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        end = len(self) - len(self) % batch_size if drop_last else len(self)
        return order[:end]

    def evaluation_batches(self, batch_size: int, *, device: torch.device
                           ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Every image in order, none dropped: (uint8 images, labels, readable (B,) bool), on `device`.

        An unreadable file keeps its row (a blank image, `readable` False), so row n of the epoch order stays
        row n: data-parallel ranks gather their shares by position and drop the unreadable rows afterwards."""
        for images, labels in self.batches(batch_size, shuffle=False, drop_last=False, device=device):
            yield images, labels, torch.ones(len(labels), dtype=torch.bool, device=labels.device)

    def _batches(self, order: torch.Tensor, batch_size: int, device: torch.device):
        raise NotImplementedError

    def training_batches(self, batch_size: int, *, device: torch.device, generator: torch.Generator,
                         crop_scale: tuple[float, float], seed: int) -> Iterator[torch.Tensor]:
        """One epoch of shuffled full uint8 batches for contrastive training: (B, 3, S, S) images to crop on
        the device, or (B, 2, 3, S, S) view pairs when `crops_in_loader` (crops drawn from `seed`)."""
        for images, _ in self.batches(batch_size, shuffle=True, drop_last=True, device=device, generator=generator):
            yield images

    def skipped_files(self) -> list[str]:
        """Files skipped as unreadable so far (image folders only)."""
        return []

    def restore_skipped(self, paths: Sequence[str]) -> None:
        """Files a resumed run or another rank skipped before (image folders only: not warned about again)."""

    def check_unreadable(self) -> None:
        """UserError when too many of this split's files were skipped (image folders only)."""


class TensorSplit(Split):
    """A split held in memory as one uint8 tensor (N, 3, S, S); copied to each device once, then indexed there."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int):
        super().__init__(labels, num_classes, images.shape[-1])
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[0] != len(self):
            raise ValueError(f"expected uint8 images (N, 3, S, S) matching {len(self)} labels, got "
                             f"{images.dtype} {tuple(images.shape)}")
        self.images = images.contiguous()
        self._on_device: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) on `device`, copied there on first use and cached."""
        if device.type == "cuda" and device.index is None:  # "cuda" and "cuda:0" share one copy
            device = torch.device("cuda", torch.cuda.current_device())
        key = str(device)
        if key not in self._on_device:
            self._on_device[key] = (self.images.to(device), self.labels.to(device))
        return self._on_device[key]

    def _batches(self, order, batch_size, device):
        images, labels = self.on(device)
        order = order.to(device)
        for start in range(0, order.numel(), batch_size):
            idx = order[start:start + batch_size]
            yield images[idx], labels[idx]


@dataclass
class Dataset:
    """`train` is what is trained on (thinned by data_fraction); `memory` is the whole train split, the kNN
    memory bank and the linear probe's training set (`train` itself when data_fraction is 1)."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    memory: Split | None = None

    def __post_init__(self) -> None:
        if self.memory is None:
            self.memory = self.train

    def skipped_files(self) -> list[str]:
        """Every file skipped as unreadable so far, over all splits."""
        return sorted({p for split in self._splits() for p in split.skipped_files()})

    def restore_skipped(self, paths: Sequence[str]) -> None:
        for split in self._splits():
            split.restore_skipped(paths)

    def check_unreadable(self) -> None:
        for split in self._splits():
            split.check_unreadable()

    def _splits(self) -> tuple[Split, ...]:
        return (self.train, self.memory, self.val, self.test)


# --- split helpers -----------------------------------------------------------------------------
def class_orders(labels: np.ndarray, seed: int = SPLIT_SEED) -> dict[int, np.ndarray]:
    """For each class, its positions in `labels` in a fixed random order."""
    rng = np.random.default_rng(seed)
    return {int(c): rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)}


def stratified_holdout(labels: np.ndarray, size: int, seed: int = SPLIT_SEED) -> np.ndarray:
    """Sorted positions of exactly `size` items, each class represented in proportion (largest remainder)."""
    orders = class_orders(labels, seed)
    counts = np.array([len(o) for o in orders.values()])
    quota = size * counts / max(len(labels), 1)
    take = np.floor(quota).astype(int)
    by_remainder = np.argsort(-(quota - take), kind="stable")
    take[by_remainder[: size - int(take.sum())]] += 1
    picked = [order[:t] for order, t in zip(orders.values(), take)]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def per_class_holdout(labels: np.ndarray, count: Callable[[int], int], seed: int = SPLIT_SEED) -> np.ndarray:
    """Sorted positions of `count(n_c)` items of each class c (n_c = the class's size)."""
    picked = [order[: count(len(order))] for order in class_orders(labels, seed).values()]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def subsample(labels: np.ndarray, fraction: float, positions: np.ndarray) -> np.ndarray:
    """`positions` thinned to `fraction` per class (at least one image per class).

    Nested: each class keeps a prefix of one fixed order, so a smaller fraction is a subset of a larger one.
    """
    if fraction >= 1.0:
        return positions
    keep = per_class_holdout(labels, lambda n: max(1, math.floor(fraction * n + 0.5)), SPLIT_SEED + 1)
    return positions[keep]
