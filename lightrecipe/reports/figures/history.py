"""Figure 5, optimisation history per study, and the learning curves per study.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

import lightrecipe.reports.figures.style as style
from lightrecipe.reports import selections, tables
from lightrecipe.reports.figures.common import (
    empty_frame,
    integer_x_axis,
    legend_below,
    metric_label,
    short_label,
    suptitle,
)
from lightrecipe.reports.selections import as_percent
from lightrecipe.search.store import records

# --- 5. optimisation history and learning curves --------------------------------------------------------


HISTORY_TITLE = "Optimisation history: the best recipe so far, trial by trial"
CURVES_TITLE = "Learning curves: pruned trials (faded) stopped early, the best recipe in bold"


def history_data(frames: tables.Frames, metric: str = "knn_top1") -> pd.DataFrame:
    """One row per trial with a value: study, arch, number, state, baseline, warm_started (a `--warm-start`
    recipe), top1 (pruned trials keep their last value) and best_so_far (best complete top1 up to this trial
    number)."""
    trials = frames.trials
    order = selections.arch_order(trials)
    if metric not in trials.columns or trials.empty:
        return empty_frame("no trials", order=order, metric=metric)
    pct = as_percent(trials[metric]).set_axis(trials.index)
    has = trials[np.isfinite(pct) & trials["state"].isin([records.COMPLETE, records.PRUNED])]
    if has.empty or not (has["state"] == records.COMPLETE).any():
        return empty_frame(f"no complete trial has a {metric} value yet", order=order, metric=metric)
    frame = has[["source", "study", "arch", "number", "state", "baseline"]].assign(
        top1=pct.loc[has.index], warm_started=has["warm_source_trial"].notna())
    frame = frame.sort_values(["source", "study", "number"]).reset_index(drop=True)
    complete_top1 = frame["top1"].where(frame["state"] == records.COMPLETE)
    frame["best_so_far"] = complete_top1.groupby([frame["source"], frame["study"]]).cummax()
    frame["best_so_far"] = frame.groupby(["source", "study"])["best_so_far"].ffill()
    frame.attrs.update(order=order, metric=metric, title=HISTORY_TITLE)
    return frame


def _studies_in_order(data: pd.DataFrame) -> list[tuple[str, str]]:
    """(source, study) pairs ordered like the archs, so panels line up with the other figures."""
    rank = {a: i for i, a in enumerate(data.attrs["order"])}
    pairs = data[["source", "study", "arch"]].drop_duplicates()
    pairs = pairs.assign(rank=pairs["arch"].map(rank)).sort_values(["rank", "source", "study"])
    return list(zip(pairs["source"], pairs["study"]))


def _study_grid(data: pd.DataFrame):
    """A figure with one panel per study (at most three a row, one y scale), spare panels hidden; the
    figure, its panels in study order and the (source, study) pairs they show."""
    studies = _studies_in_order(data)
    ncols = min(3, len(studies))
    nrows = math.ceil(len(studies) / ncols)
    fig = style.new_figure(3.4 * ncols + 0.4, 2.7 * nrows + 0.7)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=True)).ravel()
    for ax in axes[len(studies):]:
        ax.set_visible(False)
    return fig, axes, studies


@style.styled
def plot_history(data: pd.DataFrame):
    fig, axes, studies = _study_grid(data)
    colors = style.arch_colors(data.attrs["order"])
    multi_source = len({s for s, _ in studies}) > 1
    for ax, (source, study) in zip(axes, studies):
        part = data[(data["source"] == source) & (data["study"] == study)]
        color = colors[part["arch"].iloc[0]]
        comp = part[(part["state"] == records.COMPLETE) & ~part["baseline"]]
        pruned = part[part["state"] == records.PRUNED]
        base = part[part["baseline"] & (part["state"] == records.COMPLETE)]
        ax.scatter(pruned["number"], pruned["top1"], color=color, alpha=style.FADED_ALPHA, s=16, marker="v",
                   label="pruned (last value)")
        ax.scatter(comp["number"], comp["top1"], color=color, s=20, edgecolor="white", linewidth=0.4,
                   label=records.COMPLETE)
        if len(base):
            ax.scatter(base["number"], base["top1"], **style.BASELINE_MARKER, label=style.BASELINE_LABEL)
        warm = part[part["warm_started"]]
        ax.scatter(warm["number"], warm["top1"], marker="D", s=46, facecolor="none", edgecolor=style.BASELINE_COLOR,
                   linewidth=0.9, zorder=4)
        steps = part.dropna(subset=["best_so_far"])
        if len(steps) > 1:  # one trial: its dot already is the best so far
            ax.step(steps["number"], steps["best_so_far"], where="post", color=color, linewidth=1.6,
                    label="best so far")
        ax.set_title(short_label(study) + (f"\n{short_label(source)}" if multi_source else ""), fontsize=8.5)
        ax.set_xlabel("trial number")
        integer_x_axis(ax, part["number"])
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(f"val {metric_label(data.attrs['metric'])} (%)")
    grey = "#666666"
    legend_below(fig, [Line2D([], [], marker="o", color=grey, linestyle="", label=records.COMPLETE),
                        Line2D([], [], marker="v", color=grey, alpha=style.FADED_ALPHA + 0.15, linestyle="",
                               label="pruned (last value)"),
                        Line2D([], [], marker="*", color=style.BASELINE_COLOR, markersize=11, linestyle="",
                               label=style.BASELINE_LABEL),
                        Line2D([], [], color=grey, linewidth=1.6, drawstyle="steps-post", label="best so far")]
                       + ([Line2D([], [], marker="D", markerfacecolor="none", markeredgecolor=style.BASELINE_COLOR,
                                  linestyle="", label="warm-started (--warm-start)")] if data["warm_started"].any()
                          else []))
    suptitle(fig, data.attrs["title"])
    return fig


def _curve_style(state: str, baseline: bool, best: bool, color: str, points: int) -> dict:
    """How one trial's curve is drawn. A trial that stopped early ends in a triangle (so a trial pruned
    after its first epoch, a curve of one point, still shows); any other one-point curve gets a dot."""
    if baseline:
        kw = dict(color=style.BASELINE_COLOR, linestyle="--", linewidth=1.3, alpha=0.9, zorder=4)
    elif best:
        kw = dict(color=color, linewidth=2.4, zorder=5)
    elif state == records.COMPLETE:
        kw = dict(color=color, linewidth=1.0, alpha=0.75)
    elif state == records.RUNNING:
        kw = dict(color=color, linewidth=1.0, linestyle=":", alpha=0.9)
    else:  # pruned, failed, diverged: faded, a triangle where it stopped
        return dict(color=color, linewidth=0.9, alpha=style.FADED_ALPHA, marker="v", markersize=4,
                    markevery=[points - 1])
    return kw if points > 1 else dict(kw, marker="o", markersize=4)


def curves_data(frames: tables.Frames, metric: str = "knn_top1") -> pd.DataFrame:
    """One row per trial x epoch: study, arch, number, state, baseline, best (the arch's best trial), epoch and
    top1 (the per-epoch `metric` if the history has it, else the objective Optuna recorded)."""
    trials, curves = frames.trials, frames.curves
    order = selections.arch_order(trials)
    if curves.empty:
        return empty_frame("no trial reported an epoch yet", order=order, metric=metric)
    column = metric if metric in curves.columns and curves[metric].notna().any() else "objective_value"
    shown = metric if column == metric else "objective"
    frame = curves[["source", "study", "arch", "number", "state", "baseline", "epoch"]].assign(
        top1=as_percent(curves[column]).set_axis(curves.index))
    frame = frame[np.isfinite(frame["top1"])]
    if frame.empty:
        return empty_frame(f"no per-epoch {column} values", order=order, metric=metric)
    best = selections.best_trials(trials, metric)
    best_keys = set(zip(best["source"], best["study"], best["number"]))
    frame = frame.assign(best=[k in best_keys for k in zip(frame["source"], frame["study"], frame["number"])])
    frame = frame.reset_index(drop=True)
    frame.attrs.update(order=order, metric=shown, title=CURVES_TITLE)
    return frame


@style.styled
def plot_curves(data: pd.DataFrame):
    fig, axes, studies = _study_grid(data)
    colors = style.arch_colors(data.attrs["order"])
    for ax, (source, study) in zip(axes, studies):
        part = data[(data["source"] == source) & (data["study"] == study)]
        color = colors[part["arch"].iloc[0]]
        for (number, state, baseline, best), line in part.groupby(["number", "state", "baseline", "best"]):
            line = line.sort_values("epoch")
            ax.plot(line["epoch"], line["top1"], gid=f"{study} #{number}",
                    **_curve_style(state, bool(baseline), bool(best), color, points=len(line)))
        ax.set_title(short_label(study), fontsize=8.5)
        ax.set_xlabel("epoch")
        integer_x_axis(ax, part["epoch"])
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(f"val {metric_label(data.attrs['metric'])} (%)")
    grey = "#555555"
    legend_below(fig, [Line2D([], [], color=grey, linewidth=2.4, label=style.BEST_LABEL),
                        Line2D([], [], color=grey, linewidth=1.0, label=records.COMPLETE),
                        Line2D([], [], color=grey, linewidth=0.9, marker="v", markersize=4,
                               alpha=style.FADED_ALPHA + 0.15, label="pruned / failed (v: last epoch)"),
                        Line2D([], [], color=grey, linestyle=":", label=records.RUNNING),
                        Line2D([], [], color=style.BASELINE_COLOR, linestyle="--", label=style.BASELINE_LABEL)])
    suptitle(fig, data.attrs["title"])
    return fig
