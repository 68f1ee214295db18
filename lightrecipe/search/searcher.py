"""Ray Tune's `OptunaSearch`, made to keep the trial records of `records.py` and to resume a study.

Three things OptunaSearch does not do, added here, all in the driver process (the only database writer):
- records: every trial gets the attributes of `records.py` while it runs (history per epoch) and when it ends;
- states: Tune tells a searcher only "completed" or "errored". A trial ASHA stopped becomes PRUNED (Optuna keeps
  its last intermediate value), a diverged one FAIL with state "diverged", one that raised FAIL with its error;
- resume: trials a killed driver left RUNNING are handed out again before new ones are asked for. The same
  Optuna trial (same number, same params, same run folder) runs again, and train() continues from its last
  checkpoint, so no trial is lost or repeated and the study ends with exactly the trials asked for.
Sampling stays OptunaSearch's: the define-by-run space and the sampler it is given (TPE, multivariate,
constant liar, seeded; see `sweep.py`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import optuna
from ray.tune.search.optuna import OptunaSearch

from lightrecipe.errors import UserError
from lightrecipe.search import records
from lightrecipe.search import trainable as tr
from lightrecipe.search.study import jsonable, run_dir


@dataclass
class TrialRecord:
    """What the driver knows about one running trial."""

    number: int
    params: dict[str, Any]
    baseline: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    reported_steps: set[int] = field(default_factory=set)
    final: dict[str, Any] | None = None
    node: str = ""
    wall_seconds: float = 0.0

    @property
    def last_epoch(self) -> int:
        return int(self.history[-1]["epoch"]) if self.history else 0


class StudySearch(OptunaSearch):
    """OptunaSearch over one study, writing trial records; see the module docstring."""

    def __init__(
        self,
        *,
        study_name: str,
        storage: optuna.storages.BaseStorage,
        sampler: optuna.samplers.BaseSampler,
        space: Any,  # lightrecipe.spaces.Space
        overrides: Mapping[str, Any],
        out: Path,
        max_epochs: int,
        cpus_per_trial: float,
        gpus_per_trial: float,
        params_count: int,
        orphans: list[int] | None = None,
        on_update: Callable[[int, dict[str, Any]], None] | None = None,
    ):
        self._lr_space = space
        self._overrides = dict(overrides)
        self._out = Path(out)
        self._max_epochs = int(max_epochs)
        self._cpus = float(cpus_per_trial)
        self._gpus = float(gpus_per_trial)
        self._params_count = int(params_count)
        self._orphans = list(orphans or [])
        self._on_update = on_update or (lambda number, row: None)
        self._records: dict[str, TrialRecord] = {}
        self._closed: set[str] = set()
        super().__init__(
            space=self._define,
            metric=tr.OBJECTIVE,
            mode="max",
            sampler=sampler,
            study_name=study_name,
            storage=storage,
        )

    # --- sampling -------------------------------------------------------------------------------
    def _define(self, trial: Any) -> dict[str, Any]:
        """Define-by-run: the space samples its active params; the resolved recipe travels in the config."""
        try:
            recipe = self._lr_space.suggest(trial, self._overrides)
        except UserError as exc:  # a sampled combination the Recipe rejects: that trial fails, the sweep goes on
            return {tr.CFG_RECIPE_ERROR: f"sampled recipe is invalid: {exc}"}
        return {tr.CFG_RECIPE: recipe.to_dict()}

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if trial_id not in self._ot_trials and self._orphans:
            # A trial the previous driver left RUNNING: run the same Optuna trial again (same params, folder).
            self._ot_trials[trial_id] = optuna.trial.Trial(self._ot_study, self._orphans.pop(0))
        sampled = super().suggest(trial_id)
        ot_trial = self._ot_trials[trial_id]
        stored = ot_trial.user_attrs
        baseline = bool(stored.get(records.BASELINE))
        recipe, error = sampled.pop(tr.CFG_RECIPE, None), sampled.pop(tr.CFG_RECIPE_ERROR, None)
        if baseline:  # the ResNet-50 settings exactly, not the space's reading of the enqueued params
            recipe, error = self._lr_space.baseline(self._overrides).to_dict(), None
        folder = run_dir(self._out, self._lr_space.name, self._overrides["arch"], ot_trial.number)
        rec = TrialRecord(number=ot_trial.number, params=dict(ot_trial.params), baseline=baseline)
        rec.history = list(stored.get(records.HISTORY) or [])  # epochs a previous driver already recorded
        rec.reported_steps = {int(h["epoch"]) for h in rec.history}
        self._records[trial_id] = rec
        attrs = {
            records.STATE: "running",
            records.ERROR: "",
            records.BASELINE: baseline,
            records.RECIPE: recipe or {},
            records.HISTORY: rec.history,
            records.RUN_DIR: str(folder),
            records.PARAMS_COUNT: self._params_count,
        }
        for key, value in attrs.items():
            ot_trial.set_user_attr(key, jsonable(value))
        self._on_update(rec.number, self._row(rec, "running"))
        return {
            tr.CFG_RECIPE: recipe,
            tr.CFG_RECIPE_ERROR: error,
            tr.CFG_RUN_DIR: str(folder),
            tr.CFG_CPUS: self._cpus,
            tr.CFG_GPUS: self._gpus,
            tr.CFG_BASELINE: baseline,
            "params": jsonable(rec.params),
            "number": rec.number,
        }

    # --- results --------------------------------------------------------------------------------
    def on_trial_result(self, trial_id: str, result: dict) -> None:
        rec = self._records.get(trial_id)
        if rec is None or trial_id in self._closed:
            return
        if self._absorb(trial_id, rec, result):
            ot_trial = self._ot_trials[trial_id]
            ot_trial.set_user_attr(records.HISTORY, jsonable(rec.history))
            self._write_cost(ot_trial, rec)
        self._on_update(rec.number, self._row(rec, "running"))

    def _absorb(self, trial_id: str, rec: TrialRecord, result: Mapping[str, Any]) -> bool:
        """Take one Tune result into the record; True when it added an epoch to the history."""
        rec.node = str(result.get("node") or rec.node)
        rec.wall_seconds = float(result.get("wall_seconds") or rec.wall_seconds)
        rows = []
        if result.get(tr.KIND) == tr.FINAL:
            rec.final = dict(result)
            rows += [r for r in result.get(tr.FULL_HISTORY) or [] if isinstance(r, dict)]
        epoch = result.get("epoch", result.get(tr.LAST_EPOCH))
        if epoch is not None and all(result.get(k) is not None for k in tr.HISTORY_KEYS if k != "epoch"):
            rows.append({**{k: result.get(k) for k in tr.HISTORY_KEYS}, "epoch": epoch})
        added = False
        for row in rows:
            epoch = int(row.get("epoch") or 0)
            if epoch < 1 or epoch in rec.reported_steps:
                continue
            rec.history.append(jsonable({**{k: row.get(k) for k in tr.HISTORY_KEYS}, "epoch": epoch}))
            rec.reported_steps.add(epoch)
            value = row.get(tr.OBJECTIVE)
            if isinstance(value, (int, float)) and math.isfinite(value):
                self._ot_trials[trial_id].report(float(value), step=epoch)
            added = True
        rec.history.sort(key=lambda h: h["epoch"])
        return added

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        rec = self._records.get(trial_id)
        if rec is None or trial_id in self._closed:
            return
        if result:
            self._absorb(trial_id, rec, result)
        final = rec.final or {}
        if error:
            state = "failed"
            message = (
                "the trial's Ray worker died and its retries ran out (killed, out of memory or node lost); "
                f"see the worker logs of the Ray session and the run folder {self._folder(rec)}"
            )
        elif final:
            state, message = str(final.get("state") or "complete"), str(final.get("error") or "")
        elif rec.history:
            state, message = "pruned", ""
        else:
            return  # never ran (stopped while pending): stays RUNNING, `--resume` runs it
        value = final.get(tr.OBJECTIVE)
        if state == "complete" and not (isinstance(value, (int, float)) and math.isfinite(value)):
            state, message = "diverged", message or f"final {tr.OBJECTIVE} is {value}"
        self._finish(trial_id, rec, state, message, value)

    def _finish(self, trial_id: str, rec: TrialRecord, state: str, message: str, value: Any) -> None:
        ot_trial = self._ot_trials[trial_id]
        final = rec.final or {}
        if final and state != "pruned":
            metrics = {k: final.get(k) for k in final.get(tr.METRIC_KEYS) or ()}
            if tr.LAST_EPOCH in final:
                metrics["epoch"] = final[tr.LAST_EPOCH]
            metrics["state"], metrics["error"] = state, message
        else:
            metrics = dict(rec.history[-1]) if rec.history else {}
        if final.get("params"):
            self._params_count = int(final["params"])  # train()'s own count wins over the driver's estimate
        attrs = {
            records.STATE: state,
            records.ERROR: message,
            records.METRICS: metrics,
            records.HISTORY: rec.history,
            records.PARAMS_COUNT: int(final.get("params") or self._params_count),
        }
        for key, val in attrs.items():
            ot_trial.set_user_attr(key, jsonable(val))
        self._write_cost(ot_trial, rec)
        if state == "complete":
            self._ot_study.tell(ot_trial, float(value))
        elif state == "pruned":
            self._ot_study.tell(ot_trial, state=optuna.trial.TrialState.PRUNED)
        else:
            self._ot_study.tell(ot_trial, state=optuna.trial.TrialState.FAIL)
        self._closed.add(trial_id)
        self._completed_trials.add(trial_id)
        row = self._row(rec, state)
        if state == "complete":
            row["value"] = float(value)
        self._on_update(rec.number, row)

    def _write_cost(self, ot_trial: optuna.trial.Trial, rec: TrialRecord) -> None:
        devices = self._gpus if self._gpus > 0 else self._cpus
        ot_trial.set_user_attr(records.WALL_SECONDS, rec.wall_seconds)
        ot_trial.set_user_attr(records.DEVICE_SECONDS, rec.wall_seconds * devices)
        ot_trial.set_user_attr(records.NODE, rec.node)

    def _folder(self, rec: TrialRecord) -> Path:
        return run_dir(self._out, self._lr_space.name, self._overrides["arch"], rec.number)

    def _row(self, rec: TrialRecord, state: str) -> dict[str, Any]:
        value = rec.history[-1].get(tr.OBJECTIVE) if rec.history else None
        return {
            "state": state,
            "epoch": rec.last_epoch,
            "value": value,
            "params": rec.params,
            "baseline": rec.baseline,
            "node": rec.node,
            "wall_seconds": rec.wall_seconds,
        }

    # --- what the sweep asks at the end -----------------------------------------------------------
    def open_trials(self) -> list[int]:
        """Numbers of the trials handed out that have not ended (the time budget ran out, or Tune stopped)."""
        return sorted(rec.number for tid, rec in self._records.items() if tid not in self._closed)

    # Tune checkpoints a searcher's state for its own experiment restore. This sweep resumes from the
    # trial database instead, so there is nothing to save, and a study object does not pickle cleanly.
    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(json.dumps({"resume_from": "the Optuna trial database"}))

    def restore(self, checkpoint_path: str) -> None:
        return None
