"""Sweep overhead and ASHA savings, printed as tables (no timed asserts).

1. Overhead: N identical short trainings through `lightrecipe sweep` (concurrency 1) against `train()` called
   N times in one process, both as fresh processes timed from the outside (imports, Ray start-up and
   shutdown included), each trial and each direct call with the same number of CPU threads. Median of
   --repeats runs. Then where the sweep's extra time goes, from the trial database's timestamps: start-up
   before the first trial, the first trial's worker start, the trials, the gaps between them, and the end.
   Then Ray Tune alone, run as the sweep runs it with N trials that only import torch and timm and report each
   epoch: the overhead no sweep made of Ray Tune trials can go below here, and the trial length at which +5%
   is within reach.
   Then the same sweep at concurrency 2: its speed-up.
2. ASHA savings: a real sweep of the tiny test space with ASHA, and the same sweep (same seed, so the same
   sampled recipes while TPE is in its random start-up phase) with pruning off. Reports epochs run over
   trials x max epochs, and whether the best trial of the full sweep survived ASHA.

    python benchmarks/bench_sweep.py                 # defaults: about 15 minutes on 2 busy cores
    python benchmarks/bench_sweep.py --trials 8 --epochs 3 --repeats 5
    python benchmarks/bench_sweep.py --epochs 4 --skip-asha --skip-concurrency-2   # ~22 s trials, overhead only
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lightrecipe.words import counted

ROOT = Path(__file__).resolve().parents[1]
ARCH = "mobilenetv3_small_050"
SIZES = {"dataset": "digits", "image_size": 32, "batch_size": 64, "queue_size": 256}
ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    # Ray's token authentication stays on, as users get it: the overhead measured includes it.
    "MPLBACKEND": "Agg",
}
IDENTICAL_SPACE = """\
# N identical trials: the one searched value has a single choice, so every trial trains the same recipe.
name: bench-identical
base: digits-small
fixed: {{epochs: {epochs}}}
params:
  temperature: {{choice: [0.1]}}
"""
DIRECT = """\
import json, sys, time
start = time.perf_counter()
import torch
from lightrecipe.trainers.recipe import preset
from lightrecipe.trainers.run.train import train
n, epochs, threads, root = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(threads)
recipe = preset("digits-small", epochs=epochs, temperature=0.1, {sizes})
trains, imported = [], time.perf_counter() - start
for i in range(n):
    begin = time.perf_counter()
    train(recipe, workdir=f"{{root}}/run-{{i}}", device="cpu")
    trains.append(time.perf_counter() - begin)
print(json.dumps({{"imports": imported, "trains": trains}}))
"""


TUNE_ALONE = """\
# Ray Tune itself, as the sweep uses it (its own local Ray, concurrency 1, reused actors), with trials that only
# import what a trial's worker must import to train and report each epoch: the least a Tune sweep can cost.
import os, sys
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
from ray import tune
from lightrecipe.search.cluster.session import ray_session
n, epochs, root = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

def trial(config):
    import timm, torch  # noqa: F401
    for epoch in range(1, epochs + 1):
        tune.report({"epoch": epoch})

with ray_session(None):
    tune.Tuner(
        tune.with_resources(trial, {"cpu": 1}),
        tune_config=tune.TuneConfig(num_samples=n, max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=root, verbose=0),
    ).fit()
"""


def timed(cmd: list[str]) -> float:
    return run_timed(cmd)[0]


def run_timed(cmd: list[str]) -> tuple[float, datetime.datetime, str]:
    """(seconds, the local time it started, its stdout). Local time: Optuna stamps trials with it."""
    env = {**os.environ, **ENV}
    launched = datetime.datetime.now()
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
        raise SystemExit(f"command failed: {' '.join(cmd)}")
    return elapsed, launched, result.stdout


def sweep_phases(out: Path, launched: datetime.datetime, elapsed: float) -> dict[str, float]:
    """Where a concurrency-1 sweep's wall time went, from its trials' start and end stamps (the driver's clock)."""
    import optuna

    from lightrecipe.search.store import records

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = records.default_storage_url(str(out))
    study = optuna.load_study(study_name=optuna.get_all_study_names(url)[0], storage=url)
    trials = sorted(study.trials, key=lambda t: t.datetime_start)
    spans = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials]
    usual = statistics.median(spans[1:]) if len(spans) > 1 else spans[0]
    gaps = [(b.datetime_start - a.datetime_complete).total_seconds() for a, b in zip(trials, trials[1:])]
    end = launched + datetime.timedelta(seconds=elapsed)
    return {
        "start-up: before the first trial": (trials[0].datetime_start - launched).total_seconds(),
        "first trial's worker start": spans[0] - usual,
        "trials (each as long as the usual one)": usual * len(trials),
        "between trials": sum(gaps),
        "after the last trial": (end - trials[-1].datetime_complete).total_seconds(),
    }


