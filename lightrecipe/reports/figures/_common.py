"""Helpers the report's figures share: top-1 in percent, empty frames with a reason, recipe keys, titles,
log axes and the arch legend.
"""

from __future__ import annotations

import json
import math
from typing import Any

import matplotlib
import numpy as np
import pandas as pd

from lightrecipe.reports import style
from lightrecipe.reports.tables import as_percent, scored
from lightrecipe.trainers.recipe import FIELD_NAMES

matplotlib.rcParams.update(style.RC)

METRIC_LABELS = {"knn_top1": "kNN top-1", "linear_top1": "linear-probe top-1"}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def _empty(reason: str, **attrs: Any) -> pd.DataFrame:
    frame = pd.DataFrame()
    frame.attrs.update(reason=reason, **attrs)
    return frame


def _with_top1(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Scored (complete) trials with `top1` in percent (scaled on the whole column, so all rows agree)."""
    if metric not in trials.columns:
        return trials.iloc[0:0].assign(top1=pd.Series(dtype=float))
    pct = as_percent(trials[metric]).set_axis(trials.index)
    done = scored(trials, metric)
    return done.assign(top1=pct.loc[done.index])


def _recipe_key(row: pd.Series) -> str:
    """The recipe without its seed: trials with equal keys are repeats of one recipe."""
    return json.dumps({f: _plain(row.get(f"recipe_{f}")) for f in FIELD_NAMES if f != "seed"}, sort_keys=True,
                      default=str)


def _plain(value: Any) -> Any:
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


def _suptitle(fig, text: str) -> None:
    """A bold title wrapped to the figure's width (about 11 characters per inch at 11 pt bold)."""
    import textwrap

    width = max(30, int(fig.get_figwidth() * 11))
    fig.suptitle("\n".join(textwrap.wrap(text, width)))


def _plain_log_axis(axis, values, base: float = 10) -> None:
    """A log axis labelled with plain numbers (0.03, 0.1, 2, 16) instead of 3 x 10^-2; 1-2-5 ticks only when
    the values span less than two decades (more would crowd the labels)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    values = np.asarray(values, dtype=float)
    decades = math.log10(values.max() / values.min()) if len(values) and values.min() > 0 else 0.0
    dense = base == 10 and decades < 2
    axis.set_major_locator(LogLocator(base=base, subs=(1.0, 2.0, 5.0) if dense else (1.0,)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _finding_range(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:+.1f}" if abs(hi - lo) < 0.05 else f"{lo:+.1f} to {hi:+.1f}"


def _is_numeric(values: pd.Series) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
               for v in values.dropna())


def _dist_log(trials: pd.DataFrame, param: str) -> bool:
    """Whether the parameter was sampled on a log scale (from its Optuna distribution)."""
    for text in trials["distributions"].dropna():
        dists = json.loads(text) if text else {}
        if param in dists:
            return bool(json.loads(dists[param]).get("attributes", {}).get("log", False))
    return False


def _arch_legend(fig, archs: list[str], colors: dict[str, str], baseline: bool = True) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", color=colors[a], linestyle="", label=a) for a in archs]
    if baseline:
        handles.append(Line2D([], [], marker="*", color=style.BASELINE_COLOR, linestyle="", markersize=11,
                              label=style.BASELINE_LABEL))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5))
