"""The report's figures, each as data first and drawing second, after Optuna's visualization module:
`<name>_data(frames, metric) -> DataFrame` (every figure has this one signature: `frames` is
`tables.Frames(trials, curves)`) and `plot_<name>(data) -> Figure`. Accuracies in the data frames are
percentages (column `top1`). `style.py` gives every figure one look: arch colours, fonts, saving.

The data function computes everything the figure states: its title, a sentence such as "lifts efficient nets
by +9.2 points", is `attrs["title"]`, next to the arch order and metric; `plot_*` draws that frame and
never reads a database. An empty frame means "nothing to show"; its `attrs["reason"]` says why, and the
report prints that instead of the figure. `attrs["notes"]`, when present, names archs a drawn figure
leaves out.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import pandas as pd
from matplotlib.figure import Figure

from lightrecipe.reports.figures.common import METRIC_LABELS, is_reference_arch, metric_label
from lightrecipe.reports.figures.comparison import comparison_data, plot_comparison
from lightrecipe.reports.figures.history import curves_data, history_data, plot_curves, plot_history
from lightrecipe.reports.figures.importance import (
    IMPORTANCE_SEED,
    MIN_TRIALS_FOR_IMPORTANCE,
    importance_data,
    plot_importance,
)
from lightrecipe.reports.figures.latency import latency_data, plot_latency
from lightrecipe.reports.figures.sensitivity import plot_sensitivity, sensitivity_data
from lightrecipe.reports.figures.shift import NOT_KNOBS, POINT, RESNET50_SETTINGS, plot_shift, shift_data
from lightrecipe.reports.figures.size import plot_size, size_data
from lightrecipe.reports.figures.smoothing import plot_smoothing, smoothing_data, smoothing_gain
from lightrecipe.reports.figures.warm import plot_warm, warm_data, warm_pairs
from lightrecipe.reports.tables import Frames

__all__ = [
    "FIGURES", "FigureSpec", "IMPORTANCE_SEED", "METRIC_LABELS", "MIN_TRIALS_FOR_IMPORTANCE", "NOT_KNOBS", "POINT",
    "RESNET50_SETTINGS", "comparison_data", "curves_data", "history_data", "importance_data", "is_reference_arch",
    "latency_data", "metric_label", "plot_latency", "plot_comparison", "plot_curves", "plot_history", "plot_importance", "plot_sensitivity",
    "plot_shift", "plot_size", "plot_smoothing", "sensitivity_data", "shift_data", "size_data", "smoothing_data",
    "smoothing_gain", "plot_warm", "warm_data", "warm_pairs",
]

class FigureSpec(NamedTuple):
    stem: str  # file name without suffix: <stem>.png and <stem>.svg
    caption: str
    data: Callable[[Frames, str], pd.DataFrame]  # (frames, metric) -> the figure's data frame
    plot: Callable[[pd.DataFrame], Figure]


FIGURES = (
    FigureSpec("comparison", "Recipe comparison: ResNet-50 settings vs the best recipe found, per arch",
               comparison_data, plot_comparison),
    FigureSpec("shift", "Recipe shift: how the best recipe differs from the ResNet-50 settings, knob by knob",
               shift_data, plot_shift),
    FigureSpec("sensitivity", "Sensitivity: accuracy against each searched knob", sensitivity_data,
               plot_sensitivity),
    FigureSpec("importance", "Parameter importance per arch (fANOVA, seeded)", importance_data, plot_importance),
    FigureSpec("history", "Optimisation history per study", history_data, plot_history),
    FigureSpec("curves", "Learning curves per study", curves_data, plot_curves),
    FigureSpec("smoothing", "Smoothing ablation: alpha, k, on vs off", smoothing_data, plot_smoothing),
    FigureSpec("size", "Accuracy against parameter count", size_data, plot_size),
    FigureSpec("warm", "Warm start against cold: best so far per trial, and what warm needed to reach the cold best",
               warm_data, plot_warm),
    FigureSpec("latency", "Accuracy against measured latency: best recipe, ResNet-50 settings and random-init floor "
               "per arch, Pareto front", latency_data, plot_latency),
)
