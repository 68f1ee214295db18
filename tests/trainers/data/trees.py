"""Real image trees for the data tests: an unlabeled tree nested three deep with junk beside the images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lightrecipe.trainers.data.datasets import load_digits_arrays


def write_tree(root: Path, count: int = 24, size: int = 20) -> list[str]:
    """`count` digit images as png/jpg/jpeg/webp at depths 1 to 3, plus a note, a CSV, hidden files and a hidden
    folder of images (none of which is an image to train on). Returns the image paths, sorted."""
    images, _ = load_digits_arrays()
    folders = [root / "a", root / "a" / "b", root / "a" / "b" / "c", root / "d"]
    extensions = ["png", "jpg", "JPEG", "webp"]
    written = []
    for i in range(count):
        folder = folders[i % len(folders)]
        folder.mkdir(parents=True, exist_ok=True)
        grey = np.asarray(Image.fromarray(images[i, 0]).resize((size + i % 3, size), Image.BILINEAR))
        path = folder / f"img{i:03d}.{extensions[i % len(extensions)]}"
        Image.fromarray(np.stack([grey, grey // 2, 255 - grey], axis=-1)).save(path)
        written.append(str(path))
    (root / "notes.txt").write_text("shot on the 3rd\n")
    (root / "a" / "labels.csv").write_text("img000.png,ant\n")
    (root / "a" / ".DS_Store").write_bytes(b"\0\1junk")
    (root / ".hidden.jpg").write_bytes(b"not a jpeg")
    (root / ".thumbnails").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / ".thumbnails" / "t.png")
    return sorted(written)
