"""Wall time of one training epoch on digits with 1 and with N data-parallel CPU processes (gloo).

Each repeat trains the same recipe for one epoch in a fresh run folder, once on one process (train() with every
core) and once through `launch(nproc=N)` (the cores split evenly between the N processes), alternately, so a
busy machine slows both alike. The figure is the epoch's own seconds from history.csv: the training steps and the
val kNN monitor, without process start-up, data loading or the final probe. Prints a table of medians and the
ratio against one process measured in the same run.

On one machine with C cores, N CPU processes share the same C cores that one process uses with C threads, so the
ratio measures what data parallelism costs here (gathers of key inputs and keys, gradient all-reduce, smaller
per-process matrix products), not a speed-up: more processes pay off when each brings its own device.

    .venv/bin/python benchmarks/bench_distributed.py [--repeats 3] [--nproc 2]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
from pathlib import Path

import torch

from lightrecipe.trainers.recipe import preset
from lightrecipe.trainers.run.launch import launch
from lightrecipe.trainers.run.train import train
from lightrecipe.words import counted

# digits-small at its own batch, split BN in 4 groups (2 per process with 2), one epoch on the whole train split
RECIPE = dict(epochs=1, batch_size=64, bn_splits=4, queue_size=256,
              probe_weight_decay=1e-4)  # one probe fit, not a grid


def epoch_seconds(run: Path) -> tuple[float, float]:
    with (run / "history.csv").open() as f:
        row = list(csv.DictReader(f))[-1]
    return float(row["epoch_seconds"]), float(row["images_per_s"])


def one_run(nproc: int, folder: Path) -> tuple[float, float]:
    recipe = preset("digits-small", **RECIPE)
    if nproc == 1:
        previous = torch.get_num_threads()
        torch.set_num_threads(len(os.sched_getaffinity(0)))
        try:
            train(recipe, workdir=folder, device="cpu")
        finally:
            torch.set_num_threads(previous)
    else:
        launch(recipe, workdir=folder, nproc=nproc, device="cpu")
    return epoch_seconds(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nproc", type=int, default=2)
    args = parser.parse_args()
    counts = (1, args.nproc)
    seconds: dict[int, list[float]] = {n: [] for n in counts}
    rates: dict[int, list[float]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory(prefix="lightrecipe-bench-ddp-") as tmp:
        for repeat in range(args.repeats):
            for n in counts:
                s, r = one_run(n, Path(tmp) / f"{n}-{repeat}")
                seconds[n].append(s)
                rates[n].append(r)
    cores = len(os.sched_getaffinity(0))
    print(f"one epoch of digits-small ({RECIPE}) on {counted(cores, 'CPU core')}, median of "
          f"{counted(args.repeats, 'run')}; "
          "seconds = training steps + val kNN")
    print(f"{'processes':>9} {'threads each':>12} {'epoch s':>8} {'images/s':>9} {'time vs 1':>9}")
    base = statistics.median(seconds[1])
    for n in counts:
        med = statistics.median(seconds[n])
        print(f"{n:>9} {max(1, cores // n):>12} {med:>8.2f} {statistics.median(rates[n]):>9.1f} {med / base:>9.2f}")


if __name__ == "__main__":
    main()
