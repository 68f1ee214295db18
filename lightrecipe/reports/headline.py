"""The report's headline: per arch, the ResNet-50 settings against the best recipe found, in one row."""

from __future__ import annotations

import math

import pandas as pd

from lightrecipe.reports import figures, tables
from lightrecipe.search import records

TOP_KNOBS = 3  # knobs named per arch in the headline


def headline_data(frames: tables.Frames, metric: str, importance: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per arch: baseline (ResNet-50 settings) and best top-1 in percent, the delta in points, the best
    trial, the most important knobs, and trial counts by state. `importance` is the importance figure's
    data when the caller already has it (fANOVA takes seconds); it is computed otherwise."""
    trials = frames.trials
    comp = figures.comparison_data(frames, metric)
    importance = figures.importance_data(frames, metric) if importance is None else importance
    best = tables.best_trials(trials, metric)
    rows = []
    for arch in tables.arch_order(trials):
        sub = trials[trials["arch"] == arch]
        c = comp[comp["arch"] == arch] if not comp.empty else comp
        get = lambda kind, col: float(c.loc[c["kind"] == kind, col].iloc[0]) if len(c) and (c["kind"] == kind).any() \
            else math.nan  # noqa: E731
        imp = importance[importance["arch"] == arch].sort_values("importance", ascending=False) \
            if not importance.empty else importance
        knobs = ", ".join(f"{r.knob} ({r.importance:.2f})" for r in imp.head(TOP_KNOBS).itertuples()) if len(imp) else ""
        b = best.loc[arch] if arch in best.index else None
        counts = sub["state"].value_counts()
        rows.append(dict(
            arch=arch, baseline=get("baseline", "top1"), best=get("best", "top1"),
            delta=get("best", "top1") - get("baseline", "top1"),
            best_trial=f"{b.study} #{int(b.number)}" if b is not None else "",
            top_knobs=knobs,
            trials=len(sub),
            **{s: int(counts.get(s, 0)) for s in records.STATES},
        ))
    return pd.DataFrame(rows)
