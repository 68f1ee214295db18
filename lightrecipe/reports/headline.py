"""The report's headline: per arch, the random-init floor, the ResNet-50 settings and the best recipe found, in
one row. From the sweep (val, one seed per recipe) or, when `lightrecipe confirm` ran for the arch, from the
confirm runs (test split, mean and 95% interval over seeds): the numbers a reader should trust most."""

from __future__ import annotations

import math

import pandas as pd

from lightrecipe.reports import figures, holdup, selections, tables
from lightrecipe.search.store import records
from lightrecipe.words import counted

TOP_KNOBS = 3  # knobs named per arch in the headline


def headline_data(frames: tables.Frames, metric: str, importance: pd.DataFrame | None = None,
                  confirmed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per arch: floor, baseline (ResNet-50 settings) and best top-1 in percent with `*_ci` (95% half-width,
    NaN for single sweep runs), `baseline_fit` (what fitting to the data changed in those settings, "" when
    nothing), the delta in points, `basis` ("sweep val" or "confirm test, N seeds"), the best
    trial and its run folder(s), the most important knobs, trial counts by state, `params_m` (backbone parameters,
    millions) and `latency_ms` (batch-1 latency as the sweep measured it, NaN where it did not; attrs
    ["latency_caption"] names the device and threads, selections.latency_by_arch). `importance` is the
    importance figure's data when the caller already has it (fANOVA takes seconds), `confirmed` is
    `holdup.holdup_data`; each is computed when not given."""
    trials = frames.trials
    comp = figures.comparison_data(frames, metric)
    importance = figures.importance_data(frames, metric) if importance is None else importance
    best = selections.best_trials(trials, metric)
    confirmed = holdup.holdup_data(frames, metric) if confirmed is None else confirmed
    winners = holdup.confirmed_winners(confirmed, metric)
    latency = selections.latency_by_arch(frames.latency)
    rows = []
    for arch in selections.arch_order(trials):
        sub = trials[trials["arch"] == arch]
        c = comp[comp["arch"] == arch] if not comp.empty else comp
        get = lambda kind, col: float(c.loc[c["kind"] == kind, col].iloc[0]) if len(c) and (c["kind"] == kind).any() \
            else math.nan  # noqa: E731
        imp = importance[importance["arch"] == arch].sort_values("importance", ascending=False) \
            if not importance.empty else importance
        knobs = ", ".join(f"{r.knob} ({r.importance:.2f})" for r in imp.head(TOP_KNOBS).itertuples()) if len(imp) else ""
        best_row = best.loc[arch] if arch in best.index else None
        counts = sub["state"].value_counts()
        row = dict(
            arch=arch, floor=get("floor", "top1"), baseline=get("baseline", "top1"), best=get("best", "top1"),
            floor_ci=math.nan, baseline_ci=math.nan, best_ci=math.nan,
            delta=get("best", "top1") - get("baseline", "top1"), basis=f"sweep val {metric}",
            best_trial=f"{best_row.study} #{int(best_row.number)}" if best_row is not None else "",
            best_run_dir=str(best_row.run_dir or "") if best_row is not None else "",
            top_knobs=knobs,
            trials=len(sub),
            baseline_fit=selections.baseline_fit(sub[sub["baseline"]]),
            params_m=selections.params_millions(trials, arch),
            latency_ms=float(latency.loc[arch, "latency_ms"]) if arch in latency.index else math.nan,
            **{s: int(counts.get(s, 0)) for s in records.STATES},
        )
        if arch in winners.index:
            winner = winners.loc[arch]
            row.update(_confirmed(confirmed[confirmed["arch"] == arch], winner, metric))
            runs = frames.confirm
            row["baseline_fit"] = selections.baseline_fit(
                runs[(runs["study"] == winner.study) & (runs["role"] == records.ROLE_RESNET50)])
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs["latency_caption"] = latency.attrs["caption"]
    return frame


def _confirmed(part: pd.DataFrame, winner: pd.Series, metric: str) -> dict:
    """The headline cells from a confirm run: test `metric` of the winner, the ResNet-50 settings and the floor."""
    test = holdup.TEST_OF[metric]
    part = part[part["study"] == winner.study]

    def cell(rows: pd.DataFrame) -> tuple[float, float]:
        if rows.empty:
            return math.nan, math.nan
        return 100 * float(rows.iloc[0][test]), 100 * float(rows.iloc[0][f"{test}_ci"])

    floor, floor_ci = cell(part[part["role"] == "floor"])
    base, base_ci = cell(part[part["role"] == records.ROLE_RESNET50])
    best, best_ci = cell(part[part["label"] == winner.label])
    return dict(floor=floor, floor_ci=floor_ci, baseline=base, baseline_ci=base_ci, best=best, best_ci=best_ci,
                delta=best - base, basis=f"confirm {test}, {counted(int(winner.n), 'seed')}",
                best_trial=f"{winner.study} recipe {winner.label}", best_run_dir="; ".join(map(str, winner.run_dirs)))
