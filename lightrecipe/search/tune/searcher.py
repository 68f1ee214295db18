"""Optuna sampling behind Ray Tune's public `Searcher` interface, writing the trial records of `records.py`.

Tune hands this searcher trial ids and results; the `TrialLedger` (ledger.py) turns them into Optuna
ask-and-tell calls on one study. All of it runs in the driver process, the only database writer.
- suggest: the next trial from the ledger (a killed driver's RUNNING trials first, same params and run
  folder, so train() continues from its checkpoint; then `study.ask()`), its recipe and run folder as config;
- results: each epoch's metrics go into the history and the intermediate values; the final result
  (trainable.py) carries train()'s metrics, its state and the run folder's whole history, so epochs a
  killed driver never recorded still arrive;
- states: Tune tells a searcher only "completed" or "errored". A trial the scheduler stopped becomes pruned,
  one whose final result says diverged or failed becomes that (diverged trials are PRUNED in Optuna, see
  ledger.OPTUNA_STATE), one whose worker kept dying fails with that reason, and one Tune stopped for any
  other reason (time budget, interrupt) stays RUNNING for `--resume`.
The live study and storage (whose URL can hold a database password) never leave this process: Tune pickles
the searcher into its experiment folder (`tuner.pkl`, possibly on S3), and a pickled searcher carries
neither (`__getstate__`).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ray.tune.search import Searcher

from lightrecipe.search.store import records
from lightrecipe.search.store.ledger import TrialLedger
from lightrecipe.search.store.study import jsonable
from lightrecipe.search.tune import trainable
from lightrecipe.search.tune.trackers import CFG_TAGS
from lightrecipe.trainers.run import trackers

log = logging.getLogger(__name__)


@dataclass
class TrialRecord:
    """What the driver knows about one running trial."""

    number: int
    params: dict[str, Any]
    baseline: bool
    run_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] | None = None
    node: str = ""
    wall_seconds: float = 0.0

    @property
    def last_epoch(self) -> int:
        return int(self.history[-1]["epoch"]) if self.history else 0

    def absorb(self, result: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Take one Tune result in; returns the epochs it added to the history (repeats are ignored)."""
        self.node = str(result.get("node") or self.node)
        self.wall_seconds = float(result.get("wall_seconds") or self.wall_seconds)
        rows = []
        if result.get(trainable.KIND) == trainable.FINAL:
            self.final = dict(result)
            rows += [r for r in result.get(trainable.FULL_HISTORY) or [] if isinstance(r, dict)]
        epoch = result.get("epoch", result.get(trainable.LAST_EPOCH))
        if epoch is not None and all(result.get(k) is not None for k in trainable.HISTORY_KEYS if k != "epoch"):
            rows.append({**{k: result.get(k) for k in trainable.HISTORY_KEYS}, "epoch": epoch})
        seen = {int(h["epoch"]) for h in self.history}
        added = []
        for row in rows:
            epoch = int(row.get("epoch") or 0)
            if epoch < 1 or epoch in seen:
                continue
            added.append(jsonable({**{k: row.get(k) for k in trainable.HISTORY_KEYS}, "epoch": epoch}))
            seen.add(epoch)
        self.history = sorted(self.history + added, key=lambda h: h["epoch"])
        return sorted(added, key=lambda h: h["epoch"])


