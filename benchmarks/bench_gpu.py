"""The trainer's MoCo step on a GPU beside timm's supervised step for the same network, batch and precision.

For each arch (default mobilenetv3_large_100, efficientnet_b0, resnet50) at 224 px, batch 256, bf16 autocast and
channels_last, in one process, a pass of each in turn per repeat:
- moco: the trainer's own step at the ResNet-50 (MoCo v2) settings (split BatchNorm in 8 groups, shuffled keys,
  query forward and backward, key encoder forward, momentum update, queue) on two views made beforehand;
- views: the batched augmentation on the GPU that makes those two views from a uint8 batch;
- supervised: timm's training step for the arch (`timm.create_model(arch, num_classes=1000)`, cross-entropy,
  SGD with momentum), same batch size, autocast and memory format, on a fixed random batch as timm's benchmark.
Images/s are batch / median step time over the repeats (each pass: `--steps` steps, one wait at its end).
A MoCo v2 step does a supervised step's work plus a key forward (about 4/3 of it), so ~0.75x is the expected ratio.
`--variants bn_splits=1 channels_last=false` adds MoCo rows under those recipe overrides; `--profile` prints, per
arch and MoCo row, the CUDA kernels that took the most time over a few steps (torch.profiler).
The queue holds 1024 keys (the bundled digits' train split has 1078 images); MoCo v2's 65536 adds one 256 x 65536
x 128 product per step. Without CUDA it says so and exits 0.

    python benchmarks/bench_gpu.py [--archs A B] [--batch 256] [--image-size 224] [--steps 10] [--repeats 5]
                                   [--variants OVERRIDES ...] [--profile] [--json F]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import timm
import torch
import torch.nn.functional as F

from lightrecipe.trainers.bench import bench_recipe
from lightrecipe.trainers.data.datasets import load_dataset
from lightrecipe.trainers.run.trainer import Trainer

ARCHS = ["mobilenetv3_large_100", "efficientnet_b0", "resnet50"]


class SupervisedStep:
    """timm's supervised training step, the baseline: one forward, cross-entropy, backward, SGD update."""

    def __init__(self, arch: str, batch: int, size: int, device: torch.device):
        self.model = timm.create_model(arch, pretrained=False, num_classes=1000).to(device)
        self.model = self.model.to(memory_format=torch.channels_last).train()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        g = torch.Generator(device=device).manual_seed(0)
        self.x = torch.randn(batch, 3, size, size, device=device, generator=g).contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, 1000, (batch,), device=device, generator=g)

    def __call__(self, step: int) -> torch.Tensor:
        with torch.autocast(self.x.device.type, dtype=torch.bfloat16):
            loss = F.cross_entropy(self.model(self.x), self.y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()


class MoCoStep:
    """The trainer's step on pre-made views, and its view-making on a uint8 batch, timed apart."""

    def __init__(self, arch: str, batch: int, size: int, device: torch.device, overrides: list[str] = ()):
        recipe = bench_recipe(arch, batch, size, ["precision=bf16", "channels_last=true", *overrides])
        data = load_dataset(recipe)
        self.trainer = Trainer.build(recipe, device, len(data.train))
        self.trainer.model.train()
        images, _ = next(iter(data.train.batches(batch, shuffle=True, drop_last=True, device=device,
                                                 generator=torch.Generator().manual_seed(0))))
        self.images = images
        self.views = self.trainer.views(images)
        self.bn_splits = recipe.bn_splits

    def __call__(self, step: int) -> torch.Tensor:
        return self.trainer.optimize(self.views, step)

    def make_views(self, step: int) -> torch.Tensor:
        return self.trainer.views(self.images)[0]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pass_seconds(step, steps: int, device: torch.device) -> float:
    """Seconds per step over `steps` steps queued back to back, waited for once at the end."""
    synchronize(device)
    t0 = time.perf_counter()
    for i in range(steps):
        out = step(i)
    out.float().sum().item()
    synchronize(device)
    return (time.perf_counter() - t0) / steps


def peak_gib(step, device: torch.device) -> float | None:
    """The most GPU memory two steps hold at once (None off CUDA)."""
    if device.type != "cuda":
        return None
    torch.cuda.reset_peak_memory_stats(device)
    pass_seconds(step, 2, device)
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2)


