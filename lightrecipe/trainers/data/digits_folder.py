"""The bundled digits written as an ImageNet-layout image folder: what `lightrecipe demo` trains on.

`root/train/<digit>/digit-<row>.png` holds 80% of scikit-learn's 1797 digits and `root/val/<digit>/...` the
other 20%, stratified by class and fixed by `data.SPLIT_SEED`, so every demo writes the same files. Each file is
the digit as it ships: an 8x8 greyscale PNG, its 0..16 ink levels scaled to 0..255 exactly as
`data.load_digits_arrays` scales them; `<row>` is the digit's row in scikit-learn's table. The trainer reads the
folder like any ImageNet folder (`image_folder.py`): a held-out tenth of train/ is the val split that searches
score on, and val/ is the test split that only `confirm` reports.

Why a folder, not the built-in `digits` dataset (60/20/20): with 80% of the images to learn from, a good recipe
passes the untrained network's kNN score within 20 epochs, which the smaller built-in train split does not
(docs/science.md); and the demo walks the same path as a user's own ImageNet folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from lightrecipe.errors import UserError
from lightrecipe.trainers.data.datasets import load_digits_arrays
from lightrecipe.trainers.data.splits import stratified_holdout

TEST_SHARE = 0.2  # of the 1797 digits, written to val/ (the test split); the rest to train/


def digits_folder_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of train/ and of val/: a stratified 80/20 split fixed by SPLIT_SEED."""
    test = stratified_holdout(labels, round(TEST_SHARE * len(labels)))
    return np.setdiff1d(np.arange(len(labels)), test), test


def write_digits_folder(root: Path) -> Path:
    """Write the digits folder at `root` (absolute path returned); a complete folder already there is reused.

    The files are written into a sibling folder and renamed into place at the end, so an interrupted write
    never leaves a partial folder that a later run would take for the real one.
    """
    from PIL import Image

    root = Path(root).expanduser().resolve()
    images, labels = load_digits_arrays()
    train, test = digits_folder_split(labels)
    expected = {"train": train, "val": test}
    if root.exists():
        if _holds(root, expected, labels):
            return root
        raise UserError(f"'{root}' exists but is not the digits folder lightrecipe writes; move it or pick "
                        "another --out")
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for split, rows in expected.items():
        for row in rows:
            folder = partial / split / str(labels[row])
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[row, 0]).save(folder / f"digit-{row:04d}.png")
    os.replace(partial, root)
    return root


def _holds(root: Path, expected: dict[str, np.ndarray], labels: np.ndarray) -> bool:
    """Whether `root` has exactly the files write_digits_folder writes (names only: the pixels are not re-read)."""
    for split, rows in expected.items():
        want = {f"{labels[r]}/digit-{r:04d}.png" for r in rows}
        folder = root / split
        if not folder.is_dir():
            return False
        have = {f"{c.name}/{f.name}" for c in folder.iterdir() if c.is_dir() for f in c.iterdir()}
        if have != want:
            return False
    return True
