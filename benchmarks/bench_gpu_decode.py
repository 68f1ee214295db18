"""JPEG decoding on a GPU (torchvision.io.decode_jpeg on CUDA, batched) against CPU loader workers, at 224 px.

Times, on the same generated 500 x 375 JPEGs as bench_loader.py: the GPU decoding a batch of files' bytes
(read on the CPU), then two 224 px crops per image cut and resized on the GPU; against the images/s of one
CPU worker of lightrecipe's folder loader (PIL, DCT-reduced decode, two crops) measured here in one process.
Prints how many CPU workers one GPU's decoder is worth. Without CUDA it says so and exits 0.

    .venv/bin/python benchmarks/bench_gpu_decode.py [--images 512] [--batch 128] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

SIZE = 224
CROP_SCALE = (0.2, 1.0)  # MoCo v2


def gpu_pass(blobs: list[torch.Tensor], batch: int, device: torch.device) -> float:
    """Source images/s: decode_jpeg on `device` a batch at a time, then two crops each resized to SIZE."""
    import torch.nn.functional as F
    from torchvision.io import decode_jpeg

    generator = torch.Generator().manual_seed(0)
    torch.cuda.synchronize(device)
    started = time.perf_counter()
    for start in range(0, len(blobs), batch):
        images = decode_jpeg(blobs[start:start + batch], device=device)  # list of uint8 (3, H, W) on the GPU
        for img in images:
            _, h, w = img.shape
            for _ in range(2):
                area = h * w * torch.empty(1).uniform_(*CROP_SCALE, generator=generator).item()
                side = int(min(h, w, area ** 0.5))
                top = int(torch.randint(0, h - side + 1, (1,), generator=generator))
                left = int(torch.randint(0, w - side + 1, (1,), generator=generator))
                crop = img[None, :, top:top + side, left:left + side].float()
                F.interpolate(crop, size=(SIZE, SIZE), mode="bilinear", antialias=True).to(torch.uint8)
    torch.cuda.synchronize(device)
    return len(blobs) / (time.perf_counter() - started)


def cpu_worker_rate(paths: list[str]) -> float:
    """Source images/s of one CPU worker doing what lightrecipe's folder loader does per image."""
    from lightrecipe.trainers.data.image_decode import decode_pair

    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for path in paths:
        decode_pair(path, SIZE, CROP_SCALE, generator)
    return len(paths) / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folder", default=str(Path(tempfile.gettempdir()) / "lightrecipe-bench-loader"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device here: nothing to measure (run this on a machine with a GPU)")
        return 0
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_loader import make_folder
    from torchvision.io import read_file

    torch.set_num_threads(1)
    root = make_folder(Path(args.folder), args.images)
    paths = sorted(str(p) for p in (root / "train").rglob("*.jpg"))[:args.images]
    blobs = [read_file(p) for p in paths]
    device = torch.device("cuda")
    gpu_pass(blobs[:args.batch], args.batch, device)  # warm-up: CUDA context, nvjpeg handles
    gpu = statistics.median(gpu_pass(blobs, args.batch, device) for _ in range(args.repeats))
    cpu = statistics.median(cpu_worker_rate(paths[:128]) for _ in range(args.repeats))
    print(f"{len(paths)} JPEGs 500x375, two {SIZE} px crops each, median of {args.repeats}: "
          f"GPU ({torch.cuda.get_device_name(device)}) {gpu:.0f} img/s, one CPU worker {cpu:.0f} img/s: "
          f"the GPU decoder is worth {gpu / cpu:.1f} CPU workers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
