"""An ImageNet-layout image folder as splits of files, decoded by DataLoader workers (image_decode.py).

`data_root/train/<class>/*` minus a held-out val split is trained on; `data_root/val/<class>/*` is the test
set. A file that cannot be decoded is skipped with one warning naming it and counted (`skipped_files`), so one
bad JPEG does not end a multi-day run; when more than 1% of a split's files fail, the folder is the problem and
the run stops with a UserError.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from lightrecipe.errors import UserError, nearest
from lightrecipe.trainers.data import Dataset, Split, per_class_holdout, subsample
from lightrecipe.trainers.image_decode import CropPairs, EvalImages
from lightrecipe.words import counted

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
VAL_PER_CLASS = (0.1, 50)  # held out of train/ per class: 10%, at most 50 (ImageNet: 50 000 images, like its val)
FOLDER_LAYOUT = "expected data_root/train/<class>/*.jpg and data_root/val/<class>/*.jpg (ImageNet layout)"
MAX_UNREADABLE_SHARE = 0.01  # more unreadable files than this share of a split: a broken folder, not a stray file


def load_imagefolder(recipe) -> Dataset:
    """train/ (minus a held-out val split) for training, val/ as the test set; decoded lazily by workers."""
    root = Path(recipe.data_root).expanduser()
    if not root.is_dir():
        raise UserError(f"data_root '{root}' {'is not a folder' if root.exists() else 'does not exist'}; "
                        f"{FOLDER_LAYOUT}")
    classes, train_paths, train_labels = scan_classes(root / "train")
    _, test_paths, test_labels = scan_classes(root / "val", classes)
    train_labels = np.asarray(train_labels, dtype=np.int64)
    share, cap = VAL_PER_CLASS
    holdout = per_class_holdout(train_labels, lambda n: min(cap, max(int(n >= 2), math.floor(share * n + 0.5))))
    train_idx = np.setdiff1d(np.arange(len(train_labels)), holdout)
    fraction_idx = subsample(train_labels[train_idx], recipe.data_fraction, train_idx)

    def split(paths, labels, idx=None) -> FileSplit:
        labels = np.asarray(labels, dtype=np.int64)
        if idx is not None:
            paths, labels = [paths[i] for i in idx], labels[idx]
        return FileSplit(paths, torch.from_numpy(labels), len(classes), recipe.image_size, recipe.num_workers)

    memory = split(train_paths, train_labels, train_idx)
    train = memory if len(fraction_idx) == len(train_idx) else split(train_paths, train_labels, fraction_idx)
    val = split(train_paths, train_labels, holdout)
    return Dataset("imagefolder", train, val, split(test_paths, test_labels), len(classes), memory)


def scan_classes(folder: Path, classes: list[str] | None = None):
    """(class names, image paths, labels) of `folder/<class>/*`; `classes` fixes the index (train/'s order)."""
    if not folder.is_dir():
        raise UserError(f"'{folder}' {'is not a folder' if folder.exists() else 'does not exist'}; {FOLDER_LAYOUT}")
    try:
        found = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    except OSError as exc:
        raise UserError(f"cannot list '{folder}': {exc.strerror or exc}") from None
    if not found:
        raise UserError(f"'{folder}' has no class folders; {FOLDER_LAYOUT}")
    classes = found if classes is None else classes
    index = {name: i for i, name in enumerate(classes)}
    paths: list[str] = []
    labels: list[int] = []
    for name in found:
        if name not in index:
            raise UserError(f"class folder '{folder / name}' has no counterpart in train/{nearest(name, classes)}; "
                            "val/ may only hold classes that train/ has")
        files = sorted(e.path for e in os.scandir(folder / name)
                       if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise UserError(f"class folder '{folder / name}' has no images ({', '.join(IMAGE_EXTENSIONS)})")
        paths += files
        labels += [index[name]] * len(files)
    return classes, paths, labels


class FileSplit(Split):
    """A split of image files: centre views for evaluation, full-resolution crop pairs for training."""

    crops_in_loader = True

    def __init__(self, paths: list[str], labels: torch.Tensor, num_classes: int, image_size: int, num_workers: int):
        super().__init__(labels, num_classes, image_size)
        self.paths = paths
        self.num_workers = num_workers
        self._skipped: set[str] = set()

    def _batches(self, order, batch_size, device):
        yield from self._load(EvalImages(self.paths, self.image_size), order, batch_size, device)

    def training_batches(self, batch_size, *, device, generator, crop_scale, seed):
        """Two crops per image, cut by the workers at the file's resolution: uint8 (B, 2, 3, S, S).

        A batch can come out shorter than `batch_size` when it held unreadable files.
        """
        order = self.epoch_order(batch_size, shuffle=True, drop_last=True, generator=generator)
        pairs = CropPairs(self.paths, self.image_size, crop_scale, seed)
        for views, _ in self._load(pairs, order, batch_size, torch.device(device)):
            yield views

    def skipped_files(self) -> list[str]:
        return sorted(self._skipped)

    def restore_skipped(self, paths) -> None:
        mine = set(self.paths)
        self._skipped.update(p for p in paths if p in mine)

    def _load(self, dataset, order: torch.Tensor, batch_size: int, device: torch.device):
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, sampler=order.tolist(), num_workers=self.num_workers,
            pin_memory=device.type == "cuda",
        )
        for images, idx, errors in loader:
            bad = [i for i, e in enumerate(errors) if e]
            if bad:
                for i in bad:
                    self._skip(self.paths[int(idx[i])], errors[i])
                keep = torch.tensor([i for i in range(len(errors)) if not errors[i]], dtype=torch.long)
                images, idx = images[keep], idx[keep]
            if len(idx):
                yield images.to(device, non_blocking=True), self.labels[idx].to(device, non_blocking=True)

    def _skip(self, path: str, error: str) -> None:
        if path in self._skipped:
            return
        self._skipped.add(path)
        if len(self._skipped) > MAX_UNREADABLE_SHARE * len(self):
            raise UserError(
                f"{len(self._skipped)} of {counted(len(self), 'image file')} of this split cannot be read (more than "
                f"{MAX_UNREADABLE_SHARE:.0%}), e.g. {error}; every file under train/ and val/ must be an image"
            )
        warnings.warn(f"skipping unreadable image {error}", stacklevel=2)
