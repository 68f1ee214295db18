"""Trainer step throughput against a plain hand-written MoCo v2 step, and the data + augmentation share.

Both steps get the same timm model, batch, image size, MoCo v2 loss, queue and split-BN key encoder, on
the same pre-made views, measured alternately in one process. Prints a table: median of several runs.

    .venv/bin/python benchmarks/bench_trainer.py [--repeats 5] [--steps 6]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

from lightrecipe.trainers.bench import bench_recipe
from lightrecipe.trainers.data import load_dataset
from lightrecipe.trainers.model import backbone_dim
from lightrecipe.trainers.train import Trainer

CASES = [("mobilenetv3_large_100", 32), ("mobilenetv3_large_100", 64), ("resnet18", 32), ("resnet18", 64)]
BATCH = 64


class PlainMoCoV2:
    """MoCo v2 written out by hand in the most direct way: the baseline the trainer must keep up with."""

    def __init__(self, recipe):
        torch.manual_seed(0)
        self.r = recipe
        backbone = timm.create_model(recipe.arch, pretrained=False, num_classes=0)
        dim = backbone_dim(backbone)
        self.q = nn.Sequential(backbone, nn.Linear(dim, 2048), nn.ReLU(inplace=True), nn.Linear(2048, 128))
        self.k = copy.deepcopy(self.q)
        for p in self.k.parameters():
            p.requires_grad_(False)
        self.queue = F.normalize(torch.randn(recipe.queue_size, 128), dim=1)
        self.ptr = 0
        self.opt = torch.optim.SGD(self.q.parameters(), lr=recipe.lr, momentum=0.9, weight_decay=recipe.weight_decay)

    def step(self, x1, x2):
        with torch.no_grad():
            for pk, pq in zip(self.k.parameters(), self.q.parameters()):
                pk.mul_(self.r.key_momentum).add_(pq, alpha=1 - self.r.key_momentum)
            idx = torch.randperm(len(x2))
            k = torch.cat([self.k(c) for c in x2[idx].chunk(self.r.bn_splits)])[torch.argsort(idx)]
            k = F.normalize(k, dim=1)
        q = F.normalize(self.q(x1), dim=1)
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ self.queue.t()], dim=1) / self.r.temperature
        loss = F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long))
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            self.queue[self.ptr:self.ptr + len(k)] = k
            self.ptr = (self.ptr + len(k)) % len(self.queue)
        return loss.item()


def images_per_s(step, views, steps):
    started = time.perf_counter()
    for i in range(steps):
        step(*views[i % len(views)], i)
    return steps * BATCH / (time.perf_counter() - started)


def measure(arch, size, repeats, steps):
    recipe = bench_recipe(arch, BATCH, size)
    data = load_dataset(recipe)
    trainer = Trainer.build(recipe, torch.device("cpu"), len(data.train))
    trainer.model.train()
    plain = PlainMoCoV2(recipe)
    plain.q.train()
    plain.k.train()
    batches = [img for img, _ in data.train.batches(BATCH, shuffle=True, drop_last=True, device=torch.device("cpu"),
                                                    generator=torch.Generator().manual_seed(0))]
    views = [trainer.views(b) for b in batches[:4]]
    ours_fn = lambda x1, x2, i: trainer.optimize((x1, x2), i).item()  # noqa: E731
    plain_fn = lambda x1, x2, i: plain.step(x1, x2)  # noqa: E731
    images_per_s(ours_fn, views, 2)  # warm-up: allocator, kernels
    images_per_s(plain_fn, views, 2)
    ours, base, data_ms, step_ms = [], [], [], []
    for _ in range(repeats):
        ours.append(images_per_s(ours_fn, views, steps))
        base.append(images_per_s(plain_fn, views, steps))
        t0 = time.perf_counter()
        for b in batches[:steps]:
            trainer.views(b)
        data_ms.append(1000 * (time.perf_counter() - t0) / steps)
        step_ms.append(1000 * BATCH / ours[-1])
    return statistics.median(ours), statistics.median(base), statistics.median(data_ms), statistics.median(step_ms)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    print(f"batch {BATCH}, CPU threads {torch.get_num_threads()}, median of {args.repeats} runs x {args.steps} steps")
    print(f"{'arch':<24}{'px':>4}{'trainer img/s':>15}{'plain img/s':>13}{'ratio':>7}{'data+aug ms':>13}{'step ms':>9}{'data share':>12}")
    for arch, size in CASES:
        ours, base, data_ms, step_ms = measure(arch, size, args.repeats, args.steps)
        share = data_ms / (data_ms + step_ms)
        print(f"{arch:<24}{size:>4}{ours:>15.1f}{base:>13.1f}{ours / base:>7.3f}{data_ms:>13.2f}{step_ms:>9.1f}{share:>12.1%}")


if __name__ == "__main__":
    main()
