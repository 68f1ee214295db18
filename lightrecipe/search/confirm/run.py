"""`lightrecipe confirm`: do the sweep's winners hold up on a longer schedule and other seeds?

A sweep ranks recipes on short, single-seed trials. Per arch study of the sweep, confirm re-trains its top-K
recipes (by the sweep's objective) and the ResNet-50 settings, each with N seeds at E epochs (default 3x the
sweep's), through the same Ray trainable, and measures the random-init floor for the same N seeds. The seeds are
the N smallest that no sweep trial trained with (`confirm_seeds`), stored as `confirm_seeds`.

Each confirm run is its own Optuna study, `records.confirm_study_name(source)`, in the same trial database,
tied to its source by the study attributes `kind` = "confirm", `source_study` and `confirm` (top, seeds,
epochs). Its trials are enqueued up front, one per (recipe, seed), each carrying what it trains
(`confirm_recipe`, `source_trial`, `role`, `seed`, `short_value`; see records.py), so `--resume` continues
with exact counts exactly as a sweep does (planning.py and sweep.py: the census, interrupted trials re-run in their run
folder, the remainder asked for). Nothing is pruned: every run goes to E epochs. The test split is reported
for these runs only; the search itself stays on val.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import optuna
from optuna.trial import TrialState

from lightrecipe.errors import UserError
from lightrecipe.search import floor
from lightrecipe.search.cluster.interrupts import Interrupted, catch_signals, received
from lightrecipe.search.cluster.session import ray_session
from lightrecipe.search.confirm.settings import EPOCHS_FACTOR, ConfirmSettings
from lightrecipe.search.settings import StudyOutcome, StudyPlan, check_settings
from lightrecipe.search.store import records
from lightrecipe.search.store.lease import hold_studies
from lightrecipe.search.store.storage import open_storage
from lightrecipe.search.store.study import census, find_study, jsonable, new_study, new_study_key
from lightrecipe.search.sweep import concurrency_for, outcome, run_study
from lightrecipe.trainers.fit import TrainImages
from lightrecipe.words import counted


@dataclass(frozen=True)
class Pick:
    """One recipe to confirm: the source trial it comes from and what it trains."""

    source_trial: int
    role: str  # records.ROLE_SEARCHED | records.ROLE_RESNET50
    recipe: dict[str, Any]
    short_value: float | None
    fitted: dict[str, Any] | None = None  # what fitting to the data changed in the recipe (records.FITTED)


class ConfirmSpace:
    """The fixed recipes of a confirm study, in the shape TrialLedger asks of a space: each trial trains the
    recipe it was enqueued with (records.CONFIRM_RECIPE); nothing is sampled."""

    params: dict[str, Any] = {}

    def __init__(self, name: str):
        self.name = name

    def suggest(self, trial: Any, overrides: Any = None) -> Any:
        from lightrecipe.trainers.recipe import Recipe

        data = trial.user_attrs.get(records.CONFIRM_RECIPE)
        if not isinstance(data, dict):
            raise UserError(f"confirm trial #{trial.number} carries no recipe to train")
        return Recipe.from_dict(data, source=f"confirm trial #{trial.number}")


def run_confirm(settings: ConfirmSettings, stream: TextIO | None = None) -> list[StudyOutcome]:
    stream = stream if stream is not None else sys.stdout
    _check(settings)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(settings.sweep_dir).resolve()
    storage = open_storage(settings.run.storage or _default_url(out))
    sources = source_studies(storage, settings.archs)
    names = [records.confirm_study_name(s.study_name) for s in sources]
    existing = {summary.study_name for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    fit_to = TrainImages()  # every recipe is checked against its data before any run starts
    with hold_studies(storage, names, takeover=lambda name: settings.run.resume or name not in existing):
        plans = [_plan(source, settings, storage, stream, fit_to) for source in sources]
        with ray_session(settings.run.address), catch_signals():
            concurrency = concurrency_for(settings.run)  # one trial at a time when each holds the whole cluster
            deadline = time.monotonic() + settings.run.time_budget if settings.run.time_budget else None
            outcomes = []
            for plan, trials, space in plans:
                budget = None if deadline is None else deadline - time.monotonic()
                study_settings = dataclasses.replace(settings.run, trials=trials)
                if received() is not None or (budget is not None and budget <= 0):
                    stream.write(f"[{plan.name}] not started: interrupted or out of time; --resume runs it\n")
                else:
                    study = optuna.load_study(study_name=plan.name, storage=storage)
                    with floor.beside_the_trials(study, _floor_recipe(study), _seeds(study, settings),
                                                 floor.place_of(settings.run), stream):
                        run_study(plan, space, study_settings, storage, out, concurrency, budget, stream)
                outcomes.append(outcome(optuna.load_study(study_name=plan.name, storage=storage), trials))
        if received() is not None:
            raise Interrupted(received())
    return outcomes


def _check(settings: ConfirmSettings) -> None:
    if not Path(settings.sweep_dir).is_dir():
        raise UserError(f"SWEEP_DIR '{settings.sweep_dir}' is not a folder; give the --out folder of a sweep")
    if settings.top < 1:
        raise UserError(f"--top must be at least 1, got {settings.top}")
    if settings.seeds < 2:
        raise UserError(f"--seeds must be at least 2 (an interval over one seed has no width), got {settings.seeds}")
    if settings.epochs is not None and settings.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {settings.epochs}")
    check_settings(dataclasses.replace(settings.run, archs=settings.archs or ("any",)))  # the sweep's rules for its flags


def _default_url(out: Path) -> str:
    if not (out / records.DB_FILENAME).is_file():
        raise UserError(f"SWEEP_DIR '{out}' holds no trial database '{records.DB_FILENAME}'; give the --out "
                        "folder of a sweep, or --storage URL where the sweep kept its trials")
    return records.default_storage_url(str(out))


def source_studies(storage: optuna.storages.BaseStorage, archs: tuple[str, ...]) -> list[optuna.Study]:
    """The sweep's arch studies (confirm studies left out), only those of `archs` when given."""
    studies = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if summary.user_attrs.get(records.KIND) == records.KIND_CONFIRM:
            continue
        studies.append(optuna.load_study(study_name=summary.study_name, storage=storage))
    if not studies:
        raise UserError("the trial database holds no sweep study; run `lightrecipe sweep` first")
    by_arch = {str(s.user_attrs.get(records.ARCH, "")): s for s in studies}
    unknown = [a for a in archs if a not in by_arch]
    if unknown:
        raise UserError(f"--arch {', '.join(unknown)}: the sweep has no study for it; valid: "
                        f"{', '.join(sorted(by_arch))}")
    return [s for s in studies if not archs or str(s.user_attrs.get(records.ARCH)) in archs]


