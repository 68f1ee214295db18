"""`lightrecipe bench latency`: how fast a backbone answers once trained, the number people choose an
efficient network by. Batch-1 latency (median and p90 over warm runs) and throughput at a serving batch, in
torch's inference mode, in whichever memory format (NCHW or channels_last) is faster for this arch here.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Any

from lightrecipe.errors import UserError
from lightrecipe.trainers.fields.arch_names import check_arch

WARMUP_RUNS = 10  # untimed: oneDNN/cuDNN pick their kernels and caches fill in the first few calls
RUNS = 50  # timed batch-1 runs: enough for a stable p90 (5 runs above it), under a few seconds for small nets
FORMAT_TRIALS = 5  # batch-1 runs per memory format when choosing one: the choice needs a clear winner only
SERVING_BATCH = 32  # a typical server micro-batch (TorchServe's and Triton's examples batch 8 to 64)
SERVING_RUNS = 5  # timed serving batches (each is 32 images, so this is as many images as 160 batch-1 runs)


def check_device(device: str) -> Any:
    """The torch device for `--device`; one that is not there (no CUDA, cuda:3 of 1 GPU) is a UserError."""
    import torch

    if device not in ("cpu",) and not device.startswith("cuda"):
        raise UserError(f"--device '{device}' is not a device here; valid: cpu, cuda, cuda:N")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"--device '{device}' is not a device name; valid: cpu, cuda, cuda:N") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (dev.index or 0) >= count:
            raise UserError(f"--device {device}: {count} CUDA devices visible here; valid: cpu"
                            + (f", cuda:0..cuda:{count - 1}" if count else ""))
    return dev


def device_name(dev: Any) -> str:
    """The chip a latency was measured on: the GPU's name, else the CPU model (the kernel's, else platform's)."""
    import torch

    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(arch: str, *, image_size: int = 224, device: str = "cpu", threads: int | None = None,
            runs: int = RUNS, warmup: int = WARMUP_RUNS) -> dict[str, Any]:
    """Latency of `arch`'s backbone (timm, untrained: the weights do not change the time) as one dict."""
    check_arch(arch, what="--arch")
    if image_size < 1:
        raise UserError(f"--image-size must be at least 1, got {image_size}")
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be at least 1, got {threads}")
    import timm
    import torch

    dev = check_device(device)
    threads = threads or len(os.sched_getaffinity(0))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = timm.create_model(arch, pretrained=False, num_classes=0).eval().to(dev)
        with torch.inference_mode():
            fmt = _faster_format(model, image_size, dev)
            model = model.to(memory_format=fmt)
            one = _times(model, _images(1, image_size, dev, fmt), warmup, runs)
            batch = _times(model, _images(SERVING_BATCH, image_size, dev, fmt), 2, SERVING_RUNS)
    finally:
        torch.set_num_threads(before)
    return {
        "arch": arch, "image_size": image_size, "device": str(dev), "device_name": device_name(dev),
        "threads": threads if dev.type == "cpu" else None,
        "memory_format": "channels_last" if fmt == torch.channels_last else "nchw",
        "batch1_ms_median": round(1000 * statistics.median(one), 3),
        "batch1_ms_p90": round(1000 * _p90(one), 3), "runs": runs,
        "serving_batch": SERVING_BATCH,
        "serving_images_per_s": round(SERVING_BATCH / statistics.median(batch), 1),
        "torch": torch.__version__,
    }


def _faster_format(model: Any, image_size: int, dev: Any) -> Any:
    """channels_last where it helps: a few warm batch-1 runs in each format, the faster median wins."""
    import torch

    best, best_s = torch.contiguous_format, float("inf")
    for fmt in (torch.contiguous_format, torch.channels_last):
        model = model.to(memory_format=fmt)
        seconds = statistics.median(_times(model, _images(1, image_size, dev, fmt), 2, FORMAT_TRIALS))
        if seconds < best_s:
            best, best_s = fmt, seconds
    return best


def _images(n: int, image_size: int, dev: Any, fmt: Any) -> Any:
    import torch

    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, image_size, image_size, generator=g).to(dev).contiguous(memory_format=fmt)


def _times(model: Any, x: Any, warmup: int, runs: int) -> list[float]:
    """Seconds per call; a CUDA call is waited for, so the clock sees the kernels, not their launch."""
    import torch

    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        model(x)
    sync()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model(x)
        sync()
        out.append(time.perf_counter() - t0)
    return out


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]
