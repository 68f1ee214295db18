"""What the collapse stop saves, and whether it ever stops a trial that would have finished in the top half.

Trains each recipe of a small grid to the end with train() (no stop), recording the per-epoch `feature_rank`
and val kNN, then applies the stop rule of `lightrecipe.search.tune.collapse` to each curve offline: the epoch it
would have fired at, the trial-epochs that saves, and the final rank of every trial it would have stopped.
The grid holds recipes known to collapse on the bundled digits (no warm-up, a large lr, a slow key encoder).
    .venv/bin/python benchmarks/bench_collapse.py [--epochs 10] [--set KEY=VALUE ...] [--threshold T ...]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch

from lightrecipe.search.store import records
from lightrecipe.search.tune import collapse
from lightrecipe.trainers.recipe import preset
from lightrecipe.trainers.run.train import train

GRID = {  # name -> changes to digits-small
    "digits-small": {},
    "no warm-up": dict(warmup_epochs=0.0),  # presets.py: "without warm-up the features first collapse"
    "lr 0.5, no warm-up": dict(base_lr=0.5, warmup_epochs=0.0),
    "key momentum 0.999": dict(key_momentum=0.999),
    "temperature 0.5": dict(temperature=0.5),
    "lr 1.0": dict(base_lr=1.0),
}


def run(name: str, changes: dict, epochs: int, overrides: list[str]) -> list[dict]:
    recipe = preset("digits-small", epochs=epochs, **changes).with_overrides(overrides)
    rows: list[dict] = []
    final = train(recipe, workdir=tempfile.mkdtemp(prefix="bench-collapse-"), device="cpu", report=rows.append)
    print(f"  {name}: final val kNN {final.get('knn_top1', float('nan')):.3f}, ranks "
          + " ".join(f"{r.get(collapse.RANK_KEY, float('nan')):.1f}" for r in rows), flush=True)
    return rows if final.get("state") == records.COMPLETE else rows + [{"epoch": epochs, "knn_top1": float("nan")}]


THRESHOLDS = (collapse.COLLAPSED_RANK, 5.0, 10.0, 30.0)  # the rule's own, then looser ones, replayed offline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threshold", type=float, action="append", default=None,
                        help=f"rank threshold to replay, repeatable (default: {', '.join(map(str, THRESHOLDS))})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    thresholds = args.threshold or list(THRESHOLDS)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    curves = {name: run(name, changes, args.epochs, args.overrides) for name, changes in GRID.items()}
    finals = {name: rows[-1]["knn_top1"] for name, rows in curves.items()}
    ranked = sorted(finals, key=lambda n: -finals[n] if finals[n] == finals[n] else float("inf"))
    top_half = set(ranked[: len(ranked) // 2])
    stops = {(name, th): next((r["epoch"] for r in rows if collapse.verdict(r, th)), None)
             for name, rows in curves.items() for th in thresholds}
    heads = "".join(f"{f'stop<{th:g}':>10}" for th in thresholds)
    print(f"\n{'recipe':<22}{'final kNN':>10}{'rank':>6}  top half?{heads}")
    for name in curves:
        cells = "".join(f"{stops[name, th] or '-':>10}" for th in thresholds)
        print(f"{name:<22}{finals[name]:>10.3f}{ranked.index(name) + 1:>6}  {'yes' if name in top_half else 'no':<9}{cells}")
    total = args.epochs * len(curves)
    print()
    for th in thresholds:
        saved = sum(args.epochs - stops[name, th] for name in curves if stops[name, th] is not None)
        wrong = [name for name in curves if stops[name, th] is not None and name in top_half]
        mark = " (the rule's)" if th == collapse.COLLAPSED_RANK else ""
        print(f"threshold {th:g}{mark}: trial-epochs saved {saved} of {total} ({100 * saved / total:.0f}%); "
              f"stopped a top-half trial: {', '.join(wrong) if wrong else 'never'}")


if __name__ == "__main__":
    main()
