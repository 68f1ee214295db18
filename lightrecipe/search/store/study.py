"""The trial database: Optuna storage, one study per (space, arch), and the attributes of `records.py`.

The database is the one source of truth of a sweep. Everything here runs in the driver process, so an
SQLite file has a single writer; it is switched to WAL mode so that a report can read it while the sweep
writes it. On a cluster, any SQLAlchemy URL works (`postgresql://...`, `mysql+pymysql://...`).
"""

from __future__ import annotations

import math
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import optuna
from optuna.trial import TrialState

from lightrecipe.plain_json import jsonable  # noqa: F401 (imported from here by the search modules)
from lightrecipe.search.store import records
from lightrecipe.search.store.optuna_seam import adopt

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def find_study(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study | None:
    if name not in {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}:
        return None
    return optuna.load_study(study_name=name, storage=storage)


def create_study(
    storage: optuna.storages.BaseStorage,
    *,
    space: str,
    arch: str,
    max_epochs: int,
    space_spec: Mapping[str, Any],
    sweep: Mapping[str, Any],
    objective: str = records.DEFAULT_OBJECTIVE,
) -> optuna.Study:
    """A new study for (space, arch) with its study attributes; its sampler is set later by the searcher."""
    study = new_study(storage, records.study_name(space, arch), objective)
    study.set_user_attr(records.STUDY_KEY, new_study_key())
    study.set_user_attr(records.SPACE, space)
    study.set_user_attr(records.ARCH, arch)
    study.set_user_attr(records.OBJECTIVE, objective)
    study.set_user_attr(records.MAX_EPOCHS, int(max_epochs))
    study.set_user_attr(records.SPACE_SPEC, jsonable(dict(space_spec)))
    study.set_user_attr(records.SWEEP, jsonable(dict(sweep)))
    return study


def new_study(storage: optuna.storages.BaseStorage, name: str, objective: str) -> optuna.Study:
    """An empty maximising study whose objective has its name: optuna-dashboard and Optuna's plots otherwise
    label it "Objective 0"."""
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    with warnings.catch_warnings():  # "experimental" since Optuna 3.2 and unchanged since: noise on every sweep
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([objective])
    return study


@dataclass
class Census:
    """Where a study stands: what `--resume` continues and how many trials are still to run."""

    finished: int = 0
    running: list[int] = field(default_factory=list)  # numbers of trials left RUNNING by a driver that died
    waiting: int = 0  # enqueued, not yet asked (the baseline)
    has_baseline: bool = False
    total: int = 0

    def remaining(self, trials: int) -> int:
        return max(trials - self.finished, 0)


def census(study: optuna.Study) -> Census:
    out = Census()
    for t in study.get_trials(deepcopy=False):
        out.total += 1
        if t.state in FINISHED:
            out.finished += 1
        elif t.state == TrialState.RUNNING:
            out.running.append(t.number)
        elif t.state == TrialState.WAITING:
            out.waiting += 1
        if t.user_attrs.get(records.BASELINE):
            out.has_baseline = True
    return out


def settle_stopped(study: optuna.Study, storage: optuna.storages.BaseStorage) -> list[int]:
    """Close as PRUNED the RUNNING trials whose record already says "pruned": ASHA had stopped them and the
    driver died before telling Optuna (the searcher records that state first, see searcher.py), so they are
    not run again. Returns their numbers."""
    settled = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get(records.STATE) != records.PRUNED:
            continue
        trial = adopt(study, storage, t.number)
        for row in t.user_attrs.get(records.HISTORY) or []:
            step, value = int(row.get("epoch") or 0), row.get(records.DEFAULT_OBJECTIVE)
            if step >= 1 and step not in t.intermediate_values and _finite(value):
                trial.report(float(value), step=step)
        study.tell(t.number, state=TrialState.PRUNED)
        settled.append(t.number)
    return settled


def close_extra_running(study: optuna.Study, storage: optuna.storages.BaseStorage, numbers: list[int]) -> None:
    """RUNNING trials beyond what `--trials` still allows (a resume asking for fewer): close them as failed."""
    for number in numbers:
        trial = adopt(study, storage, number)
        trial.set_user_attr(records.STATE, records.FAILED)
        trial.set_user_attr(records.ERROR, "interrupted, and not resumed: the study already had --trials trials")
        study.tell(number, state=TrialState.FAIL)


def enqueue_baseline(study: optuna.Study, params: Mapping[str, Any]) -> None:
    """The ResNet-50 settings as the next trial to be asked; `baseline` marks it from the start."""
    study.enqueue_trial(dict(params), user_attrs={records.BASELINE: True})




def new_study_key() -> str:
    """A random id for a new study (records.STUDY_KEY); 48 bits, so two studies never draw the same one."""
    return uuid.uuid4().hex[:12]


def study_key(study: optuna.Study) -> str:
    """The study's key; a study created before keys existed gets one now (its new trials use it)."""
    key = study.user_attrs.get(records.STUDY_KEY)
    if not key:
        key = new_study_key()
        study.set_user_attr(records.STUDY_KEY, key)
    return str(key)


def run_dir(out: str | Path, space: str, arch: str, key: str, number: int) -> Path:
    """Absolute run folder of trial `number` of the study with `key`: an id, never the recipe
    (a recipe is not a name). The key makes it the study's own: readable names alone can collide (another database in the same
    --out, two space names with the same slug), and train() would then continue another trial's run."""
    folder = f"{slug(space)}--{slug(arch)}--{key}"
    return Path(out).resolve() / "runs" / folder / f"trial-{number:04d}"


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
