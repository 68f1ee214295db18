"""Figure 2, recipe shift: how the best recipe differs from the ResNet-50 settings, knob by knob.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

import lightrecipe.reports.figures.style as style
from lightrecipe.reports import selections, tables
from lightrecipe.reports.figures.common import (
    PANEL_INCHES,
    choice_ticks,
    empty_frame,
    grow_rows,
    is_numeric,
    is_reference_arch,
    legend_below,
    plain_log_axis,
    plain_value,
    short_label,
    short_number_axis,
    suptitle,
    with_top1,
)
from lightrecipe.trainers.recipe import FIELD_NAMES, Recipe
from lightrecipe.words import counted

POINT = 1.0  # "within 1 point of the best": one percentage point of top-1
# Recipe fields that describe the run rather than the recipe: never shown as knobs that "shift".
NOT_KNOBS = ("arch", "seed", "data_root", "eval_root", "num_workers", "jpeg_decode", "compile", "channels_last",
             "precision")
RESNET50_SETTINGS = {f.name: f.default for f in dataclasses.fields(Recipe)}  # the field defaults are MoCo v2's


# --- 2. recipe shift ------------------------------------------------------------------------------------


def _knobs(done: pd.DataFrame) -> list[str]:
    knobs = []
    for field in FIELD_NAMES:
        col = f"recipe_{field}"
        if field in NOT_KNOBS or col not in done.columns:
            continue
        values = done[col].dropna().map(plain_value)
        if values.astype(str).nunique() > 1:
            knobs.append(field)
    return knobs


def _int_if_whole(value: Any) -> Any:
    """16.0 -> 16 (integer fields read back as floats when a column also holds NaN)."""
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        return int(value)
    return value


def shift_data(frames: tables.Frames, metric: str = "knn_top1") -> pd.DataFrame:
    """Knob by knob and arch by arch: the ResNet-50 value (the arch's baseline trial, else MoCo v2's default),
    the best trial's value, and the range (numbers) or set (choices) of values among trials within
    `POINT` of the best. Knobs are the recipe fields that differ between complete trials. `knob_moved` says
    whether the knob moved away from the ResNet-50 value for every efficient net (every arch when only
    ResNets ran); `attrs["title"]` counts those knobs."""
    trials = frames.trials
    done = with_top1(trials, metric)
    order = selections.arch_order(trials)
    if done.empty:
        return empty_frame(f"no complete trial has a {metric} value yet", order=order, metric=metric)
    knobs = _knobs(done)
    if len(done) == 1:  # "no knob was searched" would be false: the space may search many, one trial completed
        return empty_frame("only one trial completed: there is no second recipe to compare its knobs with", order=order,
                      metric=metric)
    if not knobs:
        return empty_frame("every complete trial ran the same recipe: no knob differs between them", order=order,
                           metric=metric)
    rows = []
    for arch in order:
        sub = done[done["arch"] == arch]
        if sub.empty:
            continue
        rows.extend(_arch_rows(arch, sub, knobs, numeric={k: is_numeric(done[f"recipe_{k}"]) for k in knobs}))
    frame = pd.DataFrame(rows)
    judged = frame[~frame["arch"].map(is_reference_arch)]
    judged = judged if len(judged) else frame
    frame["knob_moved"] = frame["knob"].map(judged.groupby("knob")["moved"].all())
    who = "every efficient net" if len(judged) < len(frame) or not frame["arch"].map(is_reference_arch).any() \
        else "every arch"
    moved = frame.drop_duplicates("knob")["knob_moved"].sum()
    title = (f"Recipe shift: {moved} of {counted(len(knobs), 'knob')} {'moves' if moved == 1 else 'move'} away "
             f"from the ResNet-50 settings for {who}"
             if moved else "Recipe shift: best value per arch vs the ResNet-50 settings")
    frame.attrs.update(order=order, metric=metric, title=title)
    return frame


def _arch_rows(arch: str, sub: pd.DataFrame, knobs: list[str], numeric: dict[str, bool]) -> list[dict[str, Any]]:
    """One row per knob for one arch's complete trials (`sub`, with `top1`)."""
    best = sub.sort_values(["top1", "number"], ascending=[False, True]).iloc[0]
    near = sub[sub["top1"] >= best.top1 - POINT]
    base = sub[sub["baseline"]]
    rows = []
    for knob in knobs:
        col = f"recipe_{knob}"
        ref = plain_value(base.iloc[0][col]) if len(base) else RESNET50_SETTINGS[knob]
        values = near[col].dropna().map(plain_value).map(_int_if_whole)
        num = numeric[knob] and len(values) > 0
        rows.append(dict(
            knob=knob, arch=arch, numeric=numeric[knob], resnet50=_int_if_whole(ref),
            best=_int_if_whole(plain_value(best[col])),
            near_min=float(values.min()) if num else math.nan,
            near_max=float(values.max()) if num else math.nan,
            near_values=sorted({str(v) for v in values}), n_near=len(near), best_top1=float(best.top1),
            moved=(not (values.min() <= ref <= values.max())) if num and ref is not None
            else str(ref) not in {str(v) for v in values},
        ))
    return rows


