"""Figure 4, parameter importance per arch (fANOVA, seeded).
"""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np
import pandas as pd

import lightrecipe.reports.figures.style as style
from lightrecipe.reports import selections, tables
from lightrecipe.reports.figures.common import (
    empty_frame,
    is_numeric,
    plain_value,
    sampled_on_log_scale,
    short_label,
    suptitle,
    with_top1,
)

MIN_TRIALS_FOR_IMPORTANCE = 8  # fewer complete trials than this cannot separate eight-odd knobs' effects
IMPORTANCE_SEED = 0  # fANOVA's random forest: fixed, so the same database gives the same figure


# --- 4. parameter importance ----------------------------------------------------------------------------


def importance_data(frames: tables.Frames, metric: str = "knn_top1", *, seed: int = IMPORTANCE_SEED) -> pd.DataFrame:
    """Per arch: fANOVA importance (Optuna's `FanovaImportanceEvaluator`, seeded) of each searched knob for
    `metric`, normalised to sum to 1.

    A knob that a trial did not sample (a conditional parameter such as `smoothing_alpha` when smoothing is
    off) takes the value the trial's resolved recipe ran with, so conditional knobs are assessed over every
    trial instead of being dropped. Archs with fewer than `MIN_TRIALS_FOR_IMPORTANCE` complete trials are
    left out, with a note in `attrs["notes"]`; `attrs["title"]` names the knob that matters most per arch.
    """
    trials = frames.trials
    done = with_top1(trials, metric)
    order = selections.arch_order(trials)
    params = selections.searched_params(trials)
    notes: list[str] = []
    rows = []
    for arch in order:
        sub = done[done["arch"] == arch]
        if len(sub) < MIN_TRIALS_FOR_IMPORTANCE:
            notes.append(f"{arch}: {len(sub)} complete trial(s), importance needs at least "
                         f"{MIN_TRIALS_FOR_IMPORTANCE}")
            continue
        values = _knob_values(sub, params)
        if not values:
            notes.append(f"{arch}: no knob varies across its complete trials")
            continue
        try:
            imp = _fanova(values, _distributions(values, trials), sub["top1"], seed)
        except Exception as exc:  # an evaluator that cannot fit this data must not sink the report
            notes.append(f"{arch}: importance could not be evaluated ({type(exc).__name__}: {exc})")
            continue
        for p, v in imp.items():
            rows.append(dict(arch=arch, knob=p, importance=float(v), n_trials=len(sub), evaluator="fANOVA"))
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = empty_frame("; ".join(notes) or "no complete trials", order=order, metric=metric)
    frame.attrs.update(order=order, metric=metric, notes=notes, title=importance_title(frame, order))
    return frame


def importance_title(data: pd.DataFrame, order: list[str]) -> str:
    """The knob that matters most, for every arch at once when they agree."""
    if data.empty:
        return ""
    tops = {a: data[data["arch"] == a].sort_values("importance", ascending=False)["knob"].iloc[0]
            for a in order if a in set(data["arch"])}
    if len(set(tops.values())) == 1:
        return f"{next(iter(tops.values()))} matters most for every arch"
    return "Which knobs matter: " + ", ".join(f"{k} for {a}" for a, k in tops.items())


def _knob_values(sub: pd.DataFrame, params: list[str]) -> dict[str, pd.Series]:
    """Knob -> the value each trial ran with (sampled, else resolved); knobs that are unresolvable for some
    trial or constant within `sub` are left out (nothing to attribute)."""
    values: dict[str, pd.Series] = {}
    for p in params:
        col = sub[f"param_{p}"] if f"param_{p}" in sub else pd.Series(index=sub.index, dtype=object)
        if f"recipe_{p}" in sub:
            col = col.where(col.notna(), sub[f"recipe_{p}"])
        col = col.map(plain_value)
        if col.isna().any() or col.astype(str).nunique() < 2:
            continue
        values[p] = col
    return values


def _distributions(values: dict[str, pd.Series], trials: pd.DataFrame) -> dict[str, Any]:
    """Optuna distributions spanning the values seen (log where the knob was sampled on a log scale)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    dists: dict[str, Any] = {}
    for p, col in values.items():
        if is_numeric(col):
            lo, hi = float(col.min()), float(col.max())
            dists[p] = FloatDistribution(lo, hi, log=sampled_on_log_scale(trials, p) and lo > 0)
        else:
            dists[p] = CategoricalDistribution(sorted({v for v in col}, key=str))
    return dists


def _fanova(values: dict[str, pd.Series], dists: dict[str, Any], top1: pd.Series, seed: int) -> dict[str, float]:
    """fANOVA importances of the knobs for `top1`, from a throw-away in-memory study of these trials."""
    import optuna
    from optuna.distributions import FloatDistribution

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created in memory" per arch
    try:
        study = optuna.create_study(direction="maximize")
    finally:
        optuna.logging.set_verbosity(previous)
    study.add_trials([
        optuna.trial.create_trial(
            params={p: (float(values[p][i]) if isinstance(dists[p], FloatDistribution) else values[p][i])
                    for p in values},
            distributions=dists, value=float(top1[i]))
        for i in top1.index
    ])
    return optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed))


@style.styled
def plot_importance(data: pd.DataFrame):
    archs = [a for a in data.attrs["order"] if a in set(data["arch"])]
    colors = style.arch_colors(data.attrs["order"])
    knobs = list(data.groupby("knob")["importance"].mean().sort_values(ascending=True).index)
    fig = style.new_figure(max(4.0, 2.6 * len(archs) + 1.2), 0.9 + 0.3 * len(knobs))
    axes = np.atleast_1d(fig.subplots(1, len(archs), sharey=True, squeeze=False)).ravel()
    for ax, arch in zip(axes, archs):
        part = data[data["arch"] == arch].set_index("knob").reindex(knobs)
        imp = part["importance"].fillna(0).to_numpy()
        ax.barh(range(len(knobs)), imp, color=colors[arch], height=0.7)
        for y, v in enumerate(imp):
            ax.annotate(f"{v:.2f}", (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7.5)
        ax.set_yticks(range(len(knobs)), [short_label(k) for k in knobs])
        ax.set_xlim(0, min(1.0, imp.max() * 1.3 + 0.02))
        ax.set_xlabel("importance (fANOVA, sums to 1)")
        n = int(data.loc[data["arch"] == arch, "n_trials"].iloc[0])
        # ~30 bold characters fit a panel; "(n = 11)" wraps as one piece (no-break spaces)
        ax.set_title(textwrap.fill(f"{short_label(arch)}  (n\u00a0=\u00a0{n})", 30), color=colors[arch],
                     fontweight="bold")
        ax.grid(axis="y", visible=False)
    suptitle(fig, data.attrs["title"])
    return fig
