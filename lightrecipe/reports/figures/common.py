"""Helpers the report's figures share: top-1 in percent, empty frames with a reason, recipe keys, titles,
number axes and legends that fit the figure.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

import lightrecipe.reports.figures.style as style
from lightrecipe.reports.selections import as_percent, scored
from lightrecipe.reports.text import one_line
from lightrecipe.trainers.recipe import FIELD_NAMES

METRIC_LABELS = {"knn_top1": "kNN top-1", "linear_top1": "linear-probe top-1"}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def empty_frame(reason: str, **attrs: Any) -> pd.DataFrame:
    frame = pd.DataFrame()
    frame.attrs.update(reason=reason, **attrs)
    return frame


def with_top1(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Scored (complete) trials with `top1` in percent (scaled on the whole column, so all rows agree)."""
    if metric not in trials.columns:
        return trials.iloc[0:0].assign(top1=pd.Series(dtype=float))
    pct = as_percent(trials[metric]).set_axis(trials.index)
    done = scored(trials, metric)
    return done.assign(top1=pct.loc[done.index])


def recipe_key(row: pd.Series) -> str:
    """The recipe without its seed: trials with equal keys are repeats of one recipe."""
    return json.dumps({f: plain_value(row.get(f"recipe_{f}")) for f in FIELD_NAMES if f != "seed"}, sort_keys=True,
                      default=str)


def plain_value(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def is_reference_arch(arch: str) -> bool:
    """ResNet-50 itself: the architecture the MoCo v2 settings were made for, shown as the reference."""
    return str(arch).startswith("resnet50")


# One knob's panel in the shift and sensitivity figures: four in a row (11.4 in at 150 dpi, shown at 96 dpi)
# are 1094 CSS px, within the 1116 px the report page gives a figure.
PANEL_INCHES = 2.7
MAX_LABEL = 48  # characters: about a 3.4-inch panel's width at 8.5 pt; the tables show names in full


def short_label(value: Any) -> str:
    """A name from the database (arch, study, source, knob, choice) as a figure shows it: on one line, and
    shortened in the middle past `MAX_LABEL` characters (both ends of 'space/arch' stay readable)."""
    text = one_line(value)
    if len(text) <= MAX_LABEL:
        return text
    keep = (MAX_LABEL - 1) // 2
    return text[:keep] + "…" + text[-(MAX_LABEL - 1 - keep):]


CHAR_INCHES = 0.6 * 9 / 72  # a tick label character: ~0.6 em at the 9 pt tick font


def choice_ticks(ax, cats: list[str], panel_inches: float) -> float:
    """Categories at x = 0, 1, ...; their labels turn upright when side by side they would not fit the
    panel's width (long choice or arch names would run into each other). Returns the height (inches) the
    upright labels need beyond a row of level ones, for the caller to add to the figure."""
    labels = [short_label(c) for c in cats]
    longest = max(len(t) for t in labels)
    upright = (longest + 3) * CHAR_INCHES > panel_inches / len(labels)  # each in its slot; 3: gap to neighbours
    ax.set_xticks(range(len(cats)), labels, rotation=90 if upright else 0)
    ax.set_xlim(-0.6, len(cats) - 0.4)
    return longest * CHAR_INCHES if upright else 0.0


def grow_rows(fig, row_extra: dict[int, float]) -> None:
    """Make the figure taller by what each row of panels needs for upright labels (`choice_ticks`)."""
    fig.set_figheight(fig.get_figheight() + sum(row_extra.values()))


def integer_x_axis(ax, values) -> None:
    """An x axis of whole numbers (trial numbers, epochs, k), at least one unit wide: a single trial or
    epoch would otherwise get ticks at -0.04, -0.02, ..."""
    from matplotlib.ticker import MaxNLocator

    values = np.asarray(values, dtype=float)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if len(values) and values.max() - values.min() < 1:
        ax.set_xlim(values.min() - 0.5, values.max() + 0.5)


def suptitle(fig, text: str) -> None:
    """A bold title wrapped to the figure's width: first at about 11 characters per inch (11 pt bold), then
    narrower until the drawn title fits (wide letters and long names need fewer per line)."""
    import textwrap

    renderer = text_renderer(fig)
    width = max(30, int(fig.get_figwidth() * 11))
    while True:
        title = fig.suptitle("\n".join(textwrap.wrap(one_line(text), width)))
        if width <= 20 or title.get_window_extent(renderer).width <= fig.bbox.width:
            return
        width = int(width * 0.9)


def text_renderer(fig):
    """A renderer of the backend PNGs are written with, to measure texts before the figure is saved."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return FigureCanvasAgg(fig).get_renderer()


def plain_log_axis(axis, values, base: float = 10) -> None:
    """A log axis labelled with plain numbers (0.03, 0.1, 2, 16) instead of 3 x 10^-2; 1-2-5 ticks only when
    the values span less than two decades (more would crowd the labels)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    values = np.asarray(values, dtype=float)
    decades = math.log10(values.max() / values.min()) if len(values) and values.min() > 0 else 0.0
    dense = base == 10 and decades < 2
    axis.set_major_locator(LogLocator(base=base, subs=(1.0, 2.0, 5.0) if dense else (1.0,)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: short_number(v)))
    axis.set_minor_formatter(NullFormatter())


def short_number_axis(axis) -> None:
    """A linear axis labelled with `short_number` (1.25e-4, not 0.000125)."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: short_number(v)))


def short_number(value: float) -> str:
    """A tick label as short as the number allows: 0.03, 16, 2048, and below 0.001 a mantissa and exponent
    (1e-4, 1.25e-4) where the plain form (0.000125) would run into its neighbours."""
    if value != 0 and abs(value) < 1e-3:
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{value:g}"


def legend_below(fig, handles: list) -> None:
    """A figure legend under the panels in as few rows as fit the figure's width: a one-panel figure is
    narrower than four or five entries side by side, and a legend wider than its figure is cut off."""
    renderer = text_renderer(fig)
    for rows in range(1, len(handles) + 1):
        legend = fig.legend(handles=handles, loc="outside lower center", ncols=math.ceil(len(handles) / rows))
        if legend.get_window_extent(renderer).width <= fig.bbox.width or rows == len(handles):
            return
        legend.remove()


def finding_range(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:+.1f}" if abs(hi - lo) < 0.05 else f"{lo:+.1f} to {hi:+.1f}"


def is_numeric(values: pd.Series) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
               for v in values.dropna())


def sampled_on_log_scale(trials: pd.DataFrame, param: str) -> bool:
    """Whether the parameter was sampled on a log scale (from its Optuna distribution)."""
    for text in trials["distributions"].dropna():
        dists = json.loads(text) if text else {}
        if param in dists:
            return bool(json.loads(dists[param]).get("attributes", {}).get("log", False))
    return False


def arch_legend(fig, archs: list[str], colors: dict[str, str], baseline: bool = True) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", color=colors[a], linestyle="", label=short_label(a)) for a in archs]
    if baseline:
        handles.append(Line2D([], [], marker="*", color=style.BASELINE_COLOR, linestyle="", markersize=11,
                              label=style.BASELINE_LABEL))
    legend_below(fig, handles)
