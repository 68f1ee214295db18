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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lightrecipe.errors import UserError, nearest
from lightrecipe.trainers.data.image_decode import CropPairs, EvalImages
from lightrecipe.trainers.data.splits import Dataset, Split, per_class_holdout, subsample
from lightrecipe.words import counted

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
VAL_PER_CLASS = (0.1, 50)  # held out of train/ per class: 10%, at most 50 (ImageNet: 50 000 images, like its val)
MAX_UNREADABLE_SHARE = 0.01  # more unreadable files than this share of a split: a broken folder, not a stray file


def load_imagefolder(recipe) -> Dataset:
    """train/ (minus a held-out val split) for training, val/ as the test set; decoded lazily by workers."""
    train, test, classes = labeled_parts(recipe.data_root, "data_root", recipe)
    holdout, train_idx = held_out_val(train.labels)
    fraction_idx = subsample(train.labels[train_idx], recipe.data_fraction, train_idx)
    memory = train.split(train_idx)
    trained = memory if len(fraction_idx) == len(train_idx) else train.split(fraction_idx)
    return Dataset("imagefolder", trained, train.split(holdout), test.split(), len(classes), memory)


def held_out_val(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(val positions held out of train/, the rest): 10% per class, at most 50, fixed by SPLIT_SEED."""
    share, cap = VAL_PER_CLASS
    holdout = per_class_holdout(labels, lambda n: min(cap, max(int(n >= 2), math.floor(share * n + 0.5))))
    return holdout, np.setdiff1d(np.arange(len(labels)), holdout)


@dataclass
class Part:
    """train/ or val/ of a labeled source (a folder, or a prepared cache of one): files and labels in order."""

    paths: list[str]
    labels: np.ndarray
    num_classes: int
    recipe: object
    cache: object = None  # cache.Cache when read from a prepared cache
    positions: np.ndarray | None = None  # the part's images in the cache

    def split(self, idx: np.ndarray | None = None) -> "FileSplit":
        idx = np.arange(len(self.paths)) if idx is None else idx
        paths, labels = [self.paths[i] for i in idx], torch.from_numpy(self.labels[idx])
        size, workers = self.recipe.image_size, self.recipe.num_workers
        if self.cache is not None:
            return CachedSplit(paths, labels, self.num_classes, size, workers, self.cache, self.positions[idx])
        return FileSplit(paths, labels, self.num_classes, size, workers, self.recipe.jpeg_decode)


def labeled_parts(root_text: str, field: str, recipe) -> tuple[Part, Part, list[str]]:
    """(train/, val/, class names) of the ImageNet-layout folder or cache named by recipe field `field`."""
    from lightrecipe.trainers.data.cache import TRAIN_PART, VAL_PART, is_cache, open_cache

    root = Path(root_text).expanduser()
    if is_cache(root):
        cache = open_cache(root, field, "imagefolder", recipe.image_size)
        classes = list(cache.manifest["classes"])
        parts = []
        for part in (TRAIN_PART, VAL_PART):
            positions = cache.part(part)
            labels = cache.index["labels"][positions].astype(np.int64)
            parts.append(Part(cache.source_paths(positions), labels, len(classes), recipe, cache, positions))
        return parts[0], parts[1], classes
    if not root.is_dir():
        raise UserError(f"{field} '{root}' {'is not a folder' if root.exists() else 'does not exist'}; "
                        f"{folder_layout(field)}")
    classes, train_paths, train_labels = scan_classes(root / "train", field=field)
    _, test_paths, test_labels = scan_classes(root / "val", classes, field=field)
    return (Part(train_paths, np.asarray(train_labels, dtype=np.int64), len(classes), recipe),
            Part(test_paths, np.asarray(test_labels, dtype=np.int64), len(classes), recipe), classes)


def folder_layout(field: str) -> str:
    return f"expected {field}/train/<class>/*.jpg and {field}/val/<class>/*.jpg (ImageNet layout)"


def scan_classes(folder: Path, classes: list[str] | None = None, field: str = "data_root"):
    """(class names, image paths, labels) of `folder/<class>/*`; `classes` fixes the index (train/'s order)."""
    if not folder.is_dir():
        raise UserError(f"'{folder}' {'is not a folder' if folder.exists() else 'does not exist'}; "
                        f"{folder_layout(field)}")
    try:
        found = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    except OSError as exc:
        raise UserError(f"cannot list '{folder}': {exc.strerror or exc}") from None
    if not found:
        raise UserError(f"'{folder}' has no class folders; {folder_layout(field)}")
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

    def __init__(self, paths: list[str], labels: torch.Tensor, num_classes: int, image_size: int, num_workers: int,
                 jpeg_decode: str = "workers"):
        super().__init__(labels, num_classes, image_size)
        self.paths = paths
        self.num_workers = num_workers
        self.jpeg_decode = jpeg_decode  # "device": training JPEGs decoded in batches on the device (image_decode.py)
        self._skipped: set[str] = set()

    def items(self, scale: tuple[float, float] | None = None, seed: int = 0) -> torch.utils.data.Dataset:
        """What the workers load: centre views (`scale` None) or two training crops drawn from `seed`."""
        if scale is None:
            return EvalImages(self.paths, self.image_size)
        return CropPairs(self.paths, self.image_size, scale, seed)

    def _batches(self, order, batch_size, device):
        for images, labels, readable in self._load(self.items(), order, batch_size, device):
            if readable.any():
                yield images[readable], labels[readable]

    def evaluation_batches(self, batch_size, *, device):
        order = self.epoch_order(batch_size, shuffle=False, drop_last=False)  # this rank's share, data-parallel
        yield from self._load(self.items(), order, batch_size, torch.device(device))

    def training_batches(self, batch_size, *, device, generator, crop_scale, seed):
        """Two crops per image, cut by the workers at the file's resolution: uint8 (B, 2, 3, S, S).

        A batch comes out shorter than `batch_size` when it held unreadable files, and empty when it held
        nothing else: every batch is yielded, so data-parallel ranks count the same steps (Trainer.views skips
        a batch too short to learn from on every rank together).
        """
        order = self.epoch_order(batch_size, shuffle=True, drop_last=True, generator=generator)
        if self.jpeg_decode == "device":
            yield from self._decoded_on_device(order, batch_size, torch.device(device), crop_scale, seed)
            return
        for views, _, readable in self._load(self.items(crop_scale, seed), order, batch_size, torch.device(device)):
            yield views[readable]

    def _decoded_on_device(self, order: torch.Tensor, batch_size: int, device: torch.device,
                           crop_scale: tuple[float, float], seed: int):
        """training_batches with the workers reading JPEG bytes and `device` decoding each batch of them."""
        from lightrecipe.trainers.data.image_decode import JpegBytesOrPairs, as_list, decode_batch

        items = JpegBytesOrPairs(self.paths, self.image_size, crop_scale, seed)
        loader = torch.utils.data.DataLoader(items, batch_size=batch_size, sampler=order.tolist(),
                                             num_workers=self.num_workers, collate_fn=as_list)
        for batch in loader:
            views, errors = decode_batch(batch, self.paths, self.image_size, crop_scale, seed, device)
            for (_, _, i), error in zip(batch, errors):
                if error:
                    self._skip(self.paths[i], error)
            yield views[torch.tensor([not e for e in errors], dtype=torch.bool, device=device)]

    def skipped_files(self) -> list[str]:
        return sorted(self._skipped)

    def restore_skipped(self, paths) -> None:
        mine = set(self.paths)
        self._skipped.update(p for p in paths if p in mine)

    def check_unreadable(self, example: str = "") -> None:
        """The 1% rule on the files skipped so far. Data-parallel, the trainer first pools every rank's skipped
        files into each rank (restore_skipped), so all ranks decide it on the whole split together."""
        if len(self._skipped) > MAX_UNREADABLE_SHARE * len(self):
            example = example or f"'{sorted(self._skipped)[0]}'"
            raise UserError(
                f"{len(self._skipped)} of {counted(len(self), 'image file')} of this split cannot be read (more than "
                f"{MAX_UNREADABLE_SHARE:.0%}), e.g. {example}; every file under train/ and val/ must be an image"
            )

    def _load(self, dataset, order: torch.Tensor, batch_size: int, device: torch.device):
        """(images, labels, readable mask) per batch of `order`; an unreadable file's row is blank, not dropped."""
        # Items are decoded HWC pixels viewed as CHW: the collate's stack is their one copy (as PILToTensor's).
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, sampler=order.tolist(), num_workers=self.num_workers,
            pin_memory=device.type == "cuda",
        )
        for images, idx, errors in loader:
            for i, error in enumerate(errors):
                if error:
                    self._skip(self.paths[int(idx[i])], error)
            readable = torch.tensor([not e for e in errors], dtype=torch.bool)
            yield (images.to(device, non_blocking=True), self.labels[idx].to(device, non_blocking=True),
                   readable.to(device))

    def _skip(self, path: str, error: str) -> None:
        if path in self._skipped:
            return
        self._skipped.add(path)
        # This rank's own skips alone past 1% of the whole split: the split's total is past it too, so stop now
        # rather than at the next pooled check (an epoch of a broken ImageNet folder is hours).
        self.check_unreadable(error)
        warnings.warn(f"skipping unreadable image {error}", stacklevel=2)


class CachedSplit(FileSplit):
    """A split of a prepared cache: the same views and crops, cut from stored uint8 images instead of files."""

    def __init__(self, paths, labels, num_classes, image_size, num_workers, cache, positions: np.ndarray):
        super().__init__(paths, labels, num_classes, image_size, num_workers)
        self.cache = cache
        self.positions = positions

    def items(self, scale=None, seed=0):
        from lightrecipe.trainers.data.cache import CacheItems

        return CacheItems(self.cache, self.positions, self.image_size, scale, seed)
