"""A small CIFAR-10 release in torchvision's on-disk format, of real images, for tests that read `dataset: cifar10`.

`cifar-10-batches-py/` holds `data_batch_1` .. `data_batch_5`, `test_batch` and `batches.meta`, each a pickled
dict as the official release has them (`data`: N x 3072 uint8 rows, the red, green then blue 32x32 planes;
`labels`: ints). The images are scikit-learn's bundled 8x8 digits, each pixel repeated 4x4 to 32x32 and the grey
copied to the three planes: real images a network can learn from, 10 classes, a few hundred of them, so the queue
and batch fit rule (trainers/fit.py) fits MoCo's settings to them as it fits them to CIFAR-10's 45 000.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

FOLDER = "cifar-10-batches-py"  # the name torchvision's CIFAR10 extracts to
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
PER_FILE = 120  # 600 training images: the rule fits batch 32 and queue 64 to the 540 left after the val tenth
LABEL_NAMES = [str(digit) for digit in range(10)]  # batches.meta's names: the digits' own


def write_cifar10(root: Path, per_file: int = PER_FILE) -> Path:
    """`root/cifar-10-batches-py/` with 5 training batches and a test batch of `per_file` digits each; returns
    `root`, the folder a recipe names as `data_root`."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))  # classes mixed in every batch, as CIFAR's
    images = np.round(digits.images[order] * (255 / 16)).astype(np.uint8)  # 0..16 grey levels -> 0..255
    images = np.kron(images, np.ones((4, 4), dtype=np.uint8))  # 8x8 -> 32x32, nearest neighbour
    rows = np.repeat(images.reshape(len(images), 1, 32 * 32), 3, axis=1).reshape(len(images), 3 * 32 * 32)
    labels = digits.target[order]
    folder = root / FOLDER
    folder.mkdir(parents=True)
    for i, name in enumerate([*TRAIN_FILES, "test_batch"]):
        part = slice(i * per_file, (i + 1) * per_file)
        batch = {b"batch_label": f"{name} of the digits".encode(), b"labels": labels[part].tolist(),
                 b"data": rows[part], b"filenames": [f"digit_{j}.png".encode() for j in order[part]]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))  # the official files are protocol-2 pickles
    meta = {b"label_names": [n.encode() for n in LABEL_NAMES], b"num_cases_per_batch": per_file, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root