def picks(source: optuna.Study, top: int) -> list[Pick]:
    """The top-`top` complete searched trials by value (ties: the earlier), then the ResNet-50 settings."""
    trials = source.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE and not t.user_attrs.get(records.BASELINE)
            and t.value is not None and math.isfinite(t.value) and t.user_attrs.get(records.RECIPE)]
    done.sort(key=lambda t: (-t.value, t.number))
    out = [Pick(t.number, records.ROLE_SEARCHED, dict(t.user_attrs[records.RECIPE]), float(t.value),
                t.user_attrs.get(records.FITTED)) for t in done[:top]]
    for t in trials:
        if t.user_attrs.get(records.BASELINE) and t.user_attrs.get(records.RECIPE):
            value = t.value if t.state == TrialState.COMPLETE else None
            out.append(Pick(t.number, records.ROLE_RESNET50, dict(t.user_attrs[records.RECIPE]), value,
                            t.user_attrs.get(records.FITTED)))
            break
    return out


def confirm_seeds(source: optuna.Study, count: int) -> list[int]:
    """The `count` smallest seeds no trial of the sweep trained with: a confirm run on the sweep's own seed
    repeats the draw that got the recipe selected, so its score is biased up. The floor takes the same seeds."""
    used = {t.user_attrs[records.RECIPE].get("seed") for t in source.get_trials(deepcopy=False)
            if isinstance(t.user_attrs.get(records.RECIPE), dict)}
    seeds: list[int] = []
    candidate = 0
    while len(seeds) < count:
        if candidate not in used:
            seeds.append(candidate)
        candidate += 1
    return seeds


def fitted_baseline(source: optuna.Study, pick: Pick, fit_to: Any) -> Pick:
    """The ResNet-50 settings of `pick` as confirm trains them: as the sweep recorded them (with `fitted`, what
    fitting to the data changed, trainers/fit.py). A sweep that predates fitting recorded MoCo v2's queue and
    batch, which a small dataset cannot run: those are fitted now, keeping what the sweep's space fixed and its
    --set gave. A recorded recipe that runs is never changed: confirm re-trains what the sweep ran."""
    from lightrecipe.trainers.fit import fit_to_data
    from lightrecipe.trainers.recipe import Recipe

    if pick.role != records.ROLE_RESNET50 or pick.fitted:
        return pick
    recipe = Recipe.from_dict(pick.recipe, source=f"trial #{pick.source_trial} of '{source.study_name}'")
    images = fit_to(recipe)
    try:
        recipe.check_train_size(images)
        return pick
    except UserError:
        pass
    spec = source.user_attrs.get(records.SPACE_SPEC) or {}
    sweep = source.user_attrs.get(records.SWEEP) or {}
    written = {*(spec.get("fixed") or {}), *(sweep.get("overrides") or {})}
    fit = fit_to_data(recipe, images, keep=written)
    return dataclasses.replace(pick, recipe=fit.recipe.to_dict(), fitted=fit.record())


