"""On-disk formats: the CIFAR-10/100 releases (python and binary) and an ImageNet-layout image folder.

Every missing or malformed path ends in one `UserError` that names the path and the layout expected there.
CIFAR's python release is a pickle; it is read with an unpickler that only admits what numpy arrays need, so
a planted file cannot run code.
"""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from lightrecipe.errors import UserError, nearest
from lightrecipe.trainers.data import Dataset, Split, per_class_holdout, subsample

try:  # numpy >= 2 keeps the array internals in numpy._core; numpy.core is a deprecated alias
    from numpy._core import multiarray as _multiarray, numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray, numeric as _numeric

# --- CIFAR -------------------------------------------------------------------------------------
CIFAR_PIXELS = 3 * 32 * 32
# num_classes -> format -> (folder name, training files, test files), as the official archives extract
CIFAR_LAYOUTS = {
    10: {
        "python": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]),
        "binary": ("cifar-10-batches-bin", [f"data_batch_{i}.bin" for i in range(1, 6)], ["test_batch.bin"]),
    },
    100: {
        "python": ("cifar-100-python", ["train"], ["test"]),
        "binary": ("cifar-100-binary", ["train.bin"], ["test.bin"]),
    },
}


def _latin1_encode(text, encoding="utf-8"):
    """Python 3 pickles `bytes` at protocol 2 as `_codecs.encode(text, 'latin1')`; nothing else is allowed."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("refusing _codecs.encode with anything but a latin1 string")
    return text.encode("latin1")


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _numeric._frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, numbers, strings and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str):
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(f"refusing to load global '{module}.{name}'")
        return allowed


def read_cifar(data_root: str, num_classes: int):
    """((train images uint8 (N, 3, 32, 32), labels int64), (test images, labels)) from either release."""
    fmt, folder, train_files, test_files = find_cifar(data_root, num_classes)
    read = _read_python_batch if fmt == "python" else _read_binary_batch
    train = [read(folder / f, num_classes) for f in train_files]
    test = [read(folder / f, num_classes) for f in test_files]
    return tuple((np.concatenate([x for x, _ in part]), np.concatenate([y for _, y in part])) for part in (train, test))


def find_cifar(data_root: str, num_classes: int):
    """(format, folder, training files, test files); `data_root` is the release folder or its parent."""
    root = Path(data_root).expanduser()
    title = f"CIFAR-{num_classes}"
    layouts = CIFAR_LAYOUTS[num_classes]
    names = " or ".join(f"{name}/" for name, _, _ in layouts.values())
    expected = f"expected the {title} python or binary release extracted there ({names})"
    if not root.exists():
        raise UserError(f"data_root '{root}' does not exist; {expected}")
    if not root.is_dir():
        raise UserError(f"data_root '{root}' is a file, not a folder; {expected}")
    for fmt, (name, train_files, test_files) in layouts.items():
        for folder in (root, root / name):
            present = [f for f in train_files + test_files if (folder / f).is_file()]
            if present:
                missing = [f for f in train_files + test_files if f not in present]
                if missing:
                    raise UserError(f"{title} folder '{folder}' lacks {', '.join(missing)}; "
                                    f"expected the complete {fmt} release ({', '.join(train_files + test_files)})")
                return fmt, folder, train_files, test_files
        if (root / name).is_dir():
            raise UserError(f"{title} folder '{root / name}' holds none of {', '.join(train_files + test_files)}; "
                            f"expected the {fmt} release extracted there")
    raise UserError(f"data_root '{root}' has no {names} folder; {expected}")


def _read_python_batch(path: Path, num_classes: int):
    label_key = "labels" if num_classes == 10 else "fine_labels"
    layout = f"expected a pickled dict with 'data' (N x {CIFAR_PIXELS} uint8) and '{label_key}'"
    try:
        with open(path, "rb") as fh:
            # latin1: the official files are Python 2 pickles; numpy documents latin1 for their arrays
            batch = ArrayUnpickler(fh, encoding="latin1").load()
    except OSError as exc:
        raise UserError(f"cannot read CIFAR file '{path}': {exc.strerror or exc}") from None
    except Exception as exc:  # a malformed pickle raises almost any type; each means the same to the user
        raise UserError(f"CIFAR file '{path}' is not a CIFAR python batch ({exc}); {layout}") from None
    if not isinstance(batch, dict):
        raise UserError(f"CIFAR file '{path}' holds a {type(batch).__name__}; {layout}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or label_key not in batch:
        raise UserError(f"CIFAR file '{path}' has keys {sorted(map(str, batch))}; {layout}")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != CIFAR_PIXELS:
        raise UserError(f"CIFAR file '{path}' has 'data' of {data.dtype} {data.shape}; {layout}")
    return _checked(path, data.reshape(-1, 3, 32, 32), labels, num_classes)


def _read_binary_batch(path: Path, num_classes: int):
    label_bytes = 1 if num_classes == 10 else 2  # CIFAR-100: coarse then fine label byte
    record = label_bytes + CIFAR_PIXELS
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise UserError(f"cannot read CIFAR file '{path}': {exc.strerror or exc}") from None
    if raw.size == 0 or raw.size % record:
        raise UserError(f"CIFAR file '{path}' has {raw.size} bytes, not a whole number of {record}-byte records "
                        f"({label_bytes} label byte(s) + {CIFAR_PIXELS} pixels)")
    raw = raw.reshape(-1, record)
    return _checked(path, raw[:, label_bytes:].reshape(-1, 3, 32, 32), raw[:, label_bytes - 1], num_classes)


def _checked(path: Path, images: np.ndarray, labels: np.ndarray, num_classes: int):
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"CIFAR file '{path}' has {len(images)} images but labels of shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"CIFAR file '{path}' has labels outside 0..{num_classes - 1}; is it the other CIFAR?")
    return np.ascontiguousarray(images), labels.astype(np.int64)


# --- image folder ------------------------------------------------------------------------------
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
VAL_PER_CLASS = (0.1, 50)  # held out of train/ per class: 10%, at most 50 (ImageNet: 50 000 images, like its val)
FOLDER_LAYOUT = "expected data_root/train/<class>/*.jpg and data_root/val/<class>/*.jpg (ImageNet layout)"


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
    train_idx = subsample(train_labels[train_idx], recipe.data_fraction, train_idx)

    def split(paths, labels, idx=None) -> FileSplit:
        labels = np.asarray(labels, dtype=np.int64)
        if idx is not None:
            paths, labels = [paths[i] for i in idx], labels[idx]
        return FileSplit(paths, torch.from_numpy(labels), len(classes), recipe.image_size, recipe.num_workers)

    train, val = split(train_paths, train_labels, train_idx), split(train_paths, train_labels, holdout)
    return Dataset("imagefolder", train, val, split(test_paths, test_labels), len(classes))


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
    """A split of image files, decoded and resized (shorter side to S, centre crop) in DataLoader workers."""

    def __init__(self, paths: list[str], labels: torch.Tensor, num_classes: int, image_size: int, num_workers: int):
        super().__init__(labels, num_classes, image_size)
        self.paths = paths
        self.num_workers = num_workers

    def _batches(self, order, batch_size, device):
        loader = torch.utils.data.DataLoader(
            DecodeImages(self.paths, self.image_size), batch_size=batch_size, sampler=order.tolist(),
            num_workers=self.num_workers, pin_memory=device.type == "cuda",
        )
        for images, idx, errors in loader:
            bad = [e for e in errors if e]
            if bad:
                raise UserError(f"cannot read image {bad[0]}; every file under train/ and val/ must be an image")
            yield images.to(device, non_blocking=True), self.labels[idx].to(device, non_blocking=True)


class DecodeImages(torch.utils.data.Dataset):
    """Index -> (uint8 (3, S, S), index, error text or ''); a worker reports a bad file instead of dying."""

    def __init__(self, paths: list[str], size: int):
        self.paths = paths
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from PIL import Image

        try:
            with Image.open(self.paths[i]) as img:
                img.draft("RGB", (self.size, self.size))  # JPEG: decode at a reduced scale >= S when possible
                img = resize_center_crop(img.convert("RGB"), self.size)
            return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous(), i, ""
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
            return torch.zeros((3, self.size, self.size), dtype=torch.uint8), i, f"'{self.paths[i]}' ({exc})"


def resize_center_crop(img, size: int):
    """Shorter side to `size` (bilinear, antialiased by PIL when shrinking), then the centre `size` x `size`."""
    from PIL import Image

    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BILINEAR)
    left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))  # torchvision's CenterCrop rounding
    return img.crop((left, top, left + size, top + size))
