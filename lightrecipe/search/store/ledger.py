"""The driver's writes to one study: trials started through Optuna's ask-and-tell API, recorded with the
attributes of `records.py`, and ended with a state.

Ordering is what makes `--resume` exact, since a driver can be killed between any two writes:
- `start` writes the run folder first; the folder is a function of the study's key and the trial number,
  so a trial killed before even that is run again, from scratch, in the folder it would have had;
- an epoch ASHA let through is reported (intermediate value) before the history attribute: an intermediate
  value at a rung of a RUNNING trial means ASHA judged it and let it go on;
- a trial ASHA stopped gets state "pruned" before its last value is reported, so a driver killed before
  `tell` leaves a trial that `study.settle_stopped` closes as PRUNED instead of running it to the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import optuna
from optuna.trial import TrialState

from lightrecipe.errors import UserError
from lightrecipe.search.store import records
from lightrecipe.search.store.optuna_seam import adopt
from lightrecipe.search.store.study import jsonable, run_dir, study_key

OBJECTIVE = records.DEFAULT_OBJECTIVE
# records state -> Optuna state (records.OPTUNA_STATE_NAMES says why a diverged trial is PRUNED)
OPTUNA_STATE = {state: TrialState[name] for state, name in records.OPTUNA_STATE_NAMES.items()}


@dataclass
class Started:
    """A trial handed out: its Optuna number and params, what it trains, and the epochs already recorded."""

    number: int
    params: dict[str, Any]
    baseline: bool
    recipe: dict[str, Any] | None
    recipe_error: str | None
    run_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    source_trial: int | None = None  # a confirm run: the sweep trial it re-trains
    seed: int | None = None  # a confirm run: its recipe seed


class TrialLedger:
    def __init__(
        self,
        study: optuna.Study,
        storage: optuna.storages.BaseStorage,
        *,
        space: Any,  # lightrecipe.spaces.Space
        overrides: Mapping[str, Any],
        out: Path,
        params_count: int,
        orphans: list[int] | None = None,
        fit_to: Any = None,  # trainers/fit.TrainImages: MoCo's queue and batch fitted to the data
    ):
        self.study = study
        self.fit_to = fit_to
        self.storage = storage
        self.space = space
        self.overrides = dict(overrides)
        self.out = Path(out)
        self.params_count = int(params_count)
        self.orphans = list(orphans or [])  # RUNNING trials of a driver that died: handed out first
        self.key = study_key(study)
        self._trials: dict[int, optuna.trial.Trial] = {}

    # --- start ------------------------------------------------------------------------------------
    def start(self) -> Started:
        """The next trial: a killed driver's RUNNING trial again (same number, params and folder), else a
        new one from `study.ask()` (the enqueued baseline comes first)."""
        if self.orphans:
            trial = adopt(self.study, self.storage, self.orphans.pop(0))
        else:
            trial = self.study.ask()
        stored = trial.user_attrs
        folder = Path(stored.get(records.RUN_DIR) or run_dir(
            self.out, self.space.name, self.overrides["arch"], self.key, trial.number))
        trial.set_user_attr(records.RUN_DIR, str(folder))
        baseline = bool(stored.get(records.BASELINE))
        recipe, error, fitted = self._recipe(trial, baseline)
        history = list(stored.get(records.HISTORY) or [])  # epochs a previous driver already recorded
        attrs = {
            records.STATE: records.RUNNING,
            records.ERROR: "",
            records.BASELINE: baseline,
            records.RECIPE: recipe or {},
            records.HISTORY: history,
            records.PARAMS_COUNT: self.params_count,
        }
        if fitted is not None:
            attrs[records.FITTED] = fitted
        for key, value in attrs.items():
            trial.set_user_attr(key, jsonable(value))
        self._trials[trial.number] = trial
        return Started(trial.number, dict(trial.params), baseline, recipe, error, folder, history,
                       stored.get(records.SOURCE_TRIAL), stored.get(records.SEED))

    def _recipe(self, trial: optuna.trial.Trial, baseline: bool) -> tuple[dict[str, Any] | None, str | None,
                                                                         dict[str, Any] | None]:
        """Define-by-run on the trial: the space samples (or, for an adopted trial, reads back) its params.
        Returns the recipe, the error that made it invalid, and what fitting to the data changed (fit.py)."""
        fitted = None
        try:
            if self.fit_to is None:  # confirm's space: whole recipes, fitted when they were enqueued
                recipe = self.space.suggest(trial, self.overrides).to_dict()
            else:
                fit = self.space.suggest_fit(trial, self.overrides, fit_to=self.fit_to)
                recipe, fitted = fit.recipe.to_dict(), fit.record()
        except UserError as exc:  # a sampled combination the Recipe rejects: that trial fails, the sweep goes on
            recipe, error = None, f"sampled recipe is invalid: {exc}"
        else:
            error = None
        if baseline:  # the ResNet-50 settings exactly, not the space's reading of the enqueued params
            fit = self.space.baseline_fit(self.overrides, fit_to=self.fit_to)
            return fit.recipe.to_dict(), None, fit.record()
        return recipe, error, fitted

    # --- while it runs ------------------------------------------------------------------------------
    def record_epochs(self, number: int, rows: list[dict[str, Any]], history: list[dict[str, Any]]) -> None:
        """Epochs ASHA let through: intermediate values first, then the history attribute."""
        self._report(number, rows)
        self._trials[number].set_user_attr(records.HISTORY, jsonable(history))

    def record_stopped(self, number: int, rows: list[dict[str, Any]], history: list[dict[str, Any]]) -> None:
        """A trial ASHA stopped: history, then state "pruned", then the values (see the module docstring)."""
        trial = self._trials[number]
        trial.set_user_attr(records.HISTORY, jsonable(history))
        trial.set_user_attr(records.STATE, records.PRUNED)
        self._report(number, rows)

    def record_cost(self, number: int, wall_seconds: float, devices: float, node: str) -> None:
        trial = self._trials[number]
        trial.set_user_attr(records.WALL_SECONDS, wall_seconds)
        trial.set_user_attr(records.DEVICE_SECONDS, wall_seconds * devices)
        trial.set_user_attr(records.NODE, node)

    def _report(self, number: int, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            value = row.get(OBJECTIVE)
            if isinstance(value, (int, float)) and math.isfinite(value):
                self._trials[number].report(float(value), step=int(row["epoch"]))

    # --- end ----------------------------------------------------------------------------------------
    def finish(
        self,
        number: int,
        *,
        state: str,
        message: str,
        metrics: Mapping[str, Any],
        history: list[dict[str, Any]],
        value: float | None = None,
        params_count: int | None = None,
    ) -> None:
        """The trial's last attributes, then `tell` with the Optuna state of `state` (OPTUNA_STATE)."""
        trial = self._trials.pop(number)
        if params_count:
            self.params_count = int(params_count)  # train()'s own count wins over the driver's estimate
        attrs = {
            records.STATE: state,
            records.ERROR: message,
            records.METRICS: dict(metrics),
            records.HISTORY: history,
            records.PARAMS_COUNT: int(params_count or self.params_count),
        }
        for key, val in attrs.items():
            trial.set_user_attr(key, jsonable(val))
        if state == records.COMPLETE:
            self.study.tell(trial, float(value))  # type: ignore[arg-type]
        else:
            self.study.tell(trial, state=OPTUNA_STATE[state])
