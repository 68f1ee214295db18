"""Trial databases -> tidy DataFrames: one row per trial, and one row per trial x epoch.

Everything the figures and the report show is computed from these two frames. Column names follow
`lightrecipe.search.store.records`; the column list is documented in `load_trials` and `load_curves`.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, NamedTuple, Sequence

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


# --- selections the figures and the report share ----------------------------------------------------------


def baseline_fit(rows: pd.DataFrame) -> str:
    """What fitting changed in the ResNet-50 settings among `rows` (baseline trials, or confirm runs of them):
    the first note, e.g. "queue 128, batch 64: fitted to 1078 training images"; "" when nothing changed."""
    notes = [str(n) for n in rows.get("fitted", pd.Series(dtype=object)) if isinstance(n, str) and n]
    return notes[0] if notes else ""


def baseline_name(fitted: str) -> str:
    """"ResNet-50 settings", with the fitted queue and batch in parentheses when fitting changed them."""
    return "ResNet-50 settings" + (f" ({fitted})" if fitted else "")


def searched_params(trials: pd.DataFrame) -> list[str]:
    """Names of the sampled parameters (without the `param_` prefix)."""
    return [c[len("param_"):] for c in trials.columns if c.startswith("param_") and trials[c].notna().any()]


def scored(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Complete trials with a finite value of `metric`."""
    if metric not in trials.columns:
        return trials.iloc[0:0]
    mask = (trials["state"] == records.COMPLETE) & np.isfinite(pd.to_numeric(trials[metric], errors="coerce"))
    return trials[mask]


def best_trials(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per arch, the complete trial with the highest `metric` (ties: the earlier trial)."""
    done = scored(trials, metric)
    if done.empty:
        return done
    ordered = done.sort_values([metric, "number"], ascending=[False, True], kind="stable")
    return ordered.groupby("arch", sort=True).head(1).set_index("arch", drop=False).sort_index()


def arch_order(trials: pd.DataFrame) -> list[str]:
    """Archs in a stable order: efficient nets by parameter count, ResNets last."""
    archs = sorted(set(trials["arch"].dropna().astype(str)))
    counts = trials.groupby("arch")["params_count"].max() if len(trials) else pd.Series(dtype=float)
    return sorted(archs, key=lambda a: (a.startswith("resnet"), float(counts.get(a, np.inf) or np.inf), a))


def state_counts(trials: pd.DataFrame) -> pd.DataFrame:
    """Per study: how many trials are in each state."""
    if trials.empty:
        return pd.DataFrame(columns=["source", "study", "arch"])
    table = trials.groupby(["source", "study", "arch", "state"]).size().unstack("state", fill_value=0)
    return table.reset_index()


def as_percent(values: Iterable[float] | pd.Series) -> pd.Series:
    """Accuracies as percentages: fractions (all <= 1) are multiplied by 100, percentages are kept."""
    series = pd.to_numeric(pd.Series(values), errors="coerce")
    finite = series[np.isfinite(series)]
    return series * 100.0 if len(finite) and finite.abs().max() <= 1.0 else series


def top_trials(trials: pd.DataFrame, metric: str, n: int = 5) -> pd.DataFrame:
    """Per arch (archs by name), its `n` best complete trials by `metric`: arch, number, baseline, the metric
    and every sampled parameter (`param_<name>`, NaN where a trial did not sample it)."""
    done = scored(trials, metric)
    if done.empty:
        return done
    params = [c for c in done.columns if c.startswith("param_") and done[c].notna().any()]
    top = done.sort_values(metric, ascending=False).groupby("arch", sort=False).head(n)
    top = top.sort_values(["arch", metric], ascending=[True, False])
    return top[["arch", "number", "baseline", metric, *params]]


def floor_by_arch(floor: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per arch: the random-init floor's mean `metric` over its seeds, as a fraction (`value`), with `n` and
    `seeds`. A seed measured by both a sweep and a confirm study counts once (the same backbone, scored alike)."""
    columns = ["arch", "value", "n", "seeds"]
    if floor is None or floor.empty or metric not in floor.columns:
        return pd.DataFrame(columns=columns).set_index("arch", drop=False)
    finite = floor[np.isfinite(pd.to_numeric(floor[metric], errors="coerce"))]
    once = finite.drop_duplicates(["arch", "seed"])
    rows = [dict(arch=arch, value=float(part[metric].mean()), n=len(part),
                 seeds=",".join(str(int(s)) for s in sorted(part["seed"])))
            for arch, part in once.groupby("arch", sort=True)]
    return pd.DataFrame(rows, columns=columns).set_index("arch", drop=False)


# --- latency: what the report table and the latency figure show --------------------------------------------

# Shown: one CPU thread, batch 1 (a serving worker per core); the nearest thing to a number another machine can
# compare with. The other measurements stay in the frame (Frames.latency).
LATENCY_SHOWN = ("cpu", 1)
NOT_MEASURED = "not measured"


def shown_latency(latency: pd.DataFrame) -> pd.DataFrame:
    """The measurements at LATENCY_SHOWN, else (no such measurement) the first setting measured; empty when
    no study recorded a latency."""
    if latency is None or latency.empty:
        return pd.DataFrame(columns=list(LATENCY_COLUMNS))
    key = latency["device"].astype(str) + "/" + latency["threads"].astype(str)  # threads None on a GPU
    wanted = f"{LATENCY_SHOWN[0]}/{LATENCY_SHOWN[1]}"
    return latency[key == (wanted if (key == wanted).any() else key.iloc[0])]


def latency_caption(measured: pd.Series) -> str:
    """Where a shown latency was measured: the chip, the device, the threads and the image size."""
    threads = "" if pd.isna(measured["threads"]) else int(measured["threads"])
    on = f", {threads} thread{'' if threads == 1 else 's'}" if threads else ""
    return (f"batch-1 latency, median of warm runs: {measured['device_name']} ({measured['device']}{on}), "
            f"{int(measured['image_size'])} px")


def latency_by_arch(latency: pd.DataFrame) -> pd.DataFrame:
    """Per arch (index): latency_ms and latency_p90_ms at the shown setting (an arch's last study's numbers);
    attrs["caption"] says where they were measured, or that nothing was."""
    shown = shown_latency(latency)
    frame = pd.DataFrame({"latency_ms": pd.to_numeric(shown[records.LATENCY_MS]).values,
                          "latency_p90_ms": pd.to_numeric(shown["batch1_ms_p90"]).values},
                         index=pd.Index(shown["arch"].values, name="arch"))
    frame = frame[~frame.index.duplicated(keep="last")]
    frame.attrs["caption"] = latency_caption(shown.iloc[0]) if len(shown) else (
        f"latency {NOT_MEASURED}: no sweep study recorded one (sweeps measure it on their driver)")
    return frame


def params_millions(trials: pd.DataFrame, arch: str) -> float:
    """The arch's backbone parameters in millions, as its trials recorded them (NaN when none did)."""
    counts = pd.to_numeric(trials.loc[trials["arch"] == arch, "params_count"], errors="coerce")
    return float(counts.max()) / 1e6 if counts.notna().any() else math.nan
