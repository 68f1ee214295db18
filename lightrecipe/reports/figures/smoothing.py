"""Figure 6, smoothing ablation: accuracy against alpha and k, and smoothing off vs on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import lightrecipe.reports.figures.style as style
from lightrecipe.reports import selections, tables
from lightrecipe.reports.figures.common import (
    arch_legend,
    empty_frame,
    integer_x_axis,
    metric_label,
    plain_log_axis,
    suptitle,
    with_top1,
)

# --- 6. smoothing ablation ------------------------------------------------------------------------------


def smoothing_data(frames: tables.Frames, metric: str = "knn_top1") -> pd.DataFrame:
    """One row per complete trial: arch, on (smoothed InfoNCE with alpha > 0), mode, alpha, k, top1, baseline;
    `attrs["title"]` states the gain of smoothing per arch (`smoothing_gain`)."""
    trials = frames.trials
    done = with_top1(trials, metric)
    order = selections.arch_order(trials)
    need = ("recipe_smoothing", "recipe_smoothing_alpha", "recipe_smoothing_k")
    if done.empty or any(c not in done for c in need):
        return empty_frame(f"no complete trial has a {metric} value and a recorded recipe", order=order, metric=metric)
    done = done.dropna(subset=list(need))
    alpha = pd.to_numeric(done["recipe_smoothing_alpha"], errors="coerce").fillna(0.0)
    on = (done["recipe_smoothing"].astype(str) != "none") & (alpha > 0)
    frame = pd.DataFrame(dict(
        arch=done["arch"], on=on, mode=done["recipe_smoothing"].astype(str), alpha=alpha,
        k=pd.to_numeric(done["recipe_smoothing_k"], errors="coerce"), top1=done["top1"], baseline=done["baseline"],
        number=done["number"],
    )).reset_index(drop=True)
    if not frame["on"].any():
        return empty_frame("no complete trial used smoothed InfoNCE (smoothing_alpha > 0)", order=order, metric=metric)
    frame.attrs.update(order=order, metric=metric, title=smoothing_title(frame))
    return frame


def smoothing_gain(data: pd.DataFrame) -> dict[str, float]:
    """Per arch: best top1 with smoothing on minus best with it off (points); archs lacking either are left out."""
    out = {}
    for arch, part in data.groupby("arch"):
        if part["on"].any() and (~part["on"]).any():
            out[str(arch)] = float(part.loc[part["on"], "top1"].max() - part.loc[~part["on"], "top1"].max())
    return out


def smoothing_title(data: pd.DataFrame) -> str:
    gains = smoothing_gain(data)
    if gains:
        return "Smoothed InfoNCE, best on minus best off: " + ", ".join(f"{v:+.1f} pts ({a})" for a, v in gains.items())
    return "Smoothed InfoNCE: accuracy against alpha and k"


@style.styled
def plot_smoothing(data: pd.DataFrame):
    colors = style.arch_colors(data.attrs["order"])
    archs = [a for a in data.attrs["order"] if a in set(data["arch"])]
    # The off-vs-on panel holds a pair of columns per arch: past three archs it widens with them.
    extra = max(0, len(archs) - 3) / 3
    fig = style.new_figure(10.0 * (3 + extra) / 3, 3.3)
    ax_a, ax_k, ax_o = fig.subplots(1, 3, sharey=True, width_ratios=[1, 1, 1 + extra])
    on = data[data["on"]]
    off = data[~data["on"]]
    for arch in archs:
        c = colors[arch]
        o = on[on["arch"] == arch]
        ax_a.scatter(o["alpha"], o["top1"], color=c, s=24, edgecolor="white", linewidth=0.4)
        ax_k.scatter(o["k"], o["top1"], color=c, s=24, edgecolor="white", linewidth=0.4)
        f = off[off["arch"] == arch]
        ax_a.scatter(np.zeros(len(f)), f["top1"], facecolor="none", edgecolor=c, s=24, linewidth=1.0)
    ax_a.set_xlabel("smoothing alpha (target mass moved off the positive)")
    ax_a.set_ylabel(f"val {metric_label(data.attrs['metric'])} (%)")
    ax_a.set_title("alpha (hollow: smoothing off)")
    if (on["k"] > 0).all() and on["k"].max() / max(on["k"].min(), 1) >= 8:
        ax_k.set_xscale("log", base=2)
        plain_log_axis(ax_k.xaxis, on["k"], base=2)
    else:
        integer_x_axis(ax_k, on["k"])  # k counts neighbours
    ax_k.set_xlabel("k (neighbours sharing alpha)")
    ax_k.set_title("k, smoothing on")
    rng = np.random.default_rng(0)  # jitter only
    width = 0.8 / 2
    ticks = []
    for i, arch in enumerate(archs):
        part = data[data["arch"] == arch]
        for j, state in enumerate((False, True)):
            pts = part[part["on"] == state]
            x = i + (j - 0.5) * width
            ax_o.scatter(x + rng.uniform(-0.07, 0.07, len(pts)), pts["top1"], s=16, color=colors[arch],
                         alpha=0.45 if not state else 0.85, edgecolor="white", linewidth=0.3)
            if len(pts):
                ax_o.hlines(pts["top1"].max(), x - 0.15, x + 0.15, color=colors[arch], linewidth=2.2)
        ticks.append(i)
    ax_o.set_xticks([t + d for t in ticks for d in (-width / 2, width / 2)],
                    [lab for _ in ticks for lab in ("off", "on")])
    ax_o.set_xlim(-0.5, len(archs) - 0.5)  # every arch's pair of columns, even one with no points
    ax_o.set_title("off vs on (bar: best)")
    ax_o.grid(axis="x", visible=False)
    suptitle(fig, data.attrs["title"])
    arch_legend(fig, archs, colors, baseline=False)
    return fig
