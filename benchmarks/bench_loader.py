"""Training-loader throughput per worker: torchvision (uint8) vs lightrecipe from the JPEGs vs from a prepared cache.

Generates a folder of JPEGs (default 1000 at 500 x 375, ImageNet's most common size) once, prepares it at each
size's evaluation side (`lightrecipe prepare --size floor(S / 0.875)`: 73, 146, 256 px), then measures source
images/s of one worker, median of several passes taken in turn in one process, batch 64, two views per image:
- torchvision: `ImageFolder` + RandomResizedCrop(S, scale=(0.2, 1)) + `PILToTensor` (uint8, like ours), two crops
  per image as MoCo's TwoCropsTransform makes them (facebookresearch/moco main_moco.py);
- lightrecipe JPEG: `FileSplit.training_batches` (two crops cut at the file's resolution, DCT-reduced decode);
- lightrecipe cache: the same from the prepared cache (uint8 images read memory-mapped, no JPEG decode).
Flip and colour run batched on the training device afterwards in both of ours and are not part of this.
Also times, in one process, the cache's raw uint8 against small JPEGs of the same size (why the cache is raw),
and prints how many workers one GPU would need at timm's training speeds.

    .venv/bin/python benchmarks/bench_loader.py [--images 1000] [--sizes 64 128 224] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import datasets, transforms

from lightrecipe.trainers.data.cache import TRAIN_PART, CacheItems, open_cache
from lightrecipe.trainers.data.datasets import load_dataset
from lightrecipe.trainers.data.image_decode import eval_resize, pair_boxes, resize_views
from lightrecipe.trainers.data.prepare import prepare
from lightrecipe.trainers.recipe import Recipe

WIDTH, HEIGHT = 500, 375  # ImageNet's most common image size
CLASSES = 10
BATCH = 64
CROP_SCALE = (0.2, 1.0)  # MoCo v2
# timm's RTX 3090 AMP training benchmark (results/benchmark-train-amp-*-rtx3090.csv, train_samples_per_sec at
# 224 px), the figures issue 20 quotes; a MoCo step adds a key forward, so it needs somewhat fewer images/s.
TIMM_TRAIN_IMAGES_PER_S = {"mobilenetv3_large_100": 2732, "efficientnet_b0": 1752}
TARGET_CACHE, TARGET_JPEG = 3.0, 1.0  # issue 20: cache >= 3x torchvision at 64 and 128 px; JPEG >= 1.0x


def make_folder(root: Path, count: int, processes: int = 1) -> Path:
    """`count` JPEGs of smooth colour fields plus texture (JPEG sizes like photos'), in CLASSES class folders.
    Image i is drawn from its own seed, so the folder is the same whatever `processes` writes it."""
    marker = root / f"done-{count}"
    if marker.exists():
        return root
    for c in range(CLASSES):
        (root / "train" / f"c{c}").mkdir(parents=True, exist_ok=True)
    with multiprocessing.Pool(processes) as pool:
        pool.starmap(write_jpeg, [(root, i) for i in range(count)], chunksize=64)
    for c in range(CLASSES):  # a small val/ so the folder has the layout lightrecipe expects
        (root / "val" / f"c{c}").mkdir(parents=True, exist_ok=True)
        src = next((root / "train" / f"c{c}").iterdir())
        (root / "val" / f"c{c}" / src.name).write_bytes(src.read_bytes())
    marker.touch()
    return root


def write_jpeg(root: Path, i: int) -> None:
    rng = np.random.default_rng(i)
    coarse = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((WIDTH, HEIGHT), Image.BICUBIC)
    pixels = np.asarray(coarse, dtype=np.int16) + rng.normal(0, 12, (HEIGHT, WIDTH, 3)).astype(np.int16)
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(root / "train" / f"c{i % CLASSES}" / f"{i:05d}.jpg",
                                                               quality=90)


class TwoCrops:
    def __init__(self, transform):
        self.transform = transform

    def __call__(self, img):
        return [self.transform(img), self.transform(img)]


def lightrecipe_pass(root: Path, size: int, workers: int, limit: int, seed: int) -> float:
    data = load_dataset(Recipe(dataset="imagefolder", data_root=str(root), image_size=size, num_workers=workers,
                               batch_size=BATCH, queue_size=0))
    split = data.memory
    seen, started = 0, time.perf_counter()
    for pairs in split.training_batches(BATCH, device=torch.device("cpu"), generator=torch.Generator().manual_seed(seed),
                                        crop_scale=CROP_SCALE, seed=seed):
        seen += pairs.shape[0]
        if seen >= limit:
            break
    return seen / (time.perf_counter() - started)


def torchvision_pass(root: Path, size: int, workers: int, limit: int, seed: int) -> float:
    crop = transforms.Compose([transforms.RandomResizedCrop(size, scale=CROP_SCALE), transforms.PILToTensor()])
    dataset = datasets.ImageFolder(str(root / "train"), TwoCrops(crop))
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers, drop_last=True,
                                         generator=torch.Generator().manual_seed(seed))
    seen, started = 0, time.perf_counter()
    for images, _ in loader:
        seen += images[0].shape[0]
        if seen >= limit:
            break
    return seen / (time.perf_counter() - started)


def format_check(cache_root: Path, size: int, count: int = 200) -> tuple[float, float, float, float]:
    """(raw uint8 img/s, small-JPEG img/s, raw KB/image, JPEG KB/image): two crops each, in this process."""
    cache = open_cache(cache_root, "data_root", "imagefolder", size)
    items = CacheItems(cache, cache.part(TRAIN_PART)[:count], size, CROP_SCALE, 0)
    images = [items.image(i)[0].copy() for i in range(len(items))]
    blobs = []
    for img in images:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        blobs.append(buf.getvalue())
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for i in range(len(items)):
        img, w, h = items.image(i)
        resize_views(img, pair_boxes(w, h, CROP_SCALE, generator), 1.0, size)
    raw = len(items) / (time.perf_counter() - started)
    started = time.perf_counter()
    for blob in blobs:
        with Image.open(io.BytesIO(blob)) as img:
            img = img.convert("RGB")
            resize_views(img, pair_boxes(*img.size, CROP_SCALE, generator), 1.0, size)
    small = len(blobs) / (time.perf_counter() - started)
    raw_kb = sum(np.asarray(i).nbytes for i in images) / len(images) / 1e3
    return raw, small, raw_kb, sum(map(len, blobs)) / len(blobs) / 1e3


def measure(root: Path, cache: Path, size: int, workers: int, limit: int, repeats: int) -> dict[str, float]:
    """Median source images/s per worker of each loader, passes taken in turn."""
    runs: dict[str, list[float]] = {"tv": [], "jpeg": [], "cache": []}
    for r in range(repeats):  # alternating, so load on the machine hits every loader alike
        runs["tv"].append(torchvision_pass(root, size, workers, limit, seed=r))
        runs["jpeg"].append(lightrecipe_pass(root, size, workers, limit, seed=r))
        runs["cache"].append(lightrecipe_pass(cache, size, workers, limit, seed=r))
    return {k: statistics.median(v) / max(workers, 1) for k, v in runs.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=512, help="images per timed pass")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers (rates are printed per worker)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 224])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", default=str(Path(tempfile.gettempdir()) / "lightrecipe-bench-loader"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = make_folder(Path(args.folder), args.images)
    print(f"{args.images} JPEGs of {WIDTH}x{HEIGHT} in {root}; batch {BATCH}, {args.limit} images per pass, "
          f"{args.workers} worker(s), median of {args.repeats} passes; source images/s per worker (two views each)")
    print(f"{'px':>4}{'cache px':>9}{'torchvision':>13}{'lr JPEG':>9}{'x tv':>6}{'lr cache':>10}{'x tv':>6}"
          f"{'   workers/GPU mnv3-L, effb0 (tv | JPEG | cache)'}")
    checks = []
    for size in args.sizes:
        cache = Path(f"{args.folder}-cache-{eval_resize(size)}")
        prepare(root, cache, eval_resize(size), say=lambda line: None)
        r = measure(root, cache, size, args.workers, args.limit, args.repeats)
        need = " | ".join(", ".join(f"{ips / r[k]:.0f}" for ips in TIMM_TRAIN_IMAGES_PER_S.values())
                          for k in ("tv", "jpeg", "cache"))
        print(f"{size:>4}{eval_resize(size):>9}{r['tv']:>13.1f}{r['jpeg']:>9.1f}{r['jpeg'] / r['tv']:>6.2f}"
              f"{r['cache']:>10.1f}{r['cache'] / r['tv']:>6.2f}   {need}")
        checks.append((size, r, cache))
    print("\ntargets: cache >= 3x torchvision per worker at 64 and 128 px; JPEG >= 1.0x at every size")
    for size, r, _ in checks:
        cache_ok = size > 128 or r["cache"] / r["tv"] >= TARGET_CACHE
        print(f"  {size:>3} px: cache {r['cache'] / r['tv']:.2f}x {'met' if cache_ok else 'MISSED'}, "
              f"JPEG {r['jpeg'] / r['tv']:.2f}x {'met' if r['jpeg'] / r['tv'] >= TARGET_JPEG else 'MISSED'}")
    print("\ncache format, one process, two crops per image: raw uint8 vs the same images as quality-90 JPEGs")
    for size, _, cache in checks:
        raw, small, raw_kb, jpeg_kb = format_check(cache, size)
        print(f"  {size:>3} px: raw {raw:7.0f} img/s ({raw_kb:5.1f} KB/image)   small JPEG {small:7.0f} img/s "
              f"({jpeg_kb:5.1f} KB/image)   raw is {raw / small:.1f}x faster")


if __name__ == "__main__":
    main()
