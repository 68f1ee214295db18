"""Datasets: the bundled digits (default), CIFAR-10/100 and an ImageNet-layout folder, as uint8 splits.

Every split is stratified and deterministic: it depends on a fixed seed (`SPLIT_SEED`), never on
`recipe.seed`, so every trial of a sweep trains and is scored on the same images. A split hands out uint8
batches (B, 3, S, S) on the training device; augmentation and normalisation happen there, batched.

In-memory datasets (digits, CIFAR) move their whole uint8 tensor to the device once and index batches there,
so loading costs almost nothing next to a training step; their views are cropped on the device. An image folder
is decoded by DataLoader workers, which also cut the two training views from the full-resolution image.
CIFAR files are read by `data_formats.py`, image folders by `image_folder.py`.

`data_fraction` thins only what is trained on (`Dataset.train`); the kNN memory bank and the linear probe's
training set are the whole train split (`Dataset.memory`), so trials at different fractions are scored alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from lightrecipe.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision / timm ImageNet statistics, RGB in [0, 1]
IMAGENET_STD = (0.229, 0.224, 0.225)
SPLIT_SEED = 20230103  # fixed: splits must not move with recipe.seed, or trials would be scored on different images
DIGITS_FRACTIONS = (0.6, 0.2, 0.2)  # train / val / test share of the 1797 digits
DIGITS_FILE = "digits.csv.gz"  # in scikit-learn's sklearn/datasets/data, the table load_digits() parses
CIFAR_VAL_FRACTION = 0.1  # 5000 of CIFAR-10's 50000 training images, a common held-out size
RESIZE_CHUNK = 1024  # images resized per interpolate call: bounds the float32 working copy


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, S, S) on any device -> float32 normalised with ImageNet mean/std, on the same device."""
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 images, got {images.dtype}")
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1) * 255
    return (images.float() - mean) / std


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
                f"batch_size ({batch_size}) exceeds the {len(self)} images of this split, so no full batch "
                "exists; lower batch_size or raise data_fraction"
            )
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        end = len(self) - len(self) % batch_size if drop_last else len(self)
        return order[:end]

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
        """Files a resumed run skipped before (image folders only: not warned about again)."""


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

    def _splits(self) -> tuple[Split, ...]:
        return (self.train, self.memory, self.val, self.test)


def load_dataset(recipe) -> Dataset:
    """The recipe's dataset at `recipe.image_size`, with `recipe.data_fraction` of the train split."""
    from lightrecipe.trainers import data_formats

    if recipe.dataset == "digits":
        images, labels = load_digits_arrays()
        train_idx, val_idx, test_idx = digits_partition(labels)
        images = resize_uint8(torch.from_numpy(images), recipe.image_size)
        labels = torch.from_numpy(labels)
        fraction_idx = subsample(labels[train_idx].numpy(), recipe.data_fraction, train_idx)
        return _tensor_dataset("digits", images, labels, 10, fraction_idx, val_idx, test_idx, train_idx)
    if recipe.dataset in ("cifar10", "cifar100"):
        num_classes = 10 if recipe.dataset == "cifar10" else 100
        (train_x, train_y), (test_x, test_y) = data_formats.read_cifar(recipe.data_root, num_classes)
        train_idx, holdout = cifar_partition(train_y)
        fraction_idx = subsample(train_y[train_idx], recipe.data_fraction, train_idx)
        images = resize_uint8(torch.from_numpy(np.concatenate([train_x, test_x])), recipe.image_size)
        labels = torch.from_numpy(np.concatenate([train_y, test_y]).astype(np.int64))
        test_idx = np.arange(len(train_y), len(labels))
        return _tensor_dataset(recipe.dataset, images, labels, num_classes, fraction_idx, holdout, test_idx, train_idx)
    if recipe.dataset == "imagefolder":
        from lightrecipe.trainers.image_folder import load_imagefolder

        return load_imagefolder(recipe)
    raise UserError(f"recipe field 'dataset' is {recipe.dataset!r}; valid: digits, cifar10, cifar100, imagefolder")


