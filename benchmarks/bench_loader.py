"""Training-loader throughput on a folder of ImageNet-sized JPEGs, against torchvision's pipeline.

Generates a folder of JPEGs (default 2000 at 500 x 375, ImageNet's most common size) once, then measures
images/s of one epoch's worth of batches, alternately in one process with the same workers and batch size:
- lightrecipe: `FileSplit.training_batches` (two crops per image cut at the file's resolution, resized to S,
  uint8; flip and colour run batched on the training device afterwards and are not part of this);
- torchvision: `ImageFolder` + RandomResizedCrop(S, scale=(0.2, 1)) + ToTensor, two crops per image as MoCo's
  TwoCropsTransform makes them (facebookresearch/moco main_moco.py), and the one-crop figure for reference.
Prints a table (median of several passes) and how many workers one GPU would need at timm's training speeds.

    .venv/bin/python benchmarks/bench_loader.py [--images 2000] [--workers 1 2] [--sizes 224 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import datasets, transforms

from lightrecipe.trainers.data import load_dataset
from lightrecipe.trainers.recipe import Recipe
from lightrecipe.words import counted

WIDTH, HEIGHT = 500, 375  # ImageNet's most common image size
CLASSES = 10
BATCH = 64
CROP_SCALE = (0.2, 1.0)  # MoCo v2
# timm results/benchmark-train-amp-nchw-pt112-cu113-rtx3090.csv, train_samples_per_sec at 224 px (supervised
# training: one forward and backward; a MoCo step adds a key forward, so it needs somewhat fewer images/s).
TIMM_TRAIN_IMAGES_PER_S = {"mobilenetv3_large_100": 2167.29, "efficientnet_b0": 1459.11, "resnet50": 826.06}


def make_folder(root: Path, count: int) -> Path:
    """`count` JPEGs of smooth colour fields plus texture (JPEG sizes like photos'), in CLASSES class folders."""
    marker = root / f"done-{count}"
    if marker.exists():
        return root
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / "train" / f"c{i % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((WIDTH, HEIGHT), Image.BICUBIC)
        pixels = np.asarray(coarse, dtype=np.int16) + rng.normal(0, 12, (HEIGHT, WIDTH, 3)).astype(np.int16)
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i:05d}.jpg", quality=90)
    for c in range(CLASSES):  # an empty-ish val/ so the folder has the layout lightrecipe expects
        (root / "val" / f"c{c}").mkdir(parents=True, exist_ok=True)
        src = next((root / "train" / f"c{c}").iterdir())
        (root / "val" / f"c{c}" / src.name).write_bytes(src.read_bytes())
    marker.touch()
    return root


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


def torchvision_pass(root: Path, size: int, workers: int, limit: int, seed: int, crops: int) -> float:
    crop = transforms.Compose([transforms.RandomResizedCrop(size, scale=CROP_SCALE), transforms.ToTensor()])
    dataset = datasets.ImageFolder(str(root / "train"), TwoCrops(crop) if crops == 2 else crop)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers, drop_last=True,
                                         generator=torch.Generator().manual_seed(seed))
    seen, started = 0, time.perf_counter()
    for images, _ in loader:
        seen += (images[0] if crops == 2 else images).shape[0]
        if seen >= limit:
            break
    return seen / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=1024, help="images per timed pass")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", default=str(Path(tempfile.gettempdir()) / "lightrecipe-bench-loader"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = make_folder(Path(args.folder), args.images)
    print(f"{args.images} JPEGs of {WIDTH}x{HEIGHT} in {root}; batch {BATCH}, {args.limit} images per pass, "
          f"median of {counted(args.repeats, 'pass', 'passes')}; images/s counts source images (each gives two views)")
    print(f"{'px':>4}{'workers':>8}{'lightrecipe':>13}{'tv 2 crops':>12}{'ratio':>7}{'tv 1 crop':>11}"
          f"{'ours per worker':>17}")
    per_worker = []
    for size in args.sizes:
        for workers in args.workers:
            ours, theirs, single = [], [], []
            for r in range(args.repeats):  # alternating, so load on the machine hits both alike
                ours.append(lightrecipe_pass(root, size, workers, args.limit, seed=r))
                theirs.append(torchvision_pass(root, size, workers, args.limit, seed=r, crops=2))
                single.append(torchvision_pass(root, size, workers, args.limit, seed=r, crops=1))
            o, t, s = statistics.median(ours), statistics.median(theirs), statistics.median(single)
            per_worker.append((size, o / max(workers, 1)))
            print(f"{size:>4}{workers:>8}{o:>13.1f}{t:>12.1f}{o / t:>7.2f}{s:>11.1f}{o / max(workers, 1):>17.1f}")
    print("\nworkers one GPU needs to keep up (timm's supervised training images/s on an RTX 3090, AMP, 224 px):")
    for size, rate in per_worker:
        if size != 224:
            continue
        needs = ", ".join(f"{arch} {ips:.0f} img/s: {ips / rate:.0f}" for arch, ips in TIMM_TRAIN_IMAGES_PER_S.items())
        print(f"  at {rate:.0f} img/s per worker ({size} px): {needs}")
        break


if __name__ == "__main__":
    main()
