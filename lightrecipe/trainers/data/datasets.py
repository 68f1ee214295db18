"""Datasets: the bundled digits (default), CIFAR-10/100, an ImageNet-layout folder and an unlabeled tree scored on
a labeled folder (unlabeled.py), as uint8 splits; the two folder kinds may be prepared caches (cache.py).

Every split is stratified and deterministic (splits.py). A split hands out uint8 batches (B, 3, S, S) on the
training device; augmentation and normalisation happen there, batched.

In-memory datasets (digits, CIFAR) move their whole uint8 tensor to the device once and index batches there,
so loading costs almost nothing next to a training step; their views are cropped on the device. An image folder
is decoded by DataLoader workers, which also cut the two training views from the full-resolution image.
CIFAR files are read by `formats.py`, image folders by `image_folder.py`; splits and their cuts live in
`splits.py`, normalisation in `pixels.py`.

`data_fraction` thins only what is trained on (`Dataset.train`); the kNN memory bank and the linear probe's
training set are the whole train split (`Dataset.memory`), so trials at different fractions are scored alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from lightrecipe.errors import UserError
from lightrecipe.trainers.data.pixels import resize_uint8
from lightrecipe.trainers.data.splits import Dataset, TensorSplit, stratified_holdout, subsample

DIGITS_FRACTIONS = (0.6, 0.2, 0.2)  # train / val / test share of the 1797 digits
DIGITS_FILE = "digits.csv.gz"  # in scikit-learn's sklearn/datasets/data, the table load_digits() parses
CIFAR_VAL_FRACTION = 0.1  # 5000 of CIFAR-10's 50000 training images, a common held-out size


def load_dataset(recipe) -> Dataset:
    """The recipe's dataset at `recipe.image_size`, with `recipe.data_fraction` of the train split."""
    from lightrecipe.trainers.data import formats

    if recipe.dataset == "digits":
        images, labels = load_digits_arrays()
        train_idx, val_idx, test_idx = digits_partition(labels)
        images = resize_uint8(torch.from_numpy(images), recipe.image_size)
        labels = torch.from_numpy(labels)
        fraction_idx = subsample(labels[train_idx].numpy(), recipe.data_fraction, train_idx)
        return _tensor_dataset("digits", images, labels, 10, fraction_idx, val_idx, test_idx, train_idx)
    if recipe.dataset in ("cifar10", "cifar100"):
        num_classes = 10 if recipe.dataset == "cifar10" else 100
        (train_x, train_y), (test_x, test_y) = formats.read_cifar(recipe.data_root, num_classes)
        train_idx, holdout = cifar_partition(train_y)
        fraction_idx = subsample(train_y[train_idx], recipe.data_fraction, train_idx)
        images = resize_uint8(torch.from_numpy(np.concatenate([train_x, test_x])), recipe.image_size)
        labels = torch.from_numpy(np.concatenate([train_y, test_y]).astype(np.int64))
        test_idx = np.arange(len(train_y), len(labels))
        return _tensor_dataset(recipe.dataset, images, labels, num_classes, fraction_idx, holdout, test_idx, train_idx)
    if recipe.dataset == "imagefolder":
        from lightrecipe.trainers.data.image_folder import load_imagefolder

        return load_imagefolder(recipe)
    if recipe.dataset == "unlabeled":
        from lightrecipe.trainers.data.unlabeled import load_unlabeled

        return load_unlabeled(recipe)
    raise UserError(f"recipe field 'dataset' is {recipe.dataset!r}; valid: digits, cifar10, cifar100, imagefolder, "
                    "unlabeled")


def count_train_images(recipe) -> int:
    """`len(load_dataset(recipe).train)`, the number `Recipe.check_train_size` and `fit.py` take, without resizing
    a pixel: digits read their labels, CIFAR reads its files; a folder, a tree or a cache lists its files."""
    from lightrecipe.trainers.data import formats

    if recipe.dataset == "digits":
        _, labels = load_digits_arrays()
        train_idx, _, _ = digits_partition(labels)
        return len(subsample(labels[train_idx], recipe.data_fraction, train_idx))
    if recipe.dataset in ("cifar10", "cifar100"):
        (_, train_y), _ = formats.read_cifar(recipe.data_root, 10 if recipe.dataset == "cifar10" else 100)
        train_idx, _ = cifar_partition(train_y)
        return len(subsample(train_y[train_idx], recipe.data_fraction, train_idx))
    return len(load_dataset(recipe).train)  # decoded lazily: loading lists the files


def cifar_partition(train_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) positions in CIFAR's training batches: a fixed stratified CIFAR_VAL_FRACTION is val."""
    holdout = stratified_holdout(train_y, round(CIFAR_VAL_FRACTION * len(train_y)))
    return np.setdiff1d(np.arange(len(train_y)), holdout), holdout


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


def _tensor_dataset(name: str, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                    train: Sequence[int], val: Sequence[int], test: Sequence[int], memory: Sequence[int]) -> Dataset:
    """Splits of one image tensor by positions; `memory` (the whole train split) shares `train` when equal."""
    def split(p):
        return TensorSplit(images[torch.as_tensor(p)], labels[torch.as_tensor(p)], num_classes)

    train_split = split(train)
    memory_split = train_split if len(memory) == len(train) else split(memory)
    return Dataset(name, train_split, split(val), split(test), num_classes, memory_split)