def count_train_images(recipe) -> int:
    """`len(load_dataset(recipe).train)`, the number `Recipe.check_train_size` and `fit.py` take, without resizing
    a pixel: digits read their labels, CIFAR reads its files, an image folder lists its files."""
    from lightrecipe.trainers import data_formats

    if recipe.dataset == "digits":
        _, labels = load_digits_arrays()
        train_idx, _, _ = digits_partition(labels)
        return len(subsample(labels[train_idx], recipe.data_fraction, train_idx))
    if recipe.dataset in ("cifar10", "cifar100"):
        (_, train_y), _ = data_formats.read_cifar(recipe.data_root, 10 if recipe.dataset == "cifar10" else 100)
        train_idx, _ = cifar_partition(train_y)
        return len(subsample(train_y[train_idx], recipe.data_fraction, train_idx))
    return len(load_dataset(recipe).train)  # an image folder is decoded lazily: loading it lists its files


# --- digits ------------------------------------------------------------------------------------
def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits as uint8 (1797, 1, 8, 8) in 0..255 (from 0..16) and int64 labels.

    Read from the file scikit-learn ships (what `sklearn.datasets.load_digits` parses) without importing
    scikit-learn: that import costs about 2 s, paid again by every trial worker of a sweep.
    """
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise UserError("dataset 'digits' is scikit-learn's bundled digits: install scikit-learn")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / DIGITS_FILE
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",")  # 1797 rows: 64 pixels in 0..16, then the label
    images = np.rint(table[:, :-1].reshape(-1, 1, 8, 8) * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return images, table[:, -1].astype(np.int64)


def digits_partition(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train / val / test indices (60/20/20), fixed by SPLIT_SEED."""
    n = len(labels)
    n_train = int(DIGITS_FRACTIONS[0] * n)
    n_val = round(DIGITS_FRACTIONS[1] * n)
    test = stratified_holdout(labels, n - n_train - n_val)
    rest = np.setdiff1d(np.arange(n), test)
    val = rest[stratified_holdout(labels[rest], n_val)]
    train = np.setdiff1d(rest, val)
    return train, val, test


def cifar_partition(train_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) positions in CIFAR's training batches: a fixed stratified CIFAR_VAL_FRACTION is val."""
    holdout = stratified_holdout(train_y, round(CIFAR_VAL_FRACTION * len(train_y)))
    return np.setdiff1d(np.arange(len(train_y)), holdout), holdout


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


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, 3, size, size): bilinear (antialiased when shrinking), grey -> 3 channels."""
    n, c, h, w = images.shape
    if (h, w) != (size, size):
        out = torch.empty((n, c, size, size), dtype=torch.uint8)
        for start in range(0, n, RESIZE_CHUNK):
            chunk = images[start:start + RESIZE_CHUNK].float()
            chunk = F.interpolate(chunk, size=(size, size), mode="bilinear", align_corners=False,
                                  antialias=size < max(h, w))
            out[start:start + RESIZE_CHUNK] = chunk.round_().clamp_(0, 255).to(torch.uint8)
        images = out
    return images.expand(n, 3, size, size).contiguous() if c == 1 else images.contiguous()


def _tensor_dataset(name: str, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                    train: Sequence[int], val: Sequence[int], test: Sequence[int], memory: Sequence[int]) -> Dataset:
    """Splits of one image tensor by positions; `memory` (the whole train split) shares `train` when equal."""
    def split(p):
        return TensorSplit(images[torch.as_tensor(p)], labels[torch.as_tensor(p)], num_classes)

    train_split = split(train)
    memory_split = train_split if len(memory) == len(train) else split(memory)
    return Dataset(name, train_split, split(val), split(test), num_classes, memory_split)


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Dataset", "Split", "TensorSplit", "count_train_images", "load_dataset",
           "normalize"]
