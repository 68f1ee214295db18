"""Trainer step throughput against a plain hand-written MoCo v2 step, and the data + augmentation share.

"plain" is MoCo v2 written out in the most direct way with ordinary BatchNorm: no splitting, no shuffle, one key
forward. "trainer" is the trainer's own step at the MoCo v2 preset's default bn_splits (8): split BatchNorm in both
encoders and shuffled keys. Both get the same timm model, batch, image size, loss and queue, on the same pre-made
views, measured one step of each in turn in one process (medians over every step), so the ratio is the whole cost of
split BN and the trainer's extras even on a machine others are busy on.
Target: ratio >= 0.95 for mobilenetv3_large_100 at 32 px and resnet18 at 64 px. Prints a table.

    .venv/bin/python benchmarks/bench_trainer.py [--repeats 5] [--steps 6] [--threads N]
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
from lightrecipe.trainers.data.datasets import load_dataset
from lightrecipe.trainers.method.model import backbone_dim
from lightrecipe.trainers.run.trainer import Trainer
from lightrecipe.words import counted

CASES = [("mobilenetv3_large_100", 32), ("mobilenetv3_large_100", 64), ("resnet18", 32), ("resnet18", 64)]
BATCH = 64


class PlainMoCoV2:
    """MoCo v2 written out by hand in the most direct way, plain BatchNorm over the whole batch: the baseline."""

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
            k = F.normalize(self.k(x2), dim=1)  # one key forward, statistics over the whole batch
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


def timed(step, *args) -> float:
    started = time.perf_counter()
    step(*args)
    return time.perf_counter() - started


def measure(arch, size, repeats, steps):
    """Median seconds per step of the trainer and of plain MoCo v2, one step of each in turn (so a busy machine
    slows both alike), and the median milliseconds of making one batch's views."""
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
    for i in range(2):  # warm-up: allocator, kernels
        trainer.optimize(views[i], i).item()
        plain.step(*views[i])
    ours, base, data_s = [], [], []
    for i in range(repeats * steps):
        x1, x2 = views[i % len(views)]
        ours.append(timed(lambda: trainer.optimize((x1, x2), i).item()))  # .item() waits for the whole step
        base.append(timed(plain.step, x1, x2))
        data_s.append(timed(trainer.views, batches[i % len(batches)]))
    return statistics.median(ours), statistics.median(base), 1000 * statistics.median(data_s)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch CPU threads (default: every core; 1 on a machine others are busy on)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"batch {BATCH}, trainer bn_splits {bench_recipe(CASES[0][0], BATCH, CASES[0][1]).bn_splits}, "
          f"CPU threads {torch.get_num_threads()}, median of {counted(args.repeats * args.steps, 'step')} of each, "
          "in turn")
    print(f"{'arch':<24}{'px':>4}{'trainer img/s':>15}{'plain img/s':>13}{'ratio':>7}{'data+aug ms':>13}{'step ms':>9}{'data share':>12}")
    for arch, size in CASES:
        ours_s, base_s, data_ms = measure(arch, size, args.repeats, args.steps)
        ours, base, step_ms = BATCH / ours_s, BATCH / base_s, 1000 * ours_s
        share = data_ms / (data_ms + step_ms)
        print(f"{arch:<24}{size:>4}{ours:>15.1f}{base:>13.1f}{ours / base:>7.3f}{data_ms:>13.2f}{step_ms:>9.1f}{share:>12.1%}")


if __name__ == "__main__":
    main()
