"""On-disk formats: the CIFAR-10/100 releases (python and binary). Image folders: image_folder.py.

Every missing or malformed path ends in one `UserError` that names the path and the layout expected there.
CIFAR's python release is a pickle; it is read with an unpickler that only admits what numpy arrays need, so
a planted file cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from lightrecipe.errors import UserError
from lightrecipe.words import counted

try:  # numpy >= 2 keeps the array internals in numpy._core; numpy.core is a deprecated alias
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

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
        raise UserError(f"CIFAR file '{path}' has {counted(len(images), 'image')} but labels of shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"CIFAR file '{path}' has labels outside 0..{num_classes - 1}; is it the other CIFAR?")
    return np.ascontiguousarray(images), labels.astype(np.int64)