def direct_phases(stdout: str, elapsed: float) -> dict[str, float]:
    timings = json.loads(stdout.strip().splitlines()[-1])
    trains = sum(timings["trains"])
    return {"imports before the first train()": timings["imports"], "train() calls": trains,
            "interpreter start and exit": elapsed - timings["imports"] - trains}


def sets(values: dict) -> list[str]:
    return [a for k, v in values.items() for a in ("--set", f"{k}={v}")]


def sweep_cmd(space: Path, out: Path, trials: int, epochs: int, concurrency: int, extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "lightrecipe.cli", "sweep", "--space", str(space), "--arch", ARCH,
        "--trials", str(trials), "--epochs", str(epochs), "--concurrency", str(concurrency),
        "--cpus-per-trial", "1", "--out", str(out), *sets(SIZES), *extra,
    ]


def overhead(args: argparse.Namespace, tmp: Path) -> None:
    space = tmp / "identical.yaml"
    space.write_text(IDENTICAL_SPACE.format(epochs=args.epochs))
    script = tmp / "direct.py"
    script.write_text(DIRECT.format(sizes=", ".join(f"{k}={v!r}" for k, v in SIZES.items())))
    tune_alone = tmp / "tune_alone.py"
    tune_alone.write_text(TUNE_ALONE)
    no_asha = ["--no-baseline", "--grace-epochs", str(args.epochs)]
    direct, c1, c2 = "train() x N, one process", "sweep, concurrency 1", "sweep, concurrency 2"
    bare = "Ray Tune alone, no training"
    rows: dict[str, list[float]] = {direct: [], c1: [], bare: []} | ({} if args.skip_concurrency_2 else {c2: []})
    phases: dict[str, list[dict[str, float]]] = {direct: [], c1: []}
    for r in range(args.repeats):
        seconds, _, stdout = run_timed([sys.executable, str(script), str(args.trials), str(args.epochs), "1",
                                        str(tmp / f"direct-{r}")])
        rows[direct].append(seconds)
        phases[direct].append(direct_phases(stdout, seconds))
        seconds, launched, _ = run_timed(sweep_cmd(space, tmp / f"c1-{r}", args.trials, args.epochs, 1, no_asha))
        rows[c1].append(seconds)
        phases[c1].append(sweep_phases(tmp / f"c1-{r}", launched, seconds))
        rows[bare].append(timed([sys.executable, str(tune_alone), str(args.trials), str(args.epochs),
                                 str(tmp / f"bare-{r}")]))
        if c2 in rows:
            rows[c2].append(timed(sweep_cmd(space, tmp / f"c2-{r}", args.trials, args.epochs, 2, no_asha)))
        print(f"  run {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in rows.items()), flush=True)
    base = statistics.median(rows[direct])
    print(f"\nOverhead: {counted(args.trials, 'identical training')} of {counted(args.epochs, 'epoch')} ({ARCH}, "
          f"digits 32 px, batch 64, 1 CPU thread each), median of {counted(args.repeats, 'run')}, wall time of the "
          "whole process")
    print(f"{'how':<28} {'median s':>9} {'min s':>7} {'max s':>7} {'vs train()':>11}")
    for name, values in rows.items():
        med = statistics.median(values)
        print(f"{name:<28} {med:>9.1f} {min(values):>7.1f} {max(values):>7.1f} {med / base:>10.2f}x")
    print(f"sweep overhead at concurrency 1: {100 * (statistics.median(rows[c1]) / base - 1):+.1f}% (target <= +5%)")
    least_overhead(rows[direct], phases[direct], rows[c1], rows[bare], args.trials)
    print("\nWhere the time goes (median s of each part over the runs):")
    for name in (direct, c1):
        for part in phases[name][0]:
            print(f"  {name:<26} {part:<42} {statistics.median(p[part] for p in phases[name]):>6.1f}")
    if c2 in rows:
        speed_up = statistics.median(rows[c1]) / statistics.median(rows[c2])
        print(f"speed-up of concurrency 2 over concurrency 1: {speed_up:.2f}x "
              f"(cores on this machine: {os.cpu_count()})")


def least_overhead(direct: list[float], direct_parts: list[dict[str, float]], sweep: list[float],
                   bare: list[float], trials: int) -> None:
    """What of the sweep's overhead Ray Tune costs by itself, and from what trial length +5% is within reach.
    Ray Tune alone trains nothing, so its whole process is fixed cost; train()'s fixed cost is its process less
    its train() calls. Their difference is the overhead no sweep run as Ray Tune trials can go below here."""
    base = statistics.median(direct)
    trains = statistics.median(p["train() calls"] for p in direct_parts)
    fixed = base - trains
    tune_floor = statistics.median(bare) - fixed
    ours = statistics.median(sweep) - base - tune_floor
    per_trial = trains / trials
    print(f"Ray Tune's own cost beyond train()'s imports and exit: {tune_floor:+.1f} s = "
          f"{100 * tune_floor / base:+.1f}% of train() x N; the sweep's own part: {ours:+.1f} s")
    for name, seconds in (("this sweep", tune_floor + ours), ("Ray Tune alone", tune_floor)):
        shortest = (seconds / 0.05 - fixed) / trials  # overhead / (N t + fixed) <= 5%
        print(f"  +5% needs trials of at least {shortest:.0f} s with {name}'s fixed cost "
              f"(these trials: {per_trial:.0f} s)")


def asha(args: argparse.Namespace, tmp: Path) -> None:
    import optuna

    from lightrecipe.search.store import records

    space = ROOT / "tests" / "search" / "tiny.yaml"
    results = {}
    for name, grace in (("asha", ["--grace-epochs", "1"]), ("full", ["--grace-epochs", str(args.asha_epochs)])):
        out = tmp / f"asha-{name}"
        seconds = timed(sweep_cmd(space, out, args.asha_trials, args.asha_epochs, 2, ["--seed", "0", *grace]))
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name=records.study_name("tiny", ARCH),
                                  storage=records.default_storage_url(str(out)))
        results[name] = (study.trials, seconds)
    trials, seconds = results["asha"]
    full, full_seconds = results["full"]
    max_epochs = args.asha_epochs
    run = sum(len(t.user_attrs.get(records.HISTORY) or []) for t in trials)
    states = {s: sum(t.user_attrs.get(records.STATE) == s for t in trials) for s in records.STATES}
    same = [tuple(sorted(a.params.items())) for a in trials] == [tuple(sorted(b.params.items())) for b in full]
    best_full = max((t for t in full if t.value is not None), key=lambda t: t.value)
    survivor = trials[best_full.number]
    best_asha = max((t for t in trials if t.state == optuna.trial.TrialState.COMPLETE), key=lambda t: t.value)
    print(f"\nASHA savings: tiny space (temperature), {counted(len(trials), 'trial')} x "
          f"{counted(max_epochs, 'epoch')}, grace 1, "
          f"reduction factor 3, concurrency 2, seed 0")
    print(f"{'sweep':<14} {'epochs run':>10} {'of':>5} {'share':>7} {'wall s':>8}")
    full_run = sum(len(t.user_attrs.get(records.HISTORY) or []) for t in full)
    print(f"{'ASHA':<14} {run:>10} {len(trials) * max_epochs:>5} {run / (len(trials) * max_epochs):>7.0%} {seconds:>8.1f}")
    print(f"{'no pruning':<14} {full_run:>10} {len(full) * max_epochs:>5} {full_run / (len(full) * max_epochs):>7.0%} "
          f"{full_seconds:>8.1f}")
    print("ASHA trial states: " + ", ".join(f"{n} {s}" for s, n in states.items() if n))
    print(f"same sampled recipes in both sweeps: {same}")
    print(f"best of the full sweep: trial {best_full.number} (knn_top1 {best_full.value:.4f}); under ASHA it was "
          f"{survivor.user_attrs.get(records.STATE)}; ASHA's best: trial {best_asha.number} "
          f"(knn_top1 {best_asha.value:.4f})")
    print(f"best trial survived: {survivor.user_attrs.get(records.STATE) == 'complete'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=4, help="identical trainings per measurement")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--asha-trials", type=int, default=6, help="at most 10: TPE's random start-up phase")
    p.add_argument("--asha-epochs", type=int, default=3)
    p.add_argument("--skip-overhead", action="store_true")
    p.add_argument("--skip-concurrency-2", action="store_true", help="overhead at concurrency 1 only")
    p.add_argument("--skip-asha", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        if not args.skip_overhead:
            overhead(args, Path(tmp))
        if not args.skip_asha:
            asha(args, Path(tmp))


if __name__ == "__main__":
    main()