def check_fits(source: optuna.Study, chosen: list[Pick], fit_to: Any) -> None:
    """Every recipe confirm will train fits its data (Recipe.check_train_size): UserError naming the first that
    does not, before any run starts."""
    from lightrecipe.trainers.recipe import Recipe

    for pick in chosen:
        recipe = Recipe.from_dict(pick.recipe, source=f"trial #{pick.source_trial} of '{source.study_name}'")
        try:
            recipe.check_train_size(fit_to(recipe))
        except UserError as exc:
            raise UserError(f"trial #{pick.source_trial} of '{source.study_name}' does not fit the data: {exc}") \
                from None


def _plan(source: optuna.Study, settings: ConfirmSettings, storage: Any, stream: TextIO,
          fit_to: Any) -> tuple[StudyPlan, int, ConfirmSpace]:
    """The confirm study of `source` (created and filled, or checked for `--resume`), its plan and size."""
    arch = str(source.user_attrs.get(records.ARCH, ""))
    space = str(source.user_attrs.get(records.SPACE, ""))
    epochs = settings.epochs or EPOCHS_FACTOR * int(source.user_attrs.get(records.MAX_EPOCHS) or 1)
    wanted = {"top": settings.top, "seeds": settings.seeds, "epochs": epochs}  # records.CONFIRM
    name = records.confirm_study_name(source.study_name)
    study = find_study(storage, name)
    if study is not None and not settings.run.resume:
        raise UserError(f"the trial database already holds confirm study '{name}' "
                        f"({counted(len(study.trials), 'trial')}); "
                        "pass --resume to continue it")
    if study is None:
        chosen = [fitted_baseline(source, p, fit_to) for p in picks(source, settings.top)]
        if not any(p.role == records.ROLE_SEARCHED for p in chosen):
            raise UserError(f"study '{source.study_name}' has no complete searched trial to confirm yet")
        check_fits(source, chosen, fit_to)
        study = _create(storage, name, source, space, arch, wanted, chosen, confirm_seeds(source, settings.seeds))
    elif study.user_attrs.get(records.CONFIRM) != wanted:
        raise UserError(f"--resume: confirm study '{name}' was run with {study.user_attrs.get(records.CONFIRM)}, "
                        f"this command gives {wanted}; pass the same --top/--seeds/--epochs")
    trials = sum(1 for t in study.get_trials(deepcopy=False))
    stream.write(f"[{name}] random-init floor: seeds {', '.join(map(str, _seeds(study, settings)))}\n")
    plan = StudyPlan(arch=arch, name=name, overrides={"arch": arch}, max_epochs=epochs, grace=epochs,
                     census=census(study), seed=0, params_count=_params_count(source))
    return plan, trials, ConfirmSpace(space)


def _create(storage: Any, name: str, source: optuna.Study, space: str, arch: str, settings: dict[str, int],
            chosen: list[Pick], seeds: list[int]) -> optuna.Study:
    """A new confirm study with its attributes and one enqueued trial per (recipe, seed)."""
    from lightrecipe.trainers.recipe import Recipe

    objective = str(source.user_attrs.get(records.OBJECTIVE, records.DEFAULT_OBJECTIVE))
    study = new_study(storage, name, objective)
    attrs = {records.STUDY_KEY: new_study_key(), records.SPACE: space, records.ARCH: arch,
             records.OBJECTIVE: objective,
             records.MAX_EPOCHS: settings["epochs"], records.KIND: records.KIND_CONFIRM,
             records.SOURCE_STUDY: source.study_name, records.CONFIRM: settings, records.CONFIRM_SEEDS: seeds}
    for key, value in attrs.items():
        study.set_user_attr(key, jsonable(value))
    for pick in chosen:
        base = Recipe.from_dict(pick.recipe, source=f"trial #{pick.source_trial} of '{source.study_name}'")
        for seed in seeds:
            recipe = base.replace(epochs=settings["epochs"], seed=seed).to_dict()
            fitted = {records.FITTED: pick.fitted} if pick.fitted else {}
            study.enqueue_trial({}, user_attrs=jsonable({
                records.CONFIRM_RECIPE: recipe, records.SOURCE_TRIAL: pick.source_trial, records.ROLE: pick.role,
                records.SEED: seed, records.SHORT_VALUE: pick.short_value, **fitted}))
    return study


def _seeds(study: optuna.Study, settings: ConfirmSettings) -> list[int]:
    """The seeds every recipe and the floor are confirmed with."""
    return study.user_attrs.get(records.CONFIRM_SEEDS) or list(range(settings.seeds))  # older studies: 0..N-1


def _floor_recipe(study: optuna.Study) -> Any:
    """The recipe the floor is scored with: the first enqueued one (the floor depends on the arch, the image
    size and the evaluation settings, which every recipe of a study shares)."""
    from lightrecipe.trainers.recipe import Recipe

    first = study.get_trials(deepcopy=False)[0]
    return Recipe.from_dict(first.user_attrs[records.CONFIRM_RECIPE], source=f"{study.study_name} #0")


def _params_count(source: optuna.Study) -> int:
    counts = [t.user_attrs.get(records.PARAMS_COUNT) for t in source.get_trials(deepcopy=False)]
    return int(max((c for c in counts if isinstance(c, int)), default=0))
