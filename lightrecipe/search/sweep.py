"""A sweep: one Optuna study per (space, arch), each run by Ray Tune, one arch after another.

Per study: `StudySearcher` (Optuna's ask-and-tell behind Tune's `Searcher`, sampler.py's grouped
multivariate TPE) samples recipes, `StudyASHA` stops weak trials on val `knn_top1` by epoch, and `run_trial`
trains each recipe. Archs run in sequence, each with the whole cluster: one Tune run per study keeps one
searcher, one scheduler and one set of ASHA rungs per arch (rungs mixing archs would prune a slow-learning
arch for being another arch). One driver per study: lease.py holds each study in the database.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import optuna
from ray import tune

from lightrecipe.errors import UserError
from lightrecipe.search import floor, records
from lightrecipe.search import trainable as tr
from lightrecipe.search.cluster import ray_session, trials_that_fit
from lightrecipe.search.interrupts import Interrupted, SignalStopper, catch_signals, received
from lightrecipe.search.lease import hold_studies
from lightrecipe.search.progress import Progress
from lightrecipe.search.sampler import DEFAULT_STARTUP_TRIALS, make_sampler
from lightrecipe.search.scheduler import Rungs, StudyASHA
from lightrecipe.search.study import (
    Census,
    census,
    close_extra_running,
    create_study,
    enqueue_baseline,
    find_study,
    jsonable,
    settle_stopped,
    slug,
)
from lightrecipe.search.storage import open_storage

MAX_FAILURES = 2  # Ray restarts a trial whose worker died this many times, then records it failed


# What a data-parallel trial's own process (the Ray Train driver) reserves: Tune needs a non-empty resource
# request, and a CPU here would sit idle next to the workers'; about the resident size of a process that
# imported torch (measured ~0.4 GB).
TRIAL_DRIVER_MEMORY = 512 * 2**20


@dataclass(frozen=True)
class SweepSettings:
    space: Any  # built-in space name, YAML path, or a Space built in Python
    archs: tuple[str, ...]
    trials: int  # per study, the baseline included
    out: Path
    epochs: int | None = None  # None: --set epochs, else the space's fixed epochs, else its base preset's
    grace_epochs: int | None = None  # None: a quarter of the epochs (see default_grace)
    overrides: dict[str, Any] = field(default_factory=dict)  # --set
    concurrency: int | None = None  # None: as many trials as the cluster's resources fit
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    workers_per_trial: int = 1  # >1: each trial is a Ray Train data-parallel run; cpus/gpus_per_trial per worker
    address: str | None = None
    storage: str | None = None  # SQLAlchemy URL; None: records.default_storage_url(out)
    ray_storage: str | None = None  # Tune's storage_path; None: OUT/ray
    seed: int = 0
    time_budget: float | None = None  # seconds for the whole sweep
    resume: bool = False
    baseline: bool = True
    max_failures: int = MAX_FAILURES
    startup_trials: int = DEFAULT_STARTUP_TRIALS  # random samples before TPE models the space


@dataclass
class StudyPlan:
    arch: str
    name: str
    overrides: dict[str, Any]
    max_epochs: int
    grace: int
    census: Census
    seed: int
    params_count: int


@dataclass
class StudyOutcome:
    name: str
    arch: str
    counts: dict[str, int]  # records state -> trials
    finished: int
    trials: int
    best: tuple[int, float] | None  # (trial number, objective)
    baseline: tuple[int, float | None] | None  # (trial number, objective or None)
    unfinished: int = 0  # trials left RUNNING (time budget); `--resume` runs them


def default_grace(epochs: int) -> int:
    """ASHA's first rung: a quarter of the schedule. A kNN monitor after one epoch of contrastive training
    ranks recipes poorly (warm-up, queue still filling), so the first cut waits a little."""
    return max(1, epochs // 4)


def run_sweep(s: SweepSettings, stream: TextIO | None = None) -> list[StudyOutcome]:
    stream = stream if stream is not None else sys.stdout
    _check_settings(s)
    from lightrecipe.spaces import Space, load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress table says what happens

    space = s.space if isinstance(s.space, Space) else load_space(s.space)  # Python users pass a Space
    out = make_out(s.out)
    url = s.storage or records.default_storage_url(str(out))
    storage = open_storage(url)
    with _one_driver(storage, space, s):
        plans = _plans(space, s, storage)
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
                    floor.ensure(study, space.baseline(plan.overrides))
                    _run_study(plan, space, s, storage, out, concurrency, budget, stream)
                outcomes.append(outcome(optuna.load_study(study_name=plan.name, storage=storage), s.trials))
        if received() is not None:
            raise Interrupted(received())
    return outcomes


def _check_settings(s: SweepSettings) -> None:
    if not s.archs:
        raise UserError("--arch is required (one or more timm names, e.g. --arch mobilenetv3_large_100)")
    if len(set(s.archs)) != len(s.archs):
        raise UserError(f"--arch lists a name twice: {', '.join(s.archs)}")
    if s.trials < 1:
        raise UserError(f"--trials must be at least 1, got {s.trials}")
    if s.epochs is not None and s.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {s.epochs}")
    if s.grace_epochs is not None and s.grace_epochs < 1:
        raise UserError(f"--grace-epochs must be at least 1, got {s.grace_epochs}")
    if s.concurrency is not None and s.concurrency < 1:
        raise UserError(f"--concurrency must be at least 1, got {s.concurrency}")
    if not s.cpus_per_trial > 0:
        raise UserError(f"--cpus-per-trial must be above 0, got {s.cpus_per_trial:g}")
    if s.gpus_per_trial < 0:
        raise UserError(f"--gpus-per-trial must be 0 or more (fractions share a GPU), got {s.gpus_per_trial:g}")
    if s.gpus_per_trial > 1:  # a trial trains on one device; reserving more would leave them idle
        raise UserError(
            f"--gpus-per-trial {s.gpus_per_trial:g}: a trial trains on one GPU; valid: 0 to 1 (fractions share a GPU)"
        )
    if s.workers_per_trial < 1:
        raise UserError(f"--workers-per-trial must be at least 1, got {s.workers_per_trial}")
    if s.time_budget is not None and not s.time_budget > 0:
        raise UserError(f"--time-budget must be a positive number of seconds, got {s.time_budget:g}")
    if "arch" in s.overrides:
        raise UserError("--set arch=... is not allowed; use --arch (repeatable)")
    if s.startup_trials < 0:
        raise UserError(f"--startup-trials must be 0 or more, got {s.startup_trials}")


def make_out(out: Path | str) -> Path:
    """The sweep folder, created if missing; a path that is a file or cannot be made is a UserError."""
    path = Path(out).resolve()
    if path.exists() and not path.is_dir():
        raise UserError(f"--out '{out}' is a file; give a folder for the sweep (it is created if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out '{out}': cannot create the folder: {exc.strerror or exc}") from None
    return path


def _one_driver(storage: optuna.storages.BaseStorage, space: Any, s: SweepSettings) -> Any:
    """Hold this sweep's studies in the database (lease.py): `--resume` treats RUNNING trials as its own to
    re-run. A stale holder's lease is taken over on `--resume`, or for a study that does not exist yet."""
    names = [records.study_name(space.name, arch) for arch in s.archs]
    existing = {summary.study_name for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    return hold_studies(storage, names, takeover=lambda name: s.resume or name not in existing)


def _plans(space: Any, s: SweepSettings, storage: optuna.storages.BaseStorage) -> list[StudyPlan]:
    from lightrecipe.trainers.presets import preset

    epochs = s.epochs or s.overrides.get("epochs") or space.fixed.get("epochs") or preset(space.base).epochs
    grace = s.grace_epochs or default_grace(int(epochs))
    if grace > int(epochs):
        raise UserError(f"--grace-epochs ({grace}) exceeds --epochs ({epochs}); valid: 1..{epochs}")
    plans, found = [], 0
    for arch in s.archs:
        overrides = {**s.overrides, "arch": arch, "epochs": int(epochs)}
        space.baseline(overrides)  # validates the overrides and the arch before anything runs
        space.check(overrides)  # every corner of the space gives a valid recipe with these overrides
        baseline_params = space.baseline_params(overrides) if s.baseline else None
        name = records.study_name(space.name, arch)
        sweep_attrs = jsonable(
            {"trials": s.trials, "epochs": int(epochs), "grace_epochs": grace, "overrides": overrides,
             "seed": s.seed, "baseline": s.baseline}
        )
        study = find_study(storage, name)
        found += study is not None
        if study is not None and not _started(study):
            # Created by a sweep that stopped before its first trial ran (Ray did not start, a bad --address):
            # nothing to keep, so start it again with this command's settings.
            optuna.delete_study(study_name=name, storage=storage)
            study = None
        if study is not None and not s.resume:
            raise UserError(
                f"the trial database already holds study '{name}' ({len(study.trials)} trials); "
                "pass --resume to continue it, or use another --out/--storage"
            )
        if study is not None:
            _check_resumable(study, space, sweep_attrs)
            study.set_user_attr(records.SWEEP, {**study.user_attrs.get(records.SWEEP, {}), "trials": s.trials})
            settle_stopped(study, storage)
        else:
            study = create_study(
                storage, space=space.name, arch=arch, max_epochs=int(epochs), space_spec=space.to_dict(),
                sweep=sweep_attrs,
            )
            if baseline_params is not None:
                enqueue_baseline(study, baseline_params)
        c = census(study)
        plans.append(
            StudyPlan(
                arch=arch, name=name, overrides=overrides, max_epochs=int(epochs), grace=grace, census=c,
                seed=resumed_seed(s.seed, c.total), params_count=_params_count(arch),
            )
        )
    if s.resume and found == 0:
        raise UserError(
            f"--resume: the trial database holds no study of space '{space.name}' for "
            f"{', '.join(s.archs)}; check --out/--storage, or drop --resume to start the sweep"
        )
    return plans


def _started(study: optuna.Study) -> bool:
    return any(t.state != optuna.trial.TrialState.WAITING for t in study.get_trials(deepcopy=False))


def _check_resumable(study: optuna.Study, space: Any, sweep_attrs: dict[str, Any]) -> None:
    """A resumed study must keep what its trials are compared on: epochs, grace, overrides and the space."""
    before = study.user_attrs.get(records.SWEEP, {})
    for key, flag in (("epochs", "--epochs"), ("grace_epochs", "--grace-epochs"), ("overrides", "--set")):
        if key in before and before[key] != sweep_attrs[key]:
            raise UserError(
                f"--resume: study '{study.study_name}' was run with {key}={before[key]}, this command gives "
                f"{sweep_attrs[key]}; pass the same {flag}, or start a new sweep in another --out"
            )
    if study.user_attrs.get(records.SPACE_SPEC) not in (None, jsonable(space.to_dict())):
        raise UserError(
            f"--resume: study '{study.study_name}' was run with a different definition of space "
            f"'{space.name}'; restore that space file, or start a new sweep in another --out"
        )


def resumed_seed(seed: int, trials_so_far: int) -> int:
    """The sampler seed: `seed` for a new study; on resume a different one derived from it, since a reseeded
    sampler would otherwise replay the random start-up samples the study already ran."""
    if trials_so_far == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([seed, trials_so_far]).generate_state(1)[0])


def _params_count(arch: str) -> int:
    """Backbone parameters, for trials that end before train() reports its own count (pruned, failed)."""
    import timm

    model = timm.create_model(arch, pretrained=False, num_classes=0)
    return sum(p.numel() for p in model.parameters())


def _run_study(
    plan: StudyPlan,
    space: Any,
    s: SweepSettings,
    storage: optuna.storages.BaseStorage,
    out: Path,
    concurrency: int,
    budget: float | None,
    stream: TextIO,
) -> None:
    from lightrecipe.search.ledger import TrialLedger
    from lightrecipe.search.searcher import StudySearcher

    progress = Progress(
        plan.name, key_params=list(space.params), max_epochs=plan.max_epochs, objective=tr.OBJECTIVE,
        stream=stream,
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
                         params_count=plan.params_count, orphans=orphans)
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
    finished = sum(n for state, n in counts.items() if state != "running")
    return StudyOutcome(
        name=study.study_name, arch=str(study.user_attrs.get(records.ARCH, "")), counts=counts,
        finished=finished, trials=trials, best=best, baseline=baseline, unfinished=unfinished,
    )


class _ProgressTick(tune.Callback):
    """Redraws the live table from Tune's control loop (the searcher feeds it the data)."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.progress.tick()