def print_profile(title: str, step, device: torch.device, steps: int = 3) -> None:
    """The kernels that took the most device time over `steps` steps, as torch.profiler tabulates them."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        pass_seconds(step, steps, device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"-- {title}: {steps} steps, top kernels by self time", flush=True)
    print(prof.key_averages().table(sort_by=sort, row_limit=15, max_name_column_width=60), flush=True)


def measure(arch: str, batch: int, size: int, steps: int, repeats: int, device: torch.device,
            variants: list[str], profile: bool = False) -> list[dict]:
    """One row per step kind: supervised, the MoCo step, its views, and the MoCo step under each variant's
    recipe overrides (e.g. 'bn_splits=1'), all timed in turn in each repeat."""
    moco = MoCoStep(arch, batch, size, device)
    timed = {"supervised": SupervisedStep(arch, batch, size, device), "moco": moco, "views": moco.make_views}
    for variant in variants:
        timed[f"moco {variant}"] = MoCoStep(arch, batch, size, device, variant.split(","))
    for step in timed.values():  # warm-up: cuDNN picks its kernels, the allocator fills its pools
        pass_seconds(step, 3, device)
    seconds = {name: [] for name in timed}
    for _ in range(repeats):
        for name, step in timed.items():
            seconds[name].append(pass_seconds(step, steps, device))
    med = {name: statistics.median(values) for name, values in seconds.items()}
    if profile:
        for name, step in timed.items():
            if name.startswith("moco"):
                print_profile(f"{arch}, {name}", step, device)
    rows = []
    for name, step in timed.items():
        per_step = med[name]
        rows.append({
            "arch": arch, "step": name, "image_size": size, "batch": batch, "precision": "bf16",
            "images_per_s": round(batch / per_step, 1), "step_ms": round(1000 * per_step, 2),
            "x_supervised": round(med["supervised"] / per_step, 3) if name != "views" else None,
            "peak_gib": peak_gib(step, device) if name != "views" else None,
            "repeats": repeats, "steps_per_pass": steps,
        })
    rows.append({**rows[1], "step": "moco with views", "images_per_s": round(batch / (med["moco"] + med["views"]), 1),
                 "step_ms": round(1000 * (med["moco"] + med["views"]), 2),
                 "x_supervised": round(med["supervised"] / (med["moco"] + med["views"]), 3)})
    del timed, moco
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archs", nargs="+", default=ARCHS)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variants", nargs="*", default=[],
                        help="more MoCo rows under recipe overrides, e.g. bn_splits=1 channels_last=false")
    parser.add_argument("--profile", action="store_true", help="print each MoCo row's top kernels")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--device", default="cuda", help="cpu: a quick check that the script runs (tiny sizes)")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here: nothing to measure")
        return
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True  # as timm's train.py: both steps get cuDNN's fastest kernels
    chip = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{chip}, torch {torch.__version__}, timm {timm.__version__}, "
          f"batch {args.batch}, {args.image_size} px, bf16 autocast, channels_last; "
          f"median of {args.repeats} passes of {args.steps} steps; MoCo rows with split BatchNorm train in NCHW "
          "on a GPU (trainer.trains_channels_last)")
    rows = []
    print(f"{'arch':24} {'step':32} {'images/s':>9} {'ms/step':>8} {'x supervised':>12} {'peak GiB':>8}")
    for arch in args.archs:
        for row in measure(arch, args.batch, args.image_size, args.steps, args.repeats, device, args.variants,
                           args.profile):
            rows.append(row)
            ratio = "" if row["x_supervised"] is None else f"{row['x_supervised']:.2f}"
            peak = "" if row["peak_gib"] is None else f"{row['peak_gib']:.1f}"
            print(f"{arch:24} {row['step']:32} {row['images_per_s']:>9.0f} {row['step_ms']:>8.1f} {ratio:>12} "
                  f"{peak:>8}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
