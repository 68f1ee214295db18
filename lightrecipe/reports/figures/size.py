"""Figure 7, accuracy against backbone parameter count.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

import lightrecipe.reports.figures.style as style
from lightrecipe.reports import tables
from lightrecipe.reports.figures.common import arch_legend, empty_frame, metric_label, suptitle
from lightrecipe.reports.figures.comparison import comparison_data

# --- 7. accuracy vs parameter count ---------------------------------------------------------------------


def size_data(frames: tables.Frames, metric: str = "knn_top1") -> pd.DataFrame:
    """Per arch: params_count (millions), ResNet-50-settings top1 (mean) and best recipe top1;
    `attrs["title"]` compares the best small net with the largest arch."""
    comp = comparison_data(frames, metric)
    if comp.empty:
        return comp
    comp = comp.dropna(subset=["params_count"])
    if comp.empty:
        return empty_frame("no trial recorded a parameter count", order=comp.attrs["order"], metric=metric)
    rows = []
    for arch, part in comp.groupby("arch", sort=False):
        get = lambda kind: float(part.loc[part["kind"] == kind, "top1"].iloc[0]) if (part["kind"] == kind).any() \
            else math.nan  # noqa: E731
        rows.append(dict(arch=arch, params_m=float(part["params_count"].max()) / 1e6, baseline=get("baseline"),
                         best=get("best")))
    frame = pd.DataFrame(rows)
    frame.attrs.update(order=comp.attrs["order"], metric=metric, title=size_title(frame))
    return frame


def size_title(data: pd.DataFrame) -> str:
    """How close the best small net comes to the largest arch, with how many times fewer parameters."""
    big = data.loc[data["params_m"].idxmax()]
    small = data[data["params_m"] < big.params_m / 2]
    if len(small) and np.isfinite(big.best) and small["best"].notna().any():
        s = small.loc[small["best"].idxmax()]
        return (f"{s.arch} reaches {s.best:.1f}% with {big.params_m / s.params_m:.1f}x fewer parameters "
                f"than {big.arch} ({big.best:.1f}%)")
    return "Accuracy against backbone size: best recipe vs ResNet-50 settings"


@style.styled
def plot_size(data: pd.DataFrame):
    colors = style.arch_colors(data.attrs["order"])
    fig = style.new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    for _, r in data.iterrows():
        c = colors[r.arch]
        if np.isfinite(r.baseline):
            ax.scatter([r.params_m], [r.baseline], **style.BASELINE_MARKER)
            if np.isfinite(r.best) and abs(r.best - r.baseline) > 0.05:
                ax.annotate("", (r.params_m, r.best), (r.params_m, r.baseline),
                            arrowprops=dict(arrowstyle="->", color=c, linewidth=1.3, shrinkA=6, shrinkB=5))
        if np.isfinite(r.best):
            # under the star (zorder 5): where the best recipe is the ResNet-50 settings, both stay visible
            ax.scatter([r.params_m], [r.best], color=c, s=60, edgecolor="white", linewidth=0.6, zorder=4)
    ax.set_xscale("log")
    lo, hi = data["params_m"].min(), data["params_m"].max()
    ax.set_xlim(lo / 1.6, hi * 1.6)
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel("backbone parameters (millions, log scale)")
    ax.set_ylabel(f"val {metric_label(data.attrs['metric'])} (%)")
    ax.set_title(f"dots: {style.BEST_LABEL} per arch; arrows: from the ResNet-50 settings", fontsize=8,
                 color="#555555")
    # Arch names in a legend under the plot, not next to the points: archs of about the same size and
    # accuracy would put their names on top of each other (and a legend inside would cover an arrow).
    arch_legend(fig, [a for a in data.attrs["order"] if a in set(data["arch"])], colors)
    suptitle(fig, data.attrs["title"])
    return fig