class StudySearcher(Searcher):
    """One study's searcher; see the module docstring."""

    def __init__(
        self,
        ledger: TrialLedger,
        *,
        cpus_per_trial: float,
        gpus_per_trial: float,
        stopped_by_scheduler: Callable[[int], bool],
        on_update: Callable[[int, dict[str, Any]], None] | None = None,
        workers_per_trial: int = 1,
        worker_failures: int = 0,
    ):
        super().__init__(metric=trainable.OBJECTIVE, mode="max")
        self._ledger: TrialLedger | None = ledger
        self._cpus = float(cpus_per_trial)
        self._gpus = float(gpus_per_trial)
        self._workers = {trainable.CFG_WORKERS: int(workers_per_trial), trainable.CFG_WORKER_FAILURES: int(worker_failures)}
        self._stopped_by_scheduler = stopped_by_scheduler
        self._on_update = on_update or (lambda number, row: None)
        self._records: dict[str, TrialRecord] = {}
        self._closed: set[str] = set()

    # Tune pickles its search algorithm into the experiment folder: leave the database behind.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_ledger": None}

    @property
    def ledger(self) -> TrialLedger:
        if self._ledger is None:
            raise RuntimeError("a pickled copy of a StudySearcher has no trial database; use the original")
        return self._ledger

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # metric, mode and space are the study's; Tune's param_space stays empty

    # --- sampling -------------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        started = self.ledger.start()
        rec = TrialRecord(started.number, started.params, started.baseline, started.run_dir, list(started.history))
        self._records[trial_id] = rec
        self._on_update(rec.number, self._row(rec, records.RUNNING))
        return {
            trainable.CFG_RECIPE: started.recipe,
            trainable.CFG_RECIPE_ERROR: started.recipe_error,
            trainable.CFG_RUN_DIR: str(started.run_dir),
            trainable.CFG_CPUS: self._cpus,
            trainable.CFG_GPUS: self._gpus,
            **self._workers,
            trainable.CFG_BASELINE: started.baseline,
            "params": jsonable(rec.params),
            "number": rec.number,
            CFG_TAGS: self._tags(started),
        }

    def _tags(self, started: Any) -> dict[str, str]:
        """What a tracker files the trial under (trainers/run/trackers.py): its study, arch and number."""
        study = self.ledger.study
        attrs = study.user_attrs
        return trackers.tags(study=study.study_name, arch=str(attrs.get(records.ARCH, "")),
                             kind=str(attrs.get(records.KIND, records.KIND_SWEEP)), trial=started.number,
                             baseline=started.baseline, source_trial=started.source_trial, seed=started.seed)

    # --- results --------------------------------------------------------------------------------
    def on_trial_result(self, trial_id: str, result: dict) -> None:
        rec = self._open(trial_id)
        if rec is None:
            return
        added = rec.absorb(result)
        if added:
            self.ledger.record_epochs(rec.number, added, rec.history)
            self._record_cost(rec)
        self._on_update(rec.number, self._row(rec, records.RUNNING))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        rec = self._open(trial_id)
        if rec is None:
            return
        added = rec.absorb(result) if result else []
        if error:
            state, message = records.FAILED, (
                "the trial's Ray worker died and its retries ran out (killed, out of memory or node lost; "
                f"--max-failures); see the Ray session's worker logs and the run folder {rec.run_dir}"
            )
        elif rec.final:
            state, message = str(rec.final.get("state") or records.COMPLETE), str(rec.final.get("error") or "")
        elif self._stopped_by_scheduler(rec.number):
            state, message = records.PRUNED, ""
            self.ledger.record_stopped(rec.number, added, rec.history)
            added = []
        else:  # stopped by Tune (time budget, interrupt) or never started: RUNNING, `--resume` continues it
            if added:
                self.ledger.record_epochs(rec.number, added, rec.history)
                self._record_cost(rec)
            return
        if added:
            self.ledger.record_epochs(rec.number, added, rec.history)
        self._finish(trial_id, rec, state, message)

    def _finish(self, trial_id: str, rec: TrialRecord, state: str, message: str) -> None:
        final = rec.final or {}
        value = final.get(trainable.OBJECTIVE)
        if state == records.COMPLETE and not (isinstance(value, (int, float)) and math.isfinite(value)):
            state, message = records.DIVERGED, message or f"final {trainable.OBJECTIVE} is {value}"
        if final.get(trainable.TRACEBACK):
            log.error("trial %d failed on %s: %s\n%s", rec.number, rec.node or "?", message, final[trainable.TRACEBACK])
        if final and state != records.PRUNED:
            metrics = {k: final.get(k) for k in final.get(trainable.METRIC_KEYS) or ()}
            if trainable.LAST_EPOCH in final:
                metrics["epoch"] = final[trainable.LAST_EPOCH]
            metrics["state"], metrics["error"] = state, message
        else:
            metrics = dict(rec.history[-1]) if rec.history else {}
        self._record_cost(rec)
        self.ledger.finish(
            rec.number, state=state, message=message, metrics=metrics, history=rec.history,
            value=value if state == records.COMPLETE else None, params_count=final.get("params"),
        )
        self._closed.add(trial_id)
        row = self._row(rec, state)
        if state == records.COMPLETE:
            row["value"] = float(value)
        row["error"] = message
        self._on_update(rec.number, row)

    def _open(self, trial_id: str) -> TrialRecord | None:
        return None if trial_id in self._closed else self._records.get(trial_id)

    def _record_cost(self, rec: TrialRecord) -> None:
        devices = self._gpus if self._gpus > 0 else self._cpus
        self.ledger.record_cost(rec.number, rec.wall_seconds, devices, rec.node)

    def _row(self, rec: TrialRecord, state: str) -> dict[str, Any]:
        value = rec.history[-1].get(trainable.OBJECTIVE) if rec.history else None
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
    # trial database instead, so there is nothing to save (and the database must not be written out).
    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(json.dumps({"resume_from": "the Optuna trial database"}))

    def restore(self, checkpoint_path: str) -> None:
        return None
