"""Trial databases -> tidy DataFrames: one row per trial, and one row per trial x epoch.

Everything the figures and the report show is computed from these two frames. Column names follow
`lightrecipe.search.store.records`; the column list is documented in `load_trials` and `load_curves`.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple, Sequence

import numpy as np
import pandas as pd

from lightrecipe.errors import UserError, first_line
from lightrecipe.reports import sources as sources_mod
from lightrecipe.search.store import records
from lightrecipe.trainers.fit import describe
from lightrecipe.trainers.recipe import FIELD_NAMES

METRICS = ("knn_top1", "linear_top1", "test_knn_top1", "test_linear_top1")  # always present as columns
REPORT_METRICS = records.VALIDATION_METRICS

LATENCY_COLUMNS = ("source", "study", "arch", "device", "device_name", "threads", "image_size", "memory_format",
                   "batch1_ms_median", "batch1_ms_p90", "serving_batch", "serving_images_per_s")
CONFIRM_COLUMNS = ("source_study", "source_trial", "role", "seed", "short_value")  # Frames.confirm adds these
TRIAL_COLUMNS = (
    "source", "study", "space", "arch", "objective", "max_epochs", "number", "optuna_state", "state", "baseline",
    "value", *METRICS, "epochs", "params_count", "wall_seconds", "device_seconds", "node", "run_dir", "error",
    "datetime_start", "datetime_complete", "warm_start", "warm_source_study", "warm_source_trial", "warm_changes", "fitted",
)  # then param_<name> (sampled values), recipe_<field> (resolved recipe) and `distributions` (JSON)


def load_trials(sources: str | Sequence[str]) -> pd.DataFrame:
    """One row per trial of every study in every source.

    Columns: source, study, space, arch, objective, max_epochs, number, optuna_state (Optuna's own),
    state (complete | pruned | failed | diverged | running | waiting), baseline (bool), value (the objective),
    the final metrics (knn_top1, linear_top1, test_knn_top1, test_linear_top1 and any other scalar the trial
    recorded), epochs (epochs run), params_count, wall_seconds, device_seconds, node, run_dir, error,
    datetime_start, datetime_complete, warm_start (the source study a `--warm-start` study started from, ""
    for a cold one), warm_source_study, warm_source_trial and warm_changes ("; "-joined) on each warm-started
    trial (None / "" on the others), `param_<name>` for each sampled parameter, `recipe_<field>` for every
    fitted (what fitting MoCo's settings to the data changed in the recipe, e.g. "queue 128, batch 64: fitted
    to 1078 training images"; "" when nothing),
    Recipe field (NaN where the trial has no recorded recipe yet) and `distributions` (the sampled parameters'
    Optuna distributions as JSON, for importance evaluation).
    """
    return _load(sources).trials


def load_curves(sources: str | Sequence[str]) -> pd.DataFrame:
    """One row per trial x epoch: source, study, arch, number, state, baseline, epoch, `objective_value`
    (the intermediate value Optuna holds for that step) and every per-epoch metric in the trial's history
    (loss, lr, knn_top1, images_per_s, epoch_seconds, ...)."""
    return _load(sources).curves


class Frames(NamedTuple):
    """The tidy frames a report is made of: `trials` (one row per sweep trial, see `load_trials`) and `curves`
    (one row per sweep trial x epoch, see `load_curves`), which every figure's data function takes; `floor`
    (one row per study x seed of the random-init floor: source, study, arch, kind, seed and the four final
    metrics) and `confirm` (one row per trial of a `lightrecipe confirm` study: the trial columns plus
    source_study, source_trial, role, seed, short_value). Confirm trials are never in `trials`: a re-run
    recipe must not count as another searched trial. `latency` (one row per sweep study x measurement of
    records.LATENCY: device, device_name, threads, image_size, batch1_ms_median, batch1_ms_p90, ...)."""

    trials: pd.DataFrame
    curves: pd.DataFrame
    floor: pd.DataFrame = pd.DataFrame(columns=["source", "study", "arch", "kind", "seed", *METRICS])
    confirm: pd.DataFrame = pd.DataFrame(columns=[*TRIAL_COLUMNS, *CONFIRM_COLUMNS])
    latency: pd.DataFrame = pd.DataFrame(columns=list(LATENCY_COLUMNS))


def load(sources: str | Sequence[str]) -> Frames:
    """(trials, curves) from one read of each source."""
    return _load(sources)


def _load(sources: str | Sequence[str]) -> Frames:
    if isinstance(sources, str):
        sources = [sources]
    if not sources:
        raise UserError("no source given; give one or more sweep folders or database URLs")
    resolved = [sources_mod.resolve(s) for s in sources]  # all paths checked before any is read
    trial_rows: list[dict[str, Any]] = []
    curve_rows: list[dict[str, Any]] = []
    floor_rows: list[dict[str, Any]] = []
    confirm_rows: list[dict[str, Any]] = []
    latency_rows: list[dict[str, Any]] = []
    for source in resolved:
        storage = sources_mod.open_storage(source)
        try:
            for study in storage.get_all_studies():
                floor_rows.extend(_floor_rows(source.label, study))
                latency_rows.extend(_latency_rows(source.label, study))
                if study.user_attrs.get(records.KIND) == records.KIND_CONFIRM:
                    _read_study(storage, source.label, study, confirm_rows, [])
                else:
                    _read_study(storage, source.label, study, trial_rows, curve_rows)
        except UserError:
            raise
        except Exception as exc:
            raise UserError(f"source '{source.label}' could not be read as an Optuna trial database: "
                            f"{first_line(exc)}") from None
        finally:
            storage.engine.dispose()
    return Frames(_trials_frame(trial_rows), _curves_frame(curve_rows), _floor_frame(floor_rows),
                  _confirm_frame(confirm_rows), pd.DataFrame(latency_rows, columns=list(LATENCY_COLUMNS)))


def _latency_rows(label: str, study: Any) -> list[dict[str, Any]]:
    """The arch's latency measurements a sweep study holds (records.LATENCY), one row per (device, threads)."""
    meta = _study_meta(label, study)
    rows = study.user_attrs.get(records.LATENCY) or []
    return [{**{c: row.get(c) for c in LATENCY_COLUMNS}, "source": label, "study": meta["study"],
             "arch": meta["arch"]} for row in rows if isinstance(row, dict) and _is_number(row.get(records.LATENCY_MS))]


def _floor_rows(label: str, study: Any) -> list[dict[str, Any]]:
    """The random-init floor rows a study holds (records.FLOOR), one per seed."""
    meta = _study_meta(label, study)
    kind = str(study.user_attrs.get(records.KIND, records.KIND_SWEEP))
    out = []
    for row in study.user_attrs.get(records.FLOOR) or []:
        if isinstance(row, dict) and "seed" in row:
            scores = {m: float(row[m]) if _is_number(row.get(m)) else math.nan for m in METRICS}
            out.append({"source": label, "study": meta["study"], "arch": meta["arch"], "kind": kind,
                        "seed": int(row["seed"]), **scores})
    return out


def _floor_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(Frames._field_defaults["floor"].columns))


def _confirm_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = _trials_frame(rows)
    for column in CONFIRM_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    return frame


def _read_study(storage: Any, label: str, study: Any, trial_rows: list, curve_rows: list) -> None:
    """Append one row per trial of `study` to `trial_rows` and one per trial x epoch to `curve_rows`."""
    meta = _study_meta(label, study)
    study_id = storage.get_study_id_from_name(study.study_name)  # public lookup, not FrozenStudy's private id
    for trial in storage.get_all_trials(study_id, deepcopy=False):
        row = _trial_row(meta, trial)
        trial_rows.append(row)
        curve_rows.extend(_curve_rows(row, trial))


def _study_meta(label: str, study: Any) -> dict[str, Any]:
    """The columns every trial of a study shares, from the study's attributes (older studies: its name)."""
    attrs = study.user_attrs
    name = study.study_name
    return {
        "source": label,
        "study": name,
        "space": str(attrs.get(records.SPACE, name.split("/")[0] if "/" in name else "")),
        "arch": str(attrs.get(records.ARCH, name.split("/")[-1])),
        "objective": str(attrs.get(records.OBJECTIVE, records.DEFAULT_OBJECTIVE)),
        "max_epochs": attrs.get(records.MAX_EPOCHS),
        "source_study": attrs.get(records.SOURCE_STUDY),
        "warm_start": str((attrs.get(records.WARM_START) or {}).get("study", "")),
    }


def _trial_row(meta: dict[str, Any], trial: Any) -> dict[str, Any]:
    """One trial as a flat row: the study's columns, state, metrics, sampled params and resolved recipe."""
    attrs = trial.user_attrs
    history = attrs.get(records.HISTORY) or []
    row: dict[str, Any] = {
        **{k: v for k, v in meta.items() if k != "source_study"},
        "number": trial.number,
        "optuna_state": trial.state.name,
        "state": _state(trial.state.name, attrs.get(records.STATE)),
        "baseline": bool(attrs.get(records.BASELINE, False)),
        "value": trial.value if trial.values is not None else math.nan,
        "epochs": len(history) if history else len(trial.intermediate_values),
        "params_count": attrs.get(records.PARAMS_COUNT),
        "wall_seconds": attrs.get(records.WALL_SECONDS),
        "device_seconds": attrs.get(records.DEVICE_SECONDS),
        "node": attrs.get(records.NODE, ""),
        "run_dir": attrs.get(records.RUN_DIR, ""),
        "error": str(attrs.get(records.ERROR, "") or ""),
        "datetime_start": trial.datetime_start,
        "datetime_complete": trial.datetime_complete,
        "warm_source_study": attrs.get(records.WARM_SOURCE_STUDY),
        "warm_source_trial": attrs.get(records.WARM_SOURCE_TRIAL),
        "warm_changes": "; ".join(attrs.get(records.WARM_CHANGES) or []),
        "fitted": describe(attrs.get(records.FITTED)),
    }
    for key, val in (attrs.get(records.METRICS) or {}).items():
        if _is_number(val):
            row[key if key not in TRIAL_COLUMNS or key in METRICS else f"metric_{key}"] = float(val)
    objective = meta["objective"]
    if _is_nan(row.get(objective)) and not _is_nan(row["value"]):
        row[objective] = row["value"]  # the objective is the trial's value when no metrics dict was written
    for key, val in trial.params.items():
        row[f"param_{key}"] = val
    if attrs.get(records.ROLE):  # a confirm trial: what it re-trains (records.py)
        row.update(source_study=meta.get("source_study"), source_trial=attrs.get(records.SOURCE_TRIAL),
                   role=attrs.get(records.ROLE), seed=attrs.get(records.SEED), short_value=attrs.get(records.SHORT_VALUE))
    recipe = attrs.get(records.RECIPE) or {}
    for field in FIELD_NAMES:
        row[f"recipe_{field}"] = recipe.get(field, math.nan)
    row["distributions"] = json.dumps(
        {k: _distribution_json(d) for k, d in trial.distributions.items()}, sort_keys=True
    )
    return row


def _curve_rows(row: dict[str, Any], trial: Any) -> list[dict[str, Any]]:
    """One row per epoch the trial reported: its history entries merged with Optuna's intermediate values."""
    base = {k: row[k] for k in ("source", "study", "arch", "number", "state", "baseline")}
    by_epoch: dict[int, dict[str, Any]] = {}
    for entry in trial.user_attrs.get(records.HISTORY) or []:
        if not isinstance(entry, dict) or "epoch" not in entry:
            continue
        point = by_epoch.setdefault(int(entry["epoch"]), {})
        point.update({k: v for k, v in entry.items() if k != "epoch" and (_is_number(v) or isinstance(v, str))})
    for step, val in trial.intermediate_values.items():
        by_epoch.setdefault(int(step), {})["objective_value"] = val
    return [{**base, "epoch": epoch, **by_epoch[epoch]} for epoch in sorted(by_epoch)]


def _distribution_json(dist: Any) -> str:
    import optuna

    return optuna.distributions.distribution_to_json(dist)


def _state(optuna_state: str, recorded: Any) -> str:
    """The trial's state: Optuna's, refined by the state the trainer recorded (`diverged` is only recorded).

    A trial Optuna still holds as RUNNING is shown as running whatever it recorded: it has not finished
    (or its sweep crashed while it ran)."""
    base = records.STATE_OF_OPTUNA.get(optuna_state, optuna_state.lower())
    if base in (records.RUNNING, records.WAITING):
        return base
    if recorded in records.STATES and recorded != records.RUNNING:
        if base == records.COMPLETE and recorded in (records.FAILED, records.PRUNED):
            return base  # Optuna's terminal state wins over a stale attribute
        return str(recorded)
    return base


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _trials_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in TRIAL_COLUMNS:
        if column not in frame.columns:
            frame[column] = math.nan if column in METRICS or column == "value" else None
    for column in (*METRICS, "value", "wall_seconds", "device_seconds", "params_count"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    if "distributions" not in frame.columns:
        frame["distributions"] = pd.Series(dtype=str)
    recipe_cols = [f"recipe_{f}" for f in FIELD_NAMES]
    for column in recipe_cols:
        if column not in frame.columns:
            frame[column] = math.nan
    extra = sorted(c for c in frame.columns if c not in TRIAL_COLUMNS and not c.startswith(("param_", "recipe_"))
                   and c != "distributions")
    params = sorted(c for c in frame.columns if c.startswith("param_"))
    order = [*TRIAL_COLUMNS, *extra, *params, *recipe_cols, "distributions"]
    frame = frame[order]
    if len(frame):
        frame = frame.sort_values(["source", "study", "number"], kind="stable").reset_index(drop=True)
    frame["baseline"] = frame["baseline"].astype(bool)
    return frame


def _curves_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in ("source", "study", "arch", "number", "state", "baseline", "epoch", "objective_value"):
        if column not in frame.columns:
            frame[column] = pd.Series(dtype=float if column == "objective_value" else object)
    return frame
