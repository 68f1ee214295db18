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

import collections
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import optuna
from ray import tune

from lightrecipe.search import floor, latency
from lightrecipe.search.cluster.interrupts import Interrupted, SignalStopper, catch_signals, received
from lightrecipe.search.cluster.session import placement_groups_released, ray_session, trials_that_fit
from lightrecipe.search.planning import one_driver, plan_studies
from lightrecipe.search.settings import StudyOutcome, StudyPlan, SweepSettings, check_settings, make_out
from lightrecipe.search.store import records
from lightrecipe.search.store.storage import open_storage
from lightrecipe.search.store.study import close_extra_running, slug
from lightrecipe.search.tune import trainable
from lightrecipe.search.tune.progress import Progress
from lightrecipe.search.tune.sampler import make_sampler
from lightrecipe.search.tune.scheduler import Rungs, StudyASHA, milestones
from lightrecipe.search.tune.trackers import callbacks as tracker_callbacks
from lightrecipe.trainers.fit import TrainImages, describe
from lightrecipe.trainers.run import trackers
from lightrecipe.words import counted

# What a data-parallel trial's own process (the Ray Train driver) reserves: Tune needs a non-empty resource
# request, and a CPU here would sit idle next to the workers'; about the resident size of a process that
# imported torch (measured ~0.4 GB).
TRIAL_DRIVER_MEMORY = 512 * 2**20


def run_sweep(settings: SweepSettings, stream: TextIO | None = None) -> list[StudyOutcome]:
    stream = stream if stream is not None else sys.stdout
    check_settings(settings)
    from lightrecipe.spaces import Space, load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress table says what happens

    space = settings.space if isinstance(settings.space, Space) else load_space(settings.space)  # Python users pass a Space
    out = make_out(settings.out)
    url = settings.storage or records.default_storage_url(str(out))
    storage = open_storage(url)
    fit_to = TrainImages()  # MoCo's queue and batch fitted to the data, every recipe checked against it
    with one_driver(storage, space, settings):
        plans = plan_studies(space, settings, storage, stream, fit_to)
        studies = [optuna.load_study(study_name=plan.name, storage=storage) for plan in plans]
        baselines = [space.baseline(plan.overrides, fit_to=fit_to) for plan in plans]
        if not settings.address:  # on a quiet machine: before this sweep's own Ray and any floor
            _measure_latencies(plans, studies, baselines)
        place = floor.place_of(settings)
        # The first study's floor, where it runs in the driver, is measured while Ray starts (a Ray task needs Ray).
        first_floor = floor.start(studies[0], baselines[0], place=place) if plans and not place.on_ray else None
        with ray_session(settings.address), catch_signals():  # after ray.init, which installs Ray's own SIGTERM handler
            concurrency = concurrency_for(settings)
            if settings.address:  # joining a cluster leaves this machine as quiet as it was: refuse a trial first
                _measure_latencies(plans, studies, baselines)
            deadline = time.monotonic() + settings.time_budget if settings.time_budget else None
            outcomes = []
            for i, (plan, study, baseline) in enumerate(zip(plans, studies, baselines)):
                budget = None if deadline is None else deadline - time.monotonic()
                if received() is not None:
                    stream.write(f"[{plan.name}] not started: interrupted; --resume runs it\n")
                elif budget is not None and budget <= 0:
                    stream.write(f"[{plan.name}] not started: --time-budget used up; --resume runs it\n")
                else:  # the random-init floor where trials run, beside them
                    with floor.beside_the_trials(study, baseline, place=place, stream=stream,
                                                 started=first_floor if i == 0 else None):
                        run_study(plan, space, settings, storage, out, concurrency, budget, stream, fit_to=fit_to)
                outcomes.append(outcome(optuna.load_study(study_name=plan.name, storage=storage), settings.trials))
        if received() is not None:
            raise Interrupted(received())
    return outcomes


def _measure_latencies(plans: list[StudyPlan], studies: list[optuna.Study], baselines: list[Any]) -> None:
    """Each study's arch at its image size, unless the study holds its latency already (a resumed sweep)."""
    for plan, study, baseline in zip(plans, studies, baselines):
        latency.ensure(study, plan.arch, baseline.image_size)


def concurrency_for(settings: SweepSettings) -> int:
    """Trials at once: --concurrency, else as many as the cluster holds with each trial's workers placed.
    Either way refused (UserError) when the whole cluster cannot hold one trial."""
    fit = trials_that_fit(settings.cpus_per_trial, settings.gpus_per_trial, settings.workers_per_trial)
    return settings.concurrency or fit


