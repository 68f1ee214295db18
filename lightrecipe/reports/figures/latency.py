"""Figure 8, accuracy against measured latency: what an efficient net is chosen by.

Per arch: its best recipe (the confirmed winner's mean over seeds where `lightrecipe confirm` ran, else the best
swept trial), the ResNet-50 settings and the random-init floor, against the arch's batch-1 latency as the sweep
measured it on its driver (records.LATENCY). The Pareto front joins the archs no faster arch beats.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

import lightrecipe.reports.figures.style as style
from lightrecipe.reports import holdup, selections, tables
from lightrecipe.reports.figures.common import arch_legend, empty_frame, metric_label, suptitle
from lightrecipe.search.store import records


def latency_data(frames: tables.Frames, metric: str = "knn_top1") -> pd.DataFrame:
    """Per arch: latency_ms (median) and latency_p90_ms, params_m, best (percent) and its `basis`, baseline,
    floor, and `pareto` (on the front); attrs: title, caption (device, threads, image size, batch)."""
    order = selections.arch_order(frames.trials)
    measured = selections.latency_by_arch(frames.latency)  # as the report's table shows it
    if measured.empty:
        return empty_frame("no sweep study recorded a latency (sweeps measure it on their driver)", order=order,
                      metric=metric)
    confirmed = holdup.holdup_data(frames, metric)
    winners = holdup.confirmed_winners(confirmed, metric)
    swept = selections.best_trials(frames.trials, metric)
    floor = selections.floor_by_arch(frames.floor, metric)
    rows = []
    for arch in [a for a in order if a in measured.index]:
        if arch in winners.index:
            best, basis = float(winners.loc[arch, metric]), f"confirmed, {int(winners.loc[arch, 'n'])} seeds"
        elif arch in swept.index:
            best, basis = float(swept.loc[arch, metric]), "swept, 1 seed"
        else:
            best, basis = math.nan, ""
        rows.append(dict(arch=arch, latency_ms=float(measured.loc[arch, "latency_ms"]),
                         latency_p90_ms=float(measured.loc[arch, "latency_p90_ms"]),
                         params_m=selections.params_millions(frames.trials, arch),
                         best=100 * best, basis=basis, baseline=100 * _baseline(frames.trials, confirmed, arch, metric),
                         floor=100 * float(floor.loc[arch, "value"]) if arch in floor.index else math.nan))
    frame = pd.DataFrame(rows)
    frame["pareto"] = pareto(frame["latency_ms"], frame["best"])
    frame.attrs.update(order=order, metric=metric, title=latency_title(frame), caption=measured.attrs["caption"])
    return frame


def _baseline(trials: pd.DataFrame, confirmed: pd.DataFrame, arch: str, metric: str) -> float:
    """The ResNet-50 settings: their confirmed mean where confirmed, else their swept value (fraction)."""
    if not confirmed.empty:
        rows = confirmed[(confirmed["arch"] == arch) & (confirmed["role"] == records.ROLE_RESNET50)]
        if len(rows):
            return float(rows[metric].iloc[-1])
    done = selections.scored(trials, metric)
    base = done[(done["arch"] == arch) & done["baseline"].astype(bool)]
    return float(base[metric].mean()) if len(base) else math.nan


def pareto(latency: pd.Series, accuracy: pd.Series) -> list[bool]:
    """On the front: no arch at most as slow is at least as accurate and strictly better in one of the two."""
    points = list(zip(latency, accuracy))
    return [bool(np.isfinite(a)) and not any(
        np.isfinite(b) and m <= l and b >= a and (m < l or b > a) for m, b in points) for l, a in points]


def latency_title(data: pd.DataFrame) -> str:
    front = data[data["pareto"]].sort_values("latency_ms")
    if front.empty:
        return "Accuracy against measured latency"
    fastest = front.iloc[0]
    if len(front) == 1:
        return (f"{fastest.arch} is both the fastest and the most accurate here "
                f"({fastest.latency_ms:.1f} ms, {fastest.best:.1f}%)")
    best = front.iloc[-1]
    return (f"{fastest.arch} answers in {fastest.latency_ms:.1f} ms ({fastest.best:.1f}%); {best.arch} is "
            f"{best.latency_ms / fastest.latency_ms:.1f}x slower for {best.best - fastest.best:+.1f} points")


@style.styled
def plot_latency(data: pd.DataFrame):
    colors = style.arch_colors(data.attrs["order"])
    fig = style.new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    front = data[data["pareto"]].sort_values("latency_ms")
    if len(front) > 1:  # one arch is its own front: a line through one point draws nothing
        ax.step(front["latency_ms"], front["best"], where="post", color="#888888", linewidth=1.0, zorder=2,
                label="Pareto front")
    for _, r in data.iterrows():
        if np.isfinite(r.floor):
            ax.scatter([r.latency_ms], [r.floor], marker="_", s=300, color=style.FLOOR_COLOR, zorder=3)
        if np.isfinite(r.baseline):
            ax.scatter([r.latency_ms], [r.baseline], **style.BASELINE_MARKER)
        if np.isfinite(r.best):
            ax.scatter([r.latency_ms], [r.best], color=colors[r.arch], s=60, edgecolor="white", linewidth=0.6,
                       zorder=4)
    if data["latency_ms"].max() > 3 * data["latency_ms"].min():  # a wide range: equal ratios, equal distances
        from matplotlib.ticker import FuncFormatter, LogLocator

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 20, not 2x10^1
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel("batch-1 latency (ms)")
    ax.set_ylabel(f"val {metric_label(data.attrs['metric'])} (%)")
    ax.set_title(f"dots: {style.BEST_LABEL}; stars: ResNet-50 settings; red dashes: {style.FLOOR_LABEL}\n"
                 f"{data.attrs['caption']}", fontsize=7, color="#555555")
    arch_legend(fig, [a for a in data.attrs["order"] if a in set(data["arch"])], colors)
    suptitle(fig, data.attrs["title"])
    return fig
