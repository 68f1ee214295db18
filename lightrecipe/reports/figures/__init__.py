"""The report's figures, each as data first (`<name>_data(...) -> DataFrame`) and drawing second
(`plot_<name>(data) -> Figure`). Accuracies in the data frames are percentages (column `top1`).

An empty data frame means "nothing to show"; its `attrs["reason"]` says why, and the report prints that
instead of the figure. `plot_*` functions take the frame `*_data` returned (plus the arch order and metric
stored in its attrs) and never read a database.
"""

from __future__ import annotations

from lightrecipe.reports.figures._common import METRIC_LABELS, is_reference_arch, metric_label
from lightrecipe.reports.figures.comparison import comparison_data, plot_comparison
from lightrecipe.reports.figures.history import curves_data, history_data, plot_curves, plot_history
from lightrecipe.reports.figures.importance import (IMPORTANCE_SEED, MIN_TRIALS_FOR_IMPORTANCE, importance_data,
                                                    plot_importance)
from lightrecipe.reports.figures.sensitivity import plot_sensitivity, sensitivity_data
from lightrecipe.reports.figures.shift import NOT_KNOBS, POINT, RESNET50_SETTINGS, plot_shift, shift_data
from lightrecipe.reports.figures.size import plot_size, size_data
from lightrecipe.reports.figures.smoothing import plot_smoothing, smoothing_data, smoothing_gain

__all__ = [
    "FIGURES", "IMPORTANCE_SEED", "METRIC_LABELS", "MIN_TRIALS_FOR_IMPORTANCE", "NOT_KNOBS", "POINT",
    "RESNET50_SETTINGS", "comparison_data", "curves_data", "history_data", "importance_data", "is_reference_arch",
    "metric_label", "plot_comparison", "plot_curves", "plot_history", "plot_importance", "plot_sensitivity",
    "plot_shift", "plot_size", "plot_smoothing", "sensitivity_data", "shift_data", "size_data", "smoothing_data",
    "smoothing_gain",
]

FIGURES = (
    # (file stem, caption, data function, plot function)
    ("comparison", "Recipe comparison: ResNet-50 settings vs the best recipe found, per arch", comparison_data,
     plot_comparison),
    ("shift", "Recipe shift: how the best recipe differs from the ResNet-50 settings, knob by knob", shift_data,
     plot_shift),
    ("sensitivity", "Sensitivity: accuracy against each searched knob", sensitivity_data, plot_sensitivity),
    ("importance", "Parameter importance per arch (fANOVA, seeded)", importance_data, plot_importance),
    ("history", "Optimisation history per study", history_data, plot_history),
    ("curves", "Learning curves per study", None, plot_curves),  # needs the curves frame: see build
    ("smoothing", "Smoothing ablation: alpha, k, on vs off", smoothing_data, plot_smoothing),
    ("size", "Accuracy against parameter count", size_data, plot_size),
)
