"""Does a warm start pay? Cold and warm studies of two archs over several sweep seeds, on the digits folder.

Per sweep seed S, three real sweeps of the same space, trials and epochs:
  cold-sS      both archs from scratch (the ResNet-50 baseline first, then TPE);
  warm-mn-sS   MobileNet-V3 warm-started from cold-sS's ResNet-10-T study (its top --warm-top recipes);
  warm-rn-sS   ResNet-10-T warm-started from cold-sS's MobileNet-V3 study (the reverse direction).
Each warm study is compared with the cold study of the same arch and seed. Printed per direction, over seeds
(mean with a 95% t-interval; `k/N` counts seeds): the best val kNN of warm and cold, their paired difference,
the best after the first 4 finished trials (the baseline and the 3 warm-started recipes in a warm study), how
often and after how many trials warm reached cold's best, the device-seconds each study cost, and the
random-init floor. Sweeps already finished in --out are kept (delete a folder to run it again).

    python benchmarks/warm_start_study.py --out runs/warm-measure --seeds 0-9     # ~45 min on 2 idle cores
    python benchmarks/warm_start_study.py --out runs/warm-measure --seeds 0-9 --analyse-only
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lightrecipe.reports import selections, tables
from lightrecipe.reports.figures.warm import warm_data
from lightrecipe.stats import t_interval
from lightrecipe.words import counted

MOBILENET, RESNET = "mobilenetv3_small_050", "resnet10t"
DIRECTIONS = {"warm-mn": (MOBILENET, RESNET), "warm-rn": (RESNET, MOBILENET)}  # folder -> (target, source arch)
EARLY = 4  # the baseline and three warm-started recipes: where a warm start can only help
DONE = ".done"


def seeds_of(text: str) -> list[int]:
    """'0-9' or '0,1,5' -> the seeds."""
    if "-" in text:
        first, last = text.split("-")
        return list(range(int(first), int(last) + 1))
    return [int(s) for s in text.split(",")]


def sweep_args(args: argparse.Namespace, data: Path) -> list[str]:
    return ["--space", "digits-demo", "--trials", str(args.trials), "--epochs", "2", "--grace-epochs", "1",
            "--set", "dataset=imagefolder", "--set", f"data_root={data}", "--set", "data_fraction=0.25",
            "--set", "probe_weight_decay=0.01"]


def run_sweeps(args: argparse.Namespace, out: Path) -> None:
    from lightrecipe.trainers.data.digits_folder import write_digits_folder

    data = write_digits_folder(out / "data" / "digits")
    common = [sys.executable, "-m", "lightrecipe.cli", "sweep", *sweep_args(args, data), "--warm-top", "3"]
    for seed in seeds_of(args.seeds):
        plan = {f"cold-s{seed}": ["--arch", MOBILENET, "--arch", RESNET]}
        for name, (target, source) in DIRECTIONS.items():
            plan[f"{name}-s{seed}"] = ["--arch", target, "--warm-start", f"{out / f'cold-s{seed}'}:{source}"]
        for name, extra in plan.items():
            folder = out / name
            if (folder / DONE).exists():
                continue
            started = time.monotonic()
            with open(out / f"{name}.log", "w") as log:
                code = subprocess.run([*common, *extra, "--seed", str(seed), "--out", str(folder)], stdout=log,
                                      stderr=subprocess.STDOUT, env={**os.environ, "MPLBACKEND": "Agg"}).returncode
            if code != 0:
                raise SystemExit(f"{name}: the sweep failed (exit {code}); see {out / f'{name}.log'}")
            (folder / DONE).touch()
            print(f"  {name}: {time.monotonic() - started:.0f} s", flush=True)


def per_seed(out: Path, seeds: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per (direction, seed): cold and warm best, best after EARLY trials, where warm reached cold's best,
    device-seconds; and the floor rows of every cold study."""
    rows, floors = [], []
    for seed in seeds:
        cold = out / f"cold-s{seed}"
        for name, (target, source) in DIRECTIONS.items():
            frames = tables.load([str(cold), str(out / f"{name}-s{seed}")])
            frames = frames._replace(trials=frames.trials[frames.trials["arch"] == target])
            data = warm_data(frames)
            pair = data.attrs["pairs"].iloc[0]
            warm, cold_curve = (data[data["kind"] == kind] for kind in ("warm", "cold"))
            rows.append(dict(
                direction=f"{target} from {source}", seed=seed, cold_best=pair["cold_best"],
                warm_best=pair["warm_best"], cold_early=_best_after(cold_curve, EARLY),
                warm_early=_best_after(warm, EARLY), warm_place=pair["warm_place"], cold_place=pair["cold_place"],
                cold_device_s=cold_curve["device_seconds"].max(), warm_device_s=warm["device_seconds"].max(),
                warm_recipes=int(warm["warm_started"].sum())))
            floors.append(frames.floor[frames.floor["arch"] == target])
    return pd.DataFrame(rows), pd.concat(floors, ignore_index=True)


