"""Does `train --nproc 2` learn what one process learns? Val and test kNN of the README's `--nproc` command, per seed.

Three ways to run the same recipe and seed: one process on 1 thread, one process on 2 threads, and 2 processes of
1 thread each (`launch`, gloo). The 2 processes draw the same views and the same batches as one process, so they
differ from it only by float rounding (the order of sums); the one process on 2 threads differs from the one on
1 thread by float rounding too, and serves as the yardstick: early MoCo training on digits amplifies a rounding
difference of 1e-8 in the weights about 30-fold per step, so after two epochs each of the three is in effect
another draw of the run. The table shows whether 2 processes sit within that spread, next to the untrained
backbone's floor for the same seed.

    .venv/bin/python benchmarks/bench_nproc_accuracy.py [--seeds 0 1 2]

About 2 minutes per run on 2 idle cores (9 runs for 3 seeds).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from lightrecipe.reports.text import plus_minus
from lightrecipe.search.floor import random_init_scores
from lightrecipe.stats import t_interval
from lightrecipe.trainers.recipe import preset
from lightrecipe.trainers.run.launch import launch
from lightrecipe.trainers.run.train import train

# The README's command: lightrecipe train --preset digits-small --set epochs=2 --set bn_splits=4 --nproc 2 --device cpu
RECIPE = dict(epochs=2, bn_splits=4)
WAYS = ("1 process, 1 thread", "1 process, 2 threads", "2 processes")
METRICS = ("knn_top1", "test_knn_top1")


def run(way: str, seed: int, folder: Path) -> dict:
    recipe = preset("digits-small", seed=seed, **RECIPE)
    if way == "2 processes":
        return launch(recipe, workdir=folder, nproc=2, device="cpu")  # the cores split: 1 thread each
    previous = torch.get_num_threads()
    torch.set_num_threads(1 if way.endswith("1 thread") else 2)
    try:
        return train(recipe, workdir=folder, device="cpu")
    finally:
        torch.set_num_threads(previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    results: dict[str, list[dict]] = {way: [] for way in WAYS}
    floors = []
    with tempfile.TemporaryDirectory(prefix="lightrecipe-bench-nproc-") as tmp:
        for seed in args.seeds:
            for way in WAYS:  # interleaved: a busy machine slows every way alike (accuracy does not depend on it)
                results[way].append(run(way, seed, Path(tmp) / f"{way}-{seed}"))
            floors.append(random_init_scores(preset("digits-small", seed=seed, **RECIPE)))
    print(f"digits-small, {RECIPE}, seeds {args.seeds}; val / test kNN top-1 in %")
    header = f"{'seed':>9} " + " ".join(f"{way:>22}" for way in WAYS) + f" {'random init':>14}"
    print(header)
    for i, seed in enumerate(args.seeds):
        cells = [" / ".join(f"{100 * results[way][i][m]:.1f}" for m in METRICS) for way in WAYS]
        floor = " / ".join(f"{100 * floors[i][m]:.1f}" for m in METRICS)
        print(f"{seed:>9} " + " ".join(f"{c:>22}" for c in cells) + f" {floor:>14}")
    for m in METRICS:
        cells = [plus_minus(*(100 * v for v in t_interval([r[m] for r in results[way]]))) for way in WAYS]
        floor = plus_minus(*(100 * v for v in t_interval([f[m] for f in floors])))
        print(f"{'mean ' + ('val' if m == 'knn_top1' else 'test'):>9} " + " ".join(f"{c:>22}" for c in cells)
              + f" {floor:>14}")
    base = results[WAYS[0]]
    for way in WAYS[1:]:
        gaps = [100 * abs(r["knn_top1"] - b["knn_top1"]) for r, b in zip(results[way], base)]
        print(f"{way} vs {WAYS[0]}: val kNN differs by {sum(gaps) / len(gaps):.1f} points on average "
              f"(largest {max(gaps):.1f})")


if __name__ == "__main__":
    main()
