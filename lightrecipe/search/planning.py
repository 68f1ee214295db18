"""Planning a sweep before anything runs: per arch, its study created or checked for `--resume` against the
settings it was run with, and the numbers its Tune run needs (`StudyPlan`). One driver per study, held in the
database (lease.py).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, TextIO

import optuna

from lightrecipe.errors import UserError
from lightrecipe.search.settings import StudyPlan, SweepSettings, default_grace
from lightrecipe.search.store import records
from lightrecipe.search.store.lease import hold_studies
from lightrecipe.search.store.study import census, create_study, enqueue_baseline, find_study, jsonable, settle_stopped
from lightrecipe.words import counted


def one_driver(storage: optuna.storages.BaseStorage, space: Any, settings: SweepSettings) -> Any:
    """Hold this sweep's studies in the database (lease.py): `--resume` treats RUNNING trials as its own to
    re-run. A stale holder's lease is taken over on `--resume`, or for a study that does not exist yet."""
    names = [records.study_name(space.name, arch) for arch in settings.archs]
    existing = {summary.study_name for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    return hold_studies(storage, names, takeover=lambda name: settings.resume or name not in existing)


def plan_studies(space: Any, settings: SweepSettings, storage: optuna.storages.BaseStorage,
                 stream: TextIO | None = None, fit_to: Callable[[Any], int] | None = None) -> list[StudyPlan]:
    """Per arch, its study created (the fitted baseline enqueued first) or checked for `--resume`. With
    `fit_to` (a count of training images, trainers/fit.TrainImages) the baseline's and the space's queue and
    batch are fitted to the data as the trials' will be, and the baseline and every corner of the space must
    fit the data: a recipe that cannot run stops the sweep here, before any trial starts."""
    from lightrecipe.trainers.recipe import preset

    epochs = settings.epochs or settings.overrides.get("epochs") or space.fixed.get("epochs") or preset(space.base).epochs
    grace = settings.grace_epochs or default_grace(int(epochs))
    if grace > int(epochs):
        raise UserError(f"--grace-epochs ({grace}) exceeds --epochs ({epochs}); valid: 1..{epochs}")
    plans, found = [], 0
    for arch in settings.archs:
        overrides = {**settings.overrides, "arch": arch, "epochs": int(epochs)}
        baseline = space.baseline_fit(overrides, fit_to=fit_to)  # validates the overrides and the arch
        space.check(overrides, fit_to=fit_to)  # every corner gives a valid recipe that fits the data
        if settings.baseline and fit_to is not None:
            try:
                baseline.recipe.check_train_size(fit_to(baseline.recipe))
            except UserError as exc:
                raise UserError(f"the ResNet-50 baseline does not fit the data: {exc}; or run the sweep "
                                "without it (--no-baseline)") from None
        name = records.study_name(space.name, arch)
        sweep_attrs = jsonable(
            {"trials": settings.trials, "epochs": int(epochs), "grace_epochs": grace, "overrides": overrides,
             "seed": settings.seed, "baseline": settings.baseline}
        )
        study = find_study(storage, name)
        found += study is not None
        if study is not None and not _started(study):
            # Created by a sweep that stopped before its first trial ran (Ray did not start, a bad --address):
            # nothing to keep, so start it again with this command's settings.
            optuna.delete_study(study_name=name, storage=storage)
            study = None
        if study is not None and not settings.resume:
            raise UserError(
                f"the trial database already holds study '{name}' ({counted(len(study.trials), 'trial')}); "
                "pass --resume to continue it, or use another --out/--storage"
            )
        if study is not None:
            _check_resumable(study, space, sweep_attrs)
            study.set_user_attr(records.SWEEP, {**study.user_attrs.get(records.SWEEP, {}), "trials": settings.trials})
            settle_stopped(study, storage)
        else:
            study = _new_study(storage, space, settings, overrides, sweep_attrs, stream or sys.stdout, fit_to)
        study_census = census(study)
        plans.append(
            StudyPlan(
                arch=arch, name=name, overrides=overrides, max_epochs=int(epochs), grace=grace, census=study_census,
                seed=resumed_seed(settings.seed, study_census.total), params_count=arch_params(arch), baseline_note=baseline.note(),
            )
        )
    if settings.resume and found == 0:
        raise UserError(
            f"--resume: the trial database holds no study of space '{space.name}' for "
            f"{', '.join(settings.archs)}; check --out/--storage, or drop --resume to start the sweep"
        )
    return plans


def _new_study(storage: optuna.storages.BaseStorage, space: Any, settings: SweepSettings, overrides: dict[str, Any],
               sweep_attrs: dict[str, Any], stream: TextIO, fit_to: Callable[[Any], int] | None = None) -> optuna.Study:
    """A new study: the ResNet-50 baseline enqueued first, then the --warm-start recipes (checked before the
    study exists, so a bad source leaves nothing behind). Only here: `--resume` enqueues nothing twice."""
    arch = str(overrides["arch"])
    baseline_params = space.baseline_params(overrides, fit_to=fit_to) if settings.baseline else None
    picks = None
    if settings.warm_start:
        from lightrecipe.search.warm_start import parse_source, warm_picks

        picks = warm_picks(parse_source(settings.warm_start), settings.warm_top, space, arch)
    study = create_study(storage, space=space.name, arch=arch, max_epochs=int(overrides["epochs"]),
                         space_spec=space.to_dict(), sweep=sweep_attrs)
    taken = []
    if baseline_params is not None:
        enqueue_baseline(study, baseline_params)
        taken.append(baseline_params)
    if picks is not None:
        from lightrecipe.search.warm_start import enqueue_warm

        enqueue_warm(study, picks, space, overrides, taken, stream)
    return study


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


def arch_params(arch: str) -> int:
    """Backbone parameters, for trials that end before train() reports its own count (pruned, failed)."""
    import timm

    from lightrecipe.trainers.method.model import count_params

    return count_params(timm.create_model(arch, pretrained=False, num_classes=0))