def _best_after(curve: pd.DataFrame, trials: int) -> float:
    return float(curve[curve["place"] <= trials]["best_so_far"].max())


def interval(values: pd.Series) -> str:
    mean, half = t_interval(list(values))
    return f"{mean:5.1f} +- {half:4.1f}" if math.isfinite(half) else f"{mean:5.1f}"


def report(frame: pd.DataFrame, floors: pd.DataFrame, args: argparse.Namespace) -> None:
    floor = selections.floor_by_arch(floors, "knn_top1")
    seeds = sorted(frame["seed"].unique())
    print(f"\nWarm against cold: digits-demo space, {args.trials} trials of 2 epochs per study, ASHA from epoch 1, "
          f"--warm-top 3, sweep seeds {seeds[0]}-{seeds[-1]} ({len(seeds)}); val kNN top-1 (%), mean +- 95% "
          "t-interval over seeds")
    for direction, part in frame.groupby("direction", sort=False):
        target = direction.split()[0]
        diff = part["warm_best"] - part["cold_best"]
        early = part["warm_early"] - part["cold_early"]
        reached = part.dropna(subset=["warm_place"])
        n = len(part)
        print(f"\n{direction}")
        print(f"  best, cold                      {interval(part['cold_best'])}")
        print(f"  best, warm                      {interval(part['warm_best'])}")
        print(f"  warm - cold (paired)            {interval(diff)}   warm higher {int((diff > 0).sum())}/{n}, "
              f"equal {int((diff == 0).sum())}/{n}")
        print(f"  best of first {EARLY} trials, warm - cold {interval(early)}   warm higher {int((early > 0).sum())}/{n}")
        print(f"  warm reached cold's best        {len(reached)}/{n} seeds; median trial {_median(reached['warm_place'])} "
              f"(cold found it at trial {_median(reached['cold_place'])})")
        print(f"  device-s per study, cold / warm {part['cold_device_s'].median():.0f} / "
              f"{part['warm_device_s'].median():.0f} (median; the machine's load moves these)")
        print(f"  warm-started recipes run       {part['warm_recipes'].sum()} over {n} studies")
        if target in floor.index:
            print(f"  random-init floor               {100 * floor.loc[target, 'value']:5.1f} "
                  f"(init {counted(int(floor.loc[target, 'n']), 'seed')}: {floor.loc[target, 'seeds']})")
    print("\nper seed (cold best / warm best, first-4 cold / warm):")
    for direction, part in frame.groupby("direction", sort=False):
        cells = [f"s{r.seed} {r.cold_best:.1f}/{r.warm_best:.1f} ({r.cold_early:.1f}/{r.warm_early:.1f})"
                 for r in part.itertuples()]
        print(f"  {direction}: " + ", ".join(cells))


def _median(values: pd.Series) -> str:
    return f"{np.median(values):g}" if len(values) else "-"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/warm-measure"))
    p.add_argument("--seeds", default="0-9", help="sweep seeds: '0-9' or '0,1,5'")
    p.add_argument("--trials", type=int, default=16, help="trials per study, the baseline included")
    p.add_argument("--analyse-only", action="store_true", help="print the tables of sweeps already run")
    args = p.parse_args()
    out = args.out.expanduser().resolve()
    if not args.analyse_only:
        out.mkdir(parents=True, exist_ok=True)
        run_sweeps(args, out)
    frame, floors = per_seed(out, seeds_of(args.seeds))
    report(frame, floors, args)


if __name__ == "__main__":
    main()
