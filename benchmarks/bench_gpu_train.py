"""Training on a GPU from a folder of JPEGs: `jpeg_decode: workers` against `jpeg_decode: device`, end to end.

bench_gpu_decode.py times the decoder alone; this runs the real `train()` (MoCo v2 preset, 224 px, batch 256, bf16,
channels_last as the recipe asks) on generated 500 x 375 JPEGs (bench_loader.py's) and reads each run's training
images/s from its history: the last epoch's, the first carrying the start-up. Each arch runs with every worker count
and both decoders, in turn, in one process. The GPU's own step rate (bench_gpu.py) is the ceiling either decoder
can reach. Without CUDA it says so and exits 0.

    python benchmarks/bench_gpu_train.py [--images 3072] [--workers 4 12] [--epochs 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from lightrecipe.trainers.recipe import preset
from lightrecipe.trainers.run.run_files import read_history
from lightrecipe.trainers.run.train import train


def run(args, root: Path, arch: str, workers: int, decode: str, workdir: Path) -> dict:
    queue = min(1024, args.images // 2) // args.batch * args.batch  # a multiple of the batch, below the train split
    recipe = preset("resnet50-mocov2", arch=arch, dataset="imagefolder", data_root=str(root), image_size=args.size,
                    batch_size=args.batch, queue_size=queue, epochs=args.epochs, num_workers=workers,
                    jpeg_decode=decode, precision="bf16", channels_last=True)
    started = time.perf_counter()
    metrics = train(recipe, workdir=workdir, device=args.device)
    return {"arch": arch, "workers": workers, "jpeg_decode": decode,
            "images_per_s": round(float(metrics["images_per_s"]), 1),  # the last epoch's row
            "loss": round(float(metrics["loss"]), 4), "knn_top1": metrics.get("knn_top1"),
            "seconds": round(time.perf_counter() - started, 1),
            "epochs_images_per_s": [float(row["images_per_s"]) for row in read_history(workdir)]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=3072)
    parser.add_argument("--archs", nargs="+", default=["mobilenetv3_large_100"])
    parser.add_argument("--workers", type=int, nargs="+", default=[4, 12])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--folder", default=str(Path(tempfile.gettempdir()) / "lightrecipe-bench-gpu-train"))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run of this script (small --batch/--size)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: nothing to measure (run this on a machine with a GPU)")
        return 0
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_loader import make_folder

    started = time.perf_counter()
    root = make_folder(Path(args.folder), args.images, processes=len(os.sched_getaffinity(0)))
    print(f"{args.images} JPEGs 500x375 in {time.perf_counter() - started:.0f} s; {device_name(args.device)}; "
          f"batch {args.batch}, {args.size} px, bf16, MoCo v2 preset (bn_splits 8), {args.epochs} epochs, last epoch's images/s")
    print(f"{'arch':<24}{'workers':>8}{'decode':>9}{'img/s':>8}{'loss':>8}{'run s':>7}")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for arch in args.archs:
            for workers in args.workers:
                for decode in ("workers", "device"):
                    row = run(args, root, arch, workers, decode, Path(scratch) / f"{arch}-{workers}-{decode}")
                    rows.append(row)
                    print(f"{arch:<24}{workers:>8}{decode:>9}{row['images_per_s']:>8.0f}{row['loss']:>8.3f}"
                          f"{row['seconds']:>7.0f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


def device_name(device: str) -> str:
    return torch.cuda.get_device_name(device) if device.startswith("cuda") else device


if __name__ == "__main__":
    sys.exit(main())
