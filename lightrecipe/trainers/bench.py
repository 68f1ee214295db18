"""`lightrecipe bench train`: throughput of the trainer's own step on the bundled data."""

from __future__ import annotations

import resource
import time
from typing import Any

import torch

from lightrecipe.trainers.data.datasets import load_dataset
from lightrecipe.trainers.recipe import preset
from lightrecipe.trainers.run.trainer import Trainer, resolve_device

QUEUE = 1024  # below the 1078 digits train images (a queue must be smaller than the train split); fits power-of-two batches


def bench_recipe(arch: str, batch_size: int, image_size: int, overrides: list[str] | None = None):
    """MoCo v2 settings at the given model, batch and image size, on the bundled digits."""
    queue = max(batch_size, QUEUE // batch_size * batch_size)  # a multiple of the batch, as the queue needs
    recipe = preset("resnet50-mocov2", arch=arch, batch_size=batch_size, image_size=image_size,
                    dataset="digits", queue_size=queue, epochs=1)
    return recipe.with_overrides(overrides or [])


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_train(*, arch: str, batch_size: int, image_size: int, steps: int, warmup_steps: int = 3,
                device: str | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Median-free raw timing: total step time and the share spent loading and augmenting batches."""
    recipe = bench_recipe(arch, batch_size, image_size, overrides)
    dev = resolve_device(device)
    data = load_dataset(recipe)
    trainer = Trainer.build(recipe, dev, len(data.train))
    trainer.model.train()
    batches = _endless(data.train, recipe.batch_size, dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    data_s = step_s = 0.0
    for i in range(warmup_steps + steps):
        t0 = time.perf_counter()
        views = trainer.views(next(batches))
        synchronize(dev)
        t1 = time.perf_counter()
        trainer.optimize(views, i).item()  # .item() waits for the step, so the clock sees all of it
        t2 = time.perf_counter()
        if i >= warmup_steps:
            data_s += t1 - t0
            step_s += t2 - t0
    peak = (torch.cuda.max_memory_allocated(dev) if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {
        "arch": arch, "batch_size": batch_size, "image_size": image_size, "device": str(dev),
        "images_per_s": round(steps * batch_size / step_s, 1),
        "step_ms": round(1000 * step_s / steps, 2),
        "data_ms": round(1000 * data_s / steps, 2),
        "peak_mem_mb": round(peak / 2**20, 1),
    }


def _endless(split, batch_size: int, device: torch.device):
    epoch = 0
    while True:
        g = torch.Generator()
        g.manual_seed(epoch)
        yield from (images for images, _ in split.batches(batch_size, shuffle=True, drop_last=True,
                                                           device=device, generator=g))
        epoch += 1
