"""Figure 1, recipe comparison: ResNet-50 settings vs the best recipe found, per arch.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

import lightrecipe.reports.figures.style as style
from lightrecipe.reports import selections, tables
from lightrecipe.reports.figures.common import (
    choice_ticks,
    empty_frame,
    finding_range,
    grow_rows,
    is_reference_arch,
    legend_below,
    metric_label,
    recipe_key,
    suptitle,
    with_top1,
)

# --- 1. recipe comparison -------------------------------------------------------------------------------


def comparison_data(frames: tables.Frames, metric: str = "knn_top1") -> pd.DataFrame:
    """Per arch: the ResNet-50 settings (baseline trials) and the best recipe found, as mean +- std over the
    trials that repeat that recipe (different seeds); `delta` is best minus baseline in points; and the
    random-init floor (kind "floor": the backbone untrained, mean over the seeds measured), which a recipe
    must clear to be better than no training. `attrs["title"]` states the finding."""
    trials = frames.trials
    done = with_top1(trials, metric)
    order = selections.arch_order(trials)
    if done.empty:
        return empty_frame(f"no complete trial has a {metric} value yet", order=order, metric=metric)
    done = done.assign(recipe_key=done.apply(recipe_key, axis=1))
    rows = []
    for arch in order:
        sub = done[done["arch"] == arch]
        if sub.empty:
            continue
        groups = sub.groupby("recipe_key")["top1"].agg(["mean", "std", "size"])
        best_key = groups["mean"].idxmax()
        base = sub[sub["baseline"]]
        best = sub[sub["recipe_key"] == best_key]
        base_mean = float(base["top1"].mean()) if len(base) else math.nan
        for kind, part in (("baseline", base), ("best", best)):
            if part.empty:
                continue
            rows.append(dict(
                arch=arch, kind=kind, top1=float(part["top1"].mean()),
                std=float(part["top1"].std(ddof=1)) if len(part) > 1 else 0.0, n=len(part),
                trials=",".join(str(n) for n in part["number"]),
                params_count=float(part["params_count"].max()),
                delta=float(part["top1"].mean()) - base_mean if kind == "best" else 0.0,
            ))
        rows.extend(_floor_row(frames, metric, arch))
    frame = pd.DataFrame(rows)
    frame.attrs.update(order=order, metric=metric, title=comparison_title(frame))
    return frame


def _floor_row(frames: tables.Frames, metric: str, arch: str) -> list[dict]:
    """The arch's random-init floor as a comparison row (none when the database holds no floor for it)."""
    floor = selections.floor_by_arch(frames.floor, metric)
    if arch not in floor.index:
        return []
    f = floor.loc[arch]
    return [dict(arch=arch, kind="floor", top1=100.0 * float(f.value), std=0.0, n=int(f.n), trials="",
                 params_count=math.nan, delta=0.0)]


def comparison_title(data: pd.DataFrame) -> str:
    """The finding in one sentence: how many points the searched recipe adds over the ResNet-50 settings, and,
    where the random-init floor was measured, whether it beats the same network untrained."""
    best_rows = data[data["kind"] == "best"]
    efficient = best_rows[~best_rows["arch"].map(is_reference_arch)]
    considered = efficient if len(efficient) else best_rows
    deltas = [d for d in considered["delta"] if np.isfinite(d)]
    below = below_floor(data, considered["arch"])
    if deltas and min(deltas) > 0:
        who = "efficient nets" if len(efficient) else "every arch"
        finding = f"The searched recipe lifts {who} by {finding_range(deltas)} points over the ResNet-50 settings"
    elif deltas:
        finding = f"Best recipe found vs ResNet-50 settings ({finding_range(deltas)} points)"
    else:
        return "Best recipe found per arch (no ResNet-50-settings trial to compare with)"
    if below:
        return f"{finding}, but {', '.join(below)} still score{'s' if len(below) == 1 else ''} below the untrained network"
    if (data["kind"] == "floor").any():
        return f"{finding} and above the untrained network"
    return finding


def below_floor(data: pd.DataFrame, archs) -> list[str]:
    """The archs whose best recipe scores at or below their random-init floor (none where no floor was measured)."""
    out = []
    for arch in archs:
        best = data[(data["arch"] == arch) & (data["kind"] == "best")]
        floor = data[(data["arch"] == arch) & (data["kind"] == "floor")]
        if len(best) and len(floor) and best.iloc[0].top1 <= floor.iloc[0].top1:
            out.append(arch)
    return out


@style.styled
def plot_comparison(data: pd.DataFrame):
    order = [a for a in data.attrs["order"] if a in set(data["arch"])]
    colors = style.arch_colors(data.attrs["order"])
    fig = style.new_figure(max(5.5, 1.6 * len(order) + 2.0), 3.8)
    ax = fig.add_subplot()
    width = 0.38
    for i, arch in enumerate(order):
        for kind, dx in (("baseline", -width / 2), ("best", width / 2)):
            row = data[(data["arch"] == arch) & (data["kind"] == kind)]
            if row.empty:
                continue
            r = row.iloc[0]
            is_base = kind == "baseline"
            ax.bar(i + dx, r.top1, width, color="white" if is_base else colors[arch],
                   edgecolor=style.BASELINE_COLOR if is_base else colors[arch], hatch="///" if is_base else None,
                   linewidth=1.0, yerr=r["std"] if r.n > 1 else None, capsize=3,
                   error_kw=dict(elinewidth=1, ecolor="#444444"))
            ax.annotate(f"{r.top1:.1f}", (i + dx, r.top1 + (r["std"] if r.n > 1 else 0)), xytext=(0, 2),
                        textcoords="offset points", ha="center", va="bottom", fontsize=8)
        floor = data[(data["arch"] == arch) & (data["kind"] == "floor")]
        if len(floor):
            ax.hlines(floor.iloc[0].top1, i - width, i + width, colors=style.FLOOR_COLOR, linestyles="--",
                      linewidth=1.4, zorder=3)
        best = data[(data["arch"] == arch) & (data["kind"] == "best")]
        base = data[(data["arch"] == arch) & (data["kind"] == "baseline")]
        if len(best) and len(base):
            top = max(best.iloc[0].top1 + best.iloc[0]["std"], base.iloc[0].top1 + base.iloc[0]["std"])
            ax.annotate(f"{best.iloc[0].delta:+.1f} pts", (i, top), xytext=(0, 14), textcoords="offset points",
                        ha="center", fontsize=9, fontweight="bold", color=colors[arch])
    grow_rows(fig, {0: choice_ticks(ax, order, fig.get_figwidth() - 1.0)})
    ax.set_ylabel(f"val {metric_label(data.attrs['metric'])} (%)")
    # Headroom above the tallest bar for its value and delta labels; ticks stop at 100%.
    ax.set_ylim(0, data["top1"].max() + data["std"].fillna(0).max() + 16)
    ax.set_yticks(range(0, 101, 20))
    ax.grid(axis="x", visible=False)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(facecolor="white", edgecolor=style.BASELINE_COLOR, hatch="///", label=style.BASELINE_LABEL),
               Patch(facecolor="#888888", label=f"{style.BEST_LABEL} (arch colour)")]
    if (data["kind"] == "floor").any():
        handles.append(Line2D([], [], color=style.FLOOR_COLOR, linestyle="--", label=style.FLOOR_LABEL))
    legend_below(fig, handles)
    suptitle(fig, data.attrs["title"])
    ax.set_title("bars: mean over repeated seeds; whiskers: std where a recipe was repeated", fontsize=8,
                 color="#555555")
    return fig
