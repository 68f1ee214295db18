"""A sweep: one Optuna study per (space, arch), each run by Ray Tune, one arch after another.

Per study: `StudySearcher` (Optuna's ask-and-tell behind Tune's `Searcher`, sampler.py's grouped
multivariate TPE) samples recipes, `StudyASHA` stops weak trials on val `knn_top1` by epoch, and `run_trial`
trains each recipe. Archs run in sequence, each with the whole cluster: one Tune run per study keeps one
searcher, one scheduler and one set of ASHA rungs per arch (rungs mixing archs would prune a slow-learning
arch for being another arch). planning.py creates or checks the studies before anything runs.

The trial database is the source of truth, and `--resume` works from it alone: per study it counts the
finished trials (complete, pruned, failed, diverged), closes trials ASHA had stopped, hands the trials a
killed driver left RUNNING out again (same params, same run folder, so train() continues from its
checkpoint), rebuilds ASHA's rungs from the intermediate values, and asks only for the remainder, so a study
ends with exactly `--trials` trials, none repeated, pruned as the uninterrupted sweep would have pruned.
Tune's own experiment restore is not used.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import optuna
from ray import tune

from lightrecipe.search import floor, records
from lightrecipe.search import trainable as tr
from lightrecipe.search.cluster import ray_session, trials_that_fit
from lightrecipe.search.interrupts import Interrupted, SignalStopper, catch_signals, received
from lightrecipe.search.planning import one_driver, plan_studies
from lightrecipe.search.progress import Progress
from lightrecipe.search.sampler import make_sampler
from lightrecipe.search.scheduler import Rungs, StudyASHA
from lightrecipe.search.settings import StudyOutcome, StudyPlan, SweepSettings, check_settings, make_out
from lightrecipe.search.storage import open_storage
from lightrecipe.search.study import close_extra_running, slug
from lightrecipe.trainers.fit import TrainImages, describe


# What a data-parallel trial's own process (the Ray Train driver) reserves: Tune needs a non-empty resource
# request, and a CPU here would sit idle next to the workers'; about the resident size of a process that
# imported torch (measured ~0.4 GB).
TRIAL_DRIVER_MEMORY = 512 * 2**20


def run_sweep(s: SweepSettings, stream: TextIO | None = None) -> list[StudyOutcome]:
    stream = stream if stream is not None else sys.stdout
    check_settings(s)
    from lightrecipe.spaces import Space, load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress table says what happens

    space = s.space if isinstance(s.space, Space) else load_space(s.space)  # Python users pass a Space
    out = make_out(s.out)
    url = s.storage or records.default_storage_url(str(out))
    storage = open_storage(url)
    fit_to = TrainImages()  # MoCo's queue and batch fitted to the data, every recipe checked against it
    with one_driver(storage, space, s):
        plans = plan_studies(space, s, storage, fit_to)
        with ray_session(s.address), catch_signals():  # after ray.init, which installs Ray's own SIGTERM handler
            fit = trials_that_fit(s.cpus_per_trial * s.workers_per_trial, s.gpus_per_trial * s.workers_per_trial)
            concurrency = s.concurrency or fit
            deadline = time.monotonic() + s.time_budget if s.time_budget else None
            outcomes = []
            for plan in plans:
                budget = None if deadline is None else deadline - time.monotonic()
                if received() is not None:
                    stream.write(f"[{plan.name}] not started: interrupted; --resume runs it\n")
                elif budget is not None and budget <= 0:
                    stream.write(f"[{plan.name}] not started: --time-budget used up; --resume runs it\n")
                else:  # the random-init floor once per study, in the driver: no training, seconds
                    study = optuna.load_study(study_name=plan.name, storage=storage)
                    floor.ensure(study, space.baseline(plan.overrides, fit_to=fit_to))
                    run_study(plan, space, s, storage, out, concurrency, budget, stream, fit_to=fit_to)
                outcomes.append(outcome(optuna.load_study(study_name=plan.name, storage=storage), s.trials))
        if received() is not None:
            raise Interrupted(received())
    return outcomes


def run_study(
    plan: StudyPlan,
    space: Any,
    s: SweepSettings,
    storage: optuna.storages.BaseStorage,
    out: Path,
    concurrency: int,
    budget: float | None,
    stream: TextIO,
    fit_to: Any = None,
) -> None:
    """One study's Tune run. `fit_to` (trainers/fit.TrainImages) fits the trials' recipes to the data as the
    plan's checks did; None for recipes that are already whole (confirm's)."""
    from lightrecipe.search.ledger import TrialLedger
    from lightrecipe.search.searcher import StudySearcher

    progress = Progress(
        plan.name, key_params=list(space.params), max_epochs=plan.max_epochs, objective=tr.OBJECTIVE,
        stream=stream, baseline_note=plan.baseline_note,
    )
    study = optuna.load_study(study_name=plan.name, storage=storage, sampler=make_sampler(plan.seed, s.startup_trials))
    _show_finished(progress, study)
    remaining = plan.census.remaining(s.trials)
    orphans = plan.census.running[:remaining]
    close_extra_running(study, storage, plan.census.running[remaining:])
    if remaining == 0:
        stream.write(f"[{plan.name}] already has {plan.census.finished} finished trials (--trials {s.trials})\n")
        return
    concurrency = min(concurrency, remaining)  # more would only hold resources for trials never asked for
    note = f", re-running {len(orphans)} interrupted" if orphans else ""
    stream.write(
        f"[{plan.name}] {remaining} trials to run ({plan.census.finished} finished{note}); "
        f"{plan.max_epochs} epochs, ASHA from epoch {plan.grace}, concurrency {concurrency}\n"
    )
    stream.flush()
    scheduler = StudyASHA(Rungs.from_study(study, plan.grace, plan.max_epochs), max_epochs=plan.max_epochs)
    ledger = TrialLedger(study, storage, space=space, overrides=plan.overrides, out=out,
                         params_count=plan.params_count, orphans=orphans, fit_to=fit_to)
    searcher = StudySearcher(ledger, cpus_per_trial=s.cpus_per_trial, gpus_per_trial=s.gpus_per_trial,
                             stopped_by_scheduler=scheduler.was_stopped, on_update=progress.update,
                             workers_per_trial=s.workers_per_trial, worker_failures=s.max_failures)
    _tuner(plan, s, out, searcher, scheduler, remaining, concurrency, budget, progress).fit()
    progress.close()
    left = searcher.open_trials()
    if left:
        stream.write(
            f"[{plan.name}] stopped with trials {', '.join(map(str, left))} unfinished "
            "(--time-budget or a signal); --resume continues them\n"
        )
    stream.flush()


def _tuner(
    plan: StudyPlan,
    s: SweepSettings,
    out: Path,
    searcher: Any,
    scheduler: Any,
    trials: int,
    concurrency: int,
    budget: float | None,
    progress: Progress,
) -> tune.Tuner:
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # history lives in the trial database
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's own tables stay silent (verbose=0); ours prints
    # Tune's result grid looks for the per-trial result files the line above turns off: not an error here.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    resources = {"cpu": s.cpus_per_trial, "gpu": s.gpus_per_trial}
    if s.workers_per_trial > 1:  # the trial only drives its Ray Train workers, which hold CPUs and GPUs
        resources = {"cpu": 0, "gpu": 0, "memory": TRIAL_DRIVER_MEMORY}
    return tune.Tuner(
        tune.with_resources(tr.run_trial, resources),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=trials,
            max_concurrent_trials=concurrency,
            time_budget_s=budget,
            reuse_actors=True,  # a new trial skips worker start-up and the torch/timm imports
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=f"{slug(plan.name)}--{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=s.ray_storage or str(out / "ray"),
            stop=SignalStopper(),  # SIGINT/SIGTERM stop every trial; they stay resumable
            failure_config=tune.FailureConfig(max_failures=s.max_failures),
            verbose=0,
            callbacks=[_ProgressTick(progress)],
        ),
    )


def _show_finished(progress: Progress, study: optuna.Study) -> None:
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                       optuna.trial.TrialState.PRUNED,
                                                       optuna.trial.TrialState.FAIL)):
        history = t.user_attrs.get(records.HISTORY) or []
        progress.trials[t.number] = {
            "state": t.user_attrs.get(records.STATE, t.state.name.lower()),
            "epoch": history[-1]["epoch"] if history else 0,
            "value": t.value,
            "params": t.params,
            "baseline": bool(t.user_attrs.get(records.BASELINE)),
            "node": t.user_attrs.get(records.NODE, ""),
            "wall_seconds": t.user_attrs.get(records.WALL_SECONDS),
            "error": t.user_attrs.get(records.ERROR, ""),
        }


def _trial_dirname(trial: Any) -> str:
    return f"trial-{trial.config.get('number', 0):04d}-{trial.trial_id}"


def outcome(study: optuna.Study, trials: int) -> StudyOutcome:
    counts = {state: 0 for state in records.STATES}
    best: tuple[int, float] | None = None
    baseline: tuple[int, float | None] | None = None
    baseline_note = ""
    unfinished = 0
    for t in study.get_trials(deepcopy=False):
        if t.state == optuna.trial.TrialState.WAITING:
            continue
        state = t.user_attrs.get(records.STATE, "running")
        counts[state] = counts.get(state, 0) + 1
        if t.state == optuna.trial.TrialState.RUNNING:
            unfinished += 1
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None and math.isfinite(t.value):
            if best is None or t.value > best[1]:
                best = (t.number, t.value)
        if t.user_attrs.get(records.BASELINE):
            baseline = (t.number, t.value if t.state == optuna.trial.TrialState.COMPLETE else None)
            baseline_note = describe(t.user_attrs.get(records.FITTED))
    finished = sum(n for state, n in counts.items() if state != "running")
    return StudyOutcome(
        name=study.study_name, arch=str(study.user_attrs.get(records.ARCH, "")), counts=counts,
        finished=finished, trials=trials, best=best, baseline=baseline, unfinished=unfinished,
        baseline_note=baseline_note,
    )


class _ProgressTick(tune.Callback):
    """Redraws the live table from Tune's control loop (the searcher feeds it the data)."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.progress.tick()