def run_study(
    plan: StudyPlan,
    space: Any,
    settings: SweepSettings,
    storage: optuna.storages.BaseStorage,
    out: Path,
    concurrency: int,
    budget: float | None,
    stream: TextIO,
    fit_to: Any = None,
) -> None:
    """One study's Tune run. `fit_to` (trainers/fit.TrainImages) fits the trials' recipes to the data as the
    plan's checks did; None for recipes that are already whole (confirm's)."""
    from lightrecipe.search.store.ledger import TrialLedger
    from lightrecipe.search.tune.searcher import StudySearcher

    progress = Progress(
        plan.name, key_params=list(space.params), max_epochs=plan.max_epochs, objective=trainable.OBJECTIVE,
        stream=stream, baseline_note=plan.baseline_note,
    )
    study = optuna.load_study(study_name=plan.name, storage=storage, sampler=make_sampler(plan.seed, settings.startup_trials))
    _show_finished(progress, study)
    remaining = plan.census.remaining(settings.trials)
    orphans = plan.census.running[:remaining]
    close_extra_running(study, storage, plan.census.running[remaining:])
    if remaining == 0:
        stream.write(f"[{plan.name}] already has {counted(plan.census.finished, 'finished trial')} "
                     f"(--trials {settings.trials})\n")
        return
    concurrency = min(concurrency, remaining)  # more would only hold resources for trials never asked for
    note = f", re-running {len(orphans)} interrupted" if orphans else ""
    # A schedule without a rung before its last epoch (confirm's, on purpose; a 1-epoch sweep's) prunes nothing.
    asha = f"ASHA from epoch {plan.grace}" if milestones(plan.grace, plan.max_epochs) else \
        "ASHA off: no rung before the last epoch"
    stream.write(
        f"[{plan.name}] {counted(remaining, 'trial')} to run ({plan.census.finished} finished{note}); "
        f"{counted(plan.max_epochs, 'epoch')}, {asha}, concurrency {concurrency}\n"
    )
    stream.flush()
    scheduler = StudyASHA(Rungs.from_study(study, plan.grace, plan.max_epochs), max_epochs=plan.max_epochs)
    ledger = TrialLedger(study, storage, space=space, overrides=plan.overrides, out=out,
                         params_count=plan.params_count, orphans=orphans, fit_to=fit_to)
    searcher = StudySearcher(ledger, cpus_per_trial=settings.cpus_per_trial, gpus_per_trial=settings.gpus_per_trial,
                             stopped_by_scheduler=scheduler.was_stopped, on_update=progress.update,
                             workers_per_trial=settings.workers_per_trial, worker_failures=settings.max_failures)
    logs = tracker_callbacks(trackers.parse(settings.log_to), out, study=plan.name, stopped_by_scheduler=scheduler.was_stopped)
    with placement_groups_released():  # a stopped data-parallel trial's workers' reservation ends with the run
        _tuner(plan, settings, out, searcher, scheduler, remaining, concurrency, budget,
               [_ProgressTick(progress), *logs]).fit()
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
    settings: SweepSettings,
    out: Path,
    searcher: Any,
    scheduler: Any,
    trials: int,
    concurrency: int,
    budget: float | None,
    callbacks: list[tune.Callback],
) -> tune.Tuner:
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # history lives in the trial database
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's own tables stay silent (verbose=0); ours prints
    # Tune's result grid looks for the per-trial result files the line above turns off: not an error here.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    resources = {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}
    if settings.workers_per_trial > 1:  # the trial only drives its Ray Train workers, which hold CPUs and GPUs
        resources = {"cpu": 0, "gpu": 0, "memory": TRIAL_DRIVER_MEMORY}
    return tune.Tuner(
        tune.with_resources(trainable.run_trial, resources),
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
            storage_path=settings.ray_storage or str(out / "ray"),
            stop=SignalStopper(),  # SIGINT/SIGTERM stop every trial; they stay resumable
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            verbose=0,
            callbacks=callbacks,
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
    reasons: collections.Counter[str] = collections.Counter()
    for t in study.get_trials(deepcopy=False):
        if t.state == optuna.trial.TrialState.WAITING:
            continue
        state = t.user_attrs.get(records.STATE, records.RUNNING)
        counts[state] = counts.get(state, 0) + 1
        error = str(t.user_attrs.get(records.ERROR) or "")
        # a pruned trial with a reason was stopped by the collapse rule, not by ASHA: a failure worth naming
        if state in (records.FAILED, records.DIVERGED) or (state == records.PRUNED and error):
            reasons[error or "no reason recorded"] += 1
        if t.state == optuna.trial.TrialState.RUNNING:
            unfinished += 1
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None and math.isfinite(t.value):
            if best is None or t.value > best[1]:
                best = (t.number, t.value)
        if t.user_attrs.get(records.BASELINE):
            baseline = (t.number, t.value if t.state == optuna.trial.TrialState.COMPLETE else None)
            baseline_note = describe(t.user_attrs.get(records.FITTED))
    finished = sum(n for state, n in counts.items() if state != records.RUNNING)
    return StudyOutcome(
        name=study.study_name, arch=str(study.user_attrs.get(records.ARCH, "")), counts=counts,
        finished=finished, trials=trials, best=best, baseline=baseline, unfinished=unfinished,
        failure=reasons.most_common(1)[0] if reasons else None, baseline_note=baseline_note,
    )


class _ProgressTick(tune.Callback):
    """Redraws the live table from Tune's control loop (the searcher feeds it the data)."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.progress.tick()
