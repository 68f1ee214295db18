"""Does the small-data preset learn? Random-init features against the trained run, on the bundled digits.

Prints val/test kNN and linear-probe top-1 of the randomly initialised backbone next to the trained one.
    .venv/bin/python benchmarks/learning_check.py [--preset digits-small] [--epochs N] [--set KEY=VALUE] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from lightrecipe.search.floor import random_init_scores  # the floor a sweep and `confirm` record
from lightrecipe.trainers.recipe import preset
from lightrecipe.trainers.run.train import train
from lightrecipe.words import counted


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="digits-small")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    recipe = preset(args.preset) if args.epochs is None else preset(args.preset, epochs=args.epochs)
    recipe = recipe.with_overrides(args.overrides)
    before = random_init_scores(recipe)
    started = time.perf_counter()
    curve = []
    after = train(recipe, workdir=args.out or tempfile.mkdtemp(prefix="learning-check-"), device="cpu",
                  report=lambda m: curve.append((m["epoch"], m["knn_top1"])))
    minutes = (time.perf_counter() - started) / 60
    print(f"{args.preset}: {recipe.arch} at {recipe.image_size} px, {counted(recipe.epochs, 'epoch')} in "
          f"{minutes:.1f} min")
    print(f"{'':<14}{'val kNN':>9}{'val linear':>12}{'test kNN':>10}{'test linear':>13}")
    for name, m in (("random init", before), ("trained", after)):
        print(f"{name:<14}{m['knn_top1']:>9.3f}{m['linear_top1']:>12.3f}{m['test_knn_top1']:>10.3f}{m['test_linear_top1']:>13.3f}")
    marks = [f"{e}:{k:.3f}" for e, k in curve if e % 10 == 0 or e == 1]
    print("val kNN by epoch:", " ".join(marks))


if __name__ == "__main__":
    main()
