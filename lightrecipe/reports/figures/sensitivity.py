"""Figure 3, sensitivity: accuracy of every complete trial against each searched knob.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

import lightrecipe.reports.figures.style as style
from lightrecipe.reports import selections, tables
from lightrecipe.reports.figures.common import (
    PANEL_INCHES,
    arch_legend,
    choice_ticks,
    empty_frame,
    grow_rows,
    is_numeric,
    metric_label,
    plain_log_axis,
    plain_value,
    sampled_on_log_scale,
    short_label,
    suptitle,
    with_top1,
)

# --- 3. sensitivity -------------------------------------------------------------------------------------


SENSITIVITY_TITLE = "Sensitivity: accuracy of every complete trial against each searched knob"


def sensitivity_data(frames: tables.Frames, metric: str = "knn_top1") -> pd.DataFrame:
    """One row per complete trial x searched knob: arch, knob, value, top1, baseline, log (sampled on a log
    scale), numeric."""
    trials = frames.trials
    done = with_top1(trials, metric)
    order = selections.arch_order(trials)
    params = [p for p in selections.searched_params(trials) if f"param_{p}" in done and done[f"param_{p}"].notna().any()]
    if done.empty or not params:
        return empty_frame("no complete trial with sampled parameters yet", order=order, metric=metric)
    rows = []
    for param in params:
        log = sampled_on_log_scale(trials, param)
        numeric = is_numeric(done[f"param_{param}"])
        part = done[done[f"param_{param}"].notna()]
        for _, r in part.iterrows():
            rows.append(dict(arch=r.arch, knob=param, value=plain_value(r[f"param_{param}"]), top1=r.top1,
                             baseline=bool(r.baseline), number=r.number, log=log, numeric=numeric))
    frame = pd.DataFrame(rows)
    frame.attrs.update(order=order, metric=metric, title=SENSITIVITY_TITLE)
    return frame


@style.styled
def plot_sensitivity(data: pd.DataFrame):
    knobs = list(dict.fromkeys(data["knob"]))
    colors = style.arch_colors(data.attrs["order"])
    ncols = min(4, len(knobs))
    nrows = math.ceil(len(knobs) / ncols)
    fig = style.new_figure(PANEL_INCHES * ncols + 0.6, 2.4 * nrows + 0.8)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=True)).ravel()
    rng = np.random.default_rng(0)  # jitter of categorical points only; fixed so redraws match
    row_extra: dict[int, float] = {}
    for i, (ax, knob) in enumerate(zip(axes, knobs)):
        part = data[data["knob"] == knob]
        numeric = bool(part["numeric"].iloc[0])
        if numeric:
            x = part["value"].astype(float).to_numpy()
            if bool(part["log"].iloc[0]) and (x > 0).all():
                ax.set_xscale("log", base=2 if np.allclose(x, np.round(x)) else 10)
                plain_log_axis(ax.xaxis, x, base=2 if np.allclose(x, np.round(x)) else 10)
        else:
            cats = sorted({str(v) for v in part["value"]})
            pos = {c: i for i, c in enumerate(cats)}
            x = np.array([pos[str(v)] for v in part["value"]]) + rng.uniform(-0.15, 0.15, len(part))
            row_extra[i // ncols] = max(row_extra.get(i // ncols, 0.0), choice_ticks(ax, cats, PANEL_INCHES))
        c = [colors[a] for a in part["arch"]]
        base = part["baseline"].to_numpy()
        ax.scatter(x[~base], part["top1"].to_numpy()[~base], c=[ci for ci, b in zip(c, base) if not b], s=22,
                   alpha=0.85, edgecolor="white", linewidth=0.4)
        if base.any():
            ax.scatter(x[base], part["top1"].to_numpy()[base], **style.BASELINE_MARKER)
        ax.set_xlabel(short_label(knob) + (" (log)" if numeric and ax.get_xscale() == "log" else ""))
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(f"val {metric_label(data.attrs['metric'])} (%)")
    for ax in axes[len(knobs):]:
        ax.set_visible(False)
    grow_rows(fig, row_extra)
    arch_legend(fig, [a for a in data.attrs["order"] if a in set(data["arch"])], colors)
    suptitle(fig, data.attrs["title"])
    return fig
