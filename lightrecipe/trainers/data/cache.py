"""Reading a prepared cache (`lightrecipe prepare`, prepare.py writes it): images decoded once, stored as uint8.

A cache folder holds three files:
- `lightrecipe-cache.json`: what it is (format version, the kind and path of its source, the shorter side `size`,
  counts, the files skipped as unreadable, the class names);
- `index.npz`: per stored image its offset, height, width, label and part (0 = train/ or the unlabeled tree,
  1 = val/), its path in the source; and the source's listing (paths, sizes, mtimes) that prepare compares with;
- `pixels.u8`: every image as uint8 H x W x 3, its shorter side `size`, one after another, read memory-mapped.

Why raw uint8 and not small JPEGs: cutting two crops from a raw image was 1.3x to 1.4x faster than from the same
image as a quality-90 JPEG (benchmarks/bench_loader.py; README, "Unlabeled images and a prepared cache"), at
about 10x the bytes (85 KB an image at 146 px).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lightrecipe.errors import UserError
from lightrecipe.trainers.data.image_decode import eval_view, item_generator, pair_boxes, resize_views

CACHE_FILE = "lightrecipe-cache.json"  # its presence makes a folder a cache
INDEX_FILE = "index.npz"
PIXELS_FILE = "pixels.u8"
CACHE_VERSION = 1  # raised whenever the layout of these files changes; older caches are refused by name
KINDS = ("imagefolder", "unlabeled")
TRAIN_PART, VAL_PART = 0, 1  # train/ (or the whole unlabeled tree), val/


def is_cache(root: Path) -> bool:
    return (Path(root).expanduser() / CACHE_FILE).is_file()


@dataclass
class Cache:
    root: Path
    manifest: dict
    index: dict

    @property
    def size(self) -> int:
        return int(self.manifest["size"])

    def part(self, part: int) -> np.ndarray:
        """Positions in the cache of the images of one part, in the source's sorted order."""
        return np.flatnonzero(self.index["parts"] == part)

    def source_paths(self, positions: np.ndarray) -> list[str]:
        source = self.manifest["source"]
        return [f"{source}/{self.index['paths'][p]}" for p in positions]


def read_manifest(root: Path) -> dict:
    path = Path(root) / CACHE_FILE
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cache file '{path}' cannot be read ({exc}); run `lightrecipe prepare` again") from None
    if not isinstance(manifest, dict) or manifest.get("version") != CACHE_VERSION:
        found = manifest.get("version") if isinstance(manifest, dict) else None
        raise UserError(f"cache '{root}' has format version {found!r}; this lightrecipe reads version "
                        f"{CACHE_VERSION}: run `lightrecipe prepare` again into a new --out")
    return manifest


def open_cache(root: Path, field: str, kind: str, image_size: int) -> Cache:
    """The cache at `root` (recipe field `field`), checked to be of `kind` and at least `image_size` px."""
    root = Path(root).expanduser()
    manifest = read_manifest(root)
    if manifest.get("kind") != kind:
        raise UserError(f"{field} '{root}' is a cache of {manifest.get('kind')!r} source "
                        f"'{manifest.get('source')}'; this needs a cache of an {kind} source")
    if int(manifest["size"]) < image_size:
        raise UserError(f"{field} '{root}' is a cache at {manifest['size']} px (shorter side); the recipe's "
                        f"image_size is {image_size}: prepare it again with --size {image_size} or more")
    with np.load(root / INDEX_FILE, allow_pickle=False) as npz:
        index = {k: npz[k] for k in npz.files}
    return Cache(root, manifest, index)


class CacheItems(torch.utils.data.Dataset):
    """Index -> (uint8 view(s), index, ''): eval centre views (`scale` None) or the two training crops.

    The pixels file is mapped on first use in each worker; crops are drawn as from files (same seeds), on
    the stored image.
    """

    def __init__(self, cache: Cache, positions: np.ndarray, size: int,
                 scale: tuple[float, float] | None = None, seed: int = 0):
        self.pixels_path = str(cache.root / PIXELS_FILE)
        self.offsets = cache.index["offsets"][positions]
        self.heights = cache.index["heights"][positions]
        self.widths = cache.index["widths"][positions]
        self.size, self.scale, self.seed = size, scale, seed
        self._pixels = None

    def __len__(self) -> int:
        return len(self.offsets)

    def image(self, i: int):
        from PIL import Image

        if self._pixels is None:
            self._pixels = np.memmap(self.pixels_path, dtype=np.uint8, mode="r")
        h, w, start = int(self.heights[i]), int(self.widths[i]), int(self.offsets[i])
        return Image.fromarray(np.asarray(self._pixels[start:start + h * w * 3]).reshape(h, w, 3)), w, h

    def __getitem__(self, i: int):
        img, w, h = self.image(i)
        if self.scale is None:
            return torch.from_numpy(eval_view(img, self.size)).permute(2, 0, 1), i, ""
        pair = resize_views(img, pair_boxes(w, h, self.scale, item_generator(self.seed, i)), 1.0, self.size)
        return torch.from_numpy(pair).permute(0, 3, 1, 2), i, ""