@style.styled
def plot_shift(data: pd.DataFrame):
    knobs = list(dict.fromkeys(data["knob"]))
    order = [a for a in data.attrs["order"] if a in set(data["arch"])]
    colors = style.arch_colors(data.attrs["order"])
    ncols = min(4, len(knobs))
    nrows = math.ceil(len(knobs) / ncols)
    fig = style.new_figure(PANEL_INCHES * ncols + 0.6, 0.5 + nrows * (0.45 * len(order) + 1.0))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    row_extra: dict[int, float] = {}
    for i, (ax, knob) in enumerate(zip(axes, knobs)):
        part = data[data["knob"] == knob].set_index("arch")
        ax.grid(axis="y", visible=False)
        if bool(part["numeric"].iloc[0]):
            _draw_numeric_knob(ax, part, order, colors)
        else:
            extra = _draw_choice_knob(ax, part, order, colors)
            row_extra[i // ncols] = max(row_extra.get(i // ncols, 0.0), extra)
        ax.set_yticks(range(len(order)),
                      [short_label(a) if ax.get_subplotspec().is_first_col() else "" for a in order])
        ax.set_ylim(-0.7, len(order) - 0.3)
        ax.invert_yaxis()
        moved = bool(part["knob_moved"].iloc[0])
        ax.set_title(short_label(knob) + ("  (moved)" if moved else ""), fontweight="bold" if moved else "normal")
    for ax in axes[len(knobs):]:
        ax.set_visible(False)
    grow_rows(fig, row_extra)
    suptitle(fig, data.attrs["title"])
    from matplotlib.lines import Line2D

    legend_below(fig, [Line2D([], [], marker=style.BASELINE_MARKER["marker"], color=style.BASELINE_COLOR,
                               linestyle="", markersize=11, label=style.BASELINE_LABEL),
                        Line2D([], [], marker="o", color="#777777", linestyle="", label=style.BEST_LABEL),
                        Line2D([], [], color="#777777", alpha=0.35, linewidth=7,
                               label=f"within {POINT:g} point of the best")])
    return fig


def _draw_numeric_knob(ax, part: pd.DataFrame, order: list[str], colors: dict[str, str]) -> None:
    """Per arch row: the range within a point of the best (a band), the best value and the ResNet-50 star."""
    vals = pd.concat([part["near_min"], part["near_max"], part["best"].astype(float),
                      part["resnet50"].astype(float)]).dropna()
    if (vals > 0).all() and vals.max() / vals.min() >= 5:  # spans of 5x and more read better on log
        ax.set_xscale("log")
        plain_log_axis(ax.xaxis, vals)
    else:
        # narrow panels: long tick labels would collide; whole-number knobs (k, widths) get whole ticks
        ax.xaxis.set_major_locator(MaxNLocator(4, integer=bool(np.allclose(vals, np.round(vals)))))
        short_number_axis(ax.xaxis)
    for y, arch in enumerate(order):
        if arch not in part.index:
            continue
        r = part.loc[arch]
        ax.plot([r.near_min, r.near_max], [y, y], color=colors[arch], alpha=0.35, linewidth=7,
                solid_capstyle="round")
        ax.scatter([r.best], [y], color=colors[arch], s=36, zorder=4, edgecolor="white", linewidth=0.5)
        ax.scatter([float(r.resnet50)], [y], **style.BASELINE_MARKER)


def _draw_choice_knob(ax, part: pd.DataFrame, order: list[str], colors: dict[str, str]) -> float:
    """Per arch row: the choices within a point of the best (halos), the best choice and the ResNet-50 star.
    Returns the extra height its labels need (`choice_ticks`)."""
    cats = sorted({str(v) for v in part["resnet50"]} | {str(v) for v in part["best"]}
                  | {v for vs in part["near_values"] for v in vs})
    pos = {c: i for i, c in enumerate(cats)}
    for y, arch in enumerate(order):
        if arch not in part.index:
            continue
        r = part.loc[arch]
        ax.scatter([pos[v] for v in r.near_values], [y] * len(r.near_values), color=colors[arch],
                   alpha=0.35, s=110, linewidth=0)
        ax.scatter([pos[str(r.best)]], [y], color=colors[arch], s=36, zorder=4, edgecolor="white")
        ax.scatter([pos[str(r.resnet50)]], [y], **style.BASELINE_MARKER)
    return choice_ticks(ax, cats, PANEL_INCHES)
