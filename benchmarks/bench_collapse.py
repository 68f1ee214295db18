"""The collapse stop replayed: which trials it would stop, when, and whether one of them would have finished well.

Trains each recipe of a small grid to the end with train() (no stop), recording the per-epoch monitor (val kNN
and chance, `feature_rank`, `feature_spread`), then applies rules offline: the stop rule of
`lightrecipe.search.tune.collapse`, and the effective rank alone (the rule before it), and prints the epoch each
would fire at and the trial-epochs that saves. The grid holds healthy recipes and recipes pushed towards collapse
on the bundled digits: no warm-up, very large lr, a far too low temperature, 4-image batches of in-batch negatives.
    .venv/bin/python benchmarks/bench_collapse.py [--epochs 8] [--threads 1] [--save curves.json]
    .venv/bin/python benchmarks/bench_collapse.py --replay curves.json      # the table again, no training
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile

import torch

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
    "temperature 0.01": dict(temperature=0.01),
    "lr 5.0, no warm-up": dict(base_lr=5.0, warmup_epochs=0.0),
    "in-batch, batch 4": dict(queue_size=0, batch_size=4, bn_splits=2),
}
RANK_ONLY = collapse.Rule(near_chance=math.inf, gathered_spread=-1.0)  # the effective rank alone, as before


def curves(epochs: int) -> dict[str, dict]:
    out = {}
    for name, changes in GRID.items():
        rows: list[dict] = []
        final = train(preset("digits-small", epochs=epochs, **changes),
                      workdir=tempfile.mkdtemp(prefix="bench-collapse-"), device="cpu", report=rows.append)
        out[name] = {"rows": rows, "final": {k: v for k, v in final.items() if isinstance(v, (int, float, str))}}
        print(f"  {name}: final val kNN {final.get('knn_top1', math.nan):.3f}", flush=True)
    return out


def with_chance(runs: dict[str, dict]) -> dict[str, dict]:
    """Curves saved by a trainer that did not report `knn_chance` yet get it from the data: it is the val split's
    commonest-class share, the same for every recipe of the grid (one split of the digits)."""
    from lightrecipe.trainers.data.datasets import load_dataset
    from lightrecipe.trainers.run.scoring import chance

    if all(collapse.CHANCE_KEY in r for run in runs.values() for r in run["rows"]):
        return runs
    share = chance(load_dataset(preset("digits-small")).val.labels)
    for run in runs.values():
        for row in run["rows"]:
            row.setdefault(collapse.CHANCE_KEY, share)
    return runs


def stop_epoch(rows: list[dict], rule: collapse.Rule) -> int | None:
    return next((int(r["epoch"]) for r in rows if collapse.verdict(r, rule)), None)


def table(runs: dict[str, dict]) -> None:
    finals = {name: run["rows"][-1].get("knn_top1", math.nan) for name, run in runs.items()}
    ranked = sorted(finals, key=lambda n: -finals[n] if math.isfinite(finals[n]) else math.inf)
    top_half = set(ranked[: len(ranked) // 2])
    epochs = max(len(run["rows"]) for run in runs.values())
    print(f"\n{'recipe':<20}{'val kNN, epochs 1..' + str(epochs):<42}{'min spread':>11}{'min rank':>9}"
          f"{'final':>7}{'top half':>9}{'stop: rule':>11}{'rank alone':>11}")
    for name, run in runs.items():
        rows = run["rows"]
        knn = " ".join(f"{r['knn_top1']:.2f}" for r in rows)
        cells = [stop_epoch(rows, collapse.RULE), stop_epoch(rows, RANK_ONLY)]
        print(f"{name:<20}{knn:<42}{min(r['feature_spread'] for r in rows):>11.3f}"
              f"{min(r['feature_rank'] for r in rows):>9.1f}{finals[name]:>7.3f}"
              f"{'yes' if name in top_half else 'no':>9}" + "".join(f"{c or '-':>11}" for c in cells))
    chance = runs[next(iter(runs))]["rows"][0].get("knn_chance", math.nan)
    print(f"\nchance (the commonest val class): {chance:.3f}; the rule stops at val kNN <= chance + "
          f"{collapse.RULE.near_chance:g} with spread < {collapse.RULE.gathered_spread:g} or rank < "
          f"{collapse.RULE.one_line_rank:g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, as a sweep trial on 1 CPU (default 1)")
    parser.add_argument("--save", metavar="FILE", help="write the trained curves as JSON")
    parser.add_argument("--replay", metavar="FILE", help="print the table from curves saved by --save")
    args = parser.parse_args()
    if args.replay:
        runs = with_chance(json.loads(open(args.replay).read()))
    else:
        torch.set_num_threads(args.threads)
        runs = curves(args.epochs)
        if args.save:
            with open(args.save, "w") as f:
                json.dump(runs, f)
    table(runs)


if __name__ == "__main__":
    main()
