"""One look for every figure: colours per arch, the baseline's marker, fonts, and saving.

The settings apply while a figure is made and saved (`styled`, `save`), never to matplotlib's global
settings: importing the reports leaves a user's own plots as they were.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Iterable

import matplotlib
from matplotlib.figure import Figure

# Okabe & Ito's colour-blind-safe palette (Color Universal Design, 2002), black left out for the baseline.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
BASELINE_COLOR = "#222222"  # the ResNet-50 settings: black stars and dashed lines in every figure
BASELINE_LABEL = "ResNet-50 settings"
BEST_LABEL = "best recipe found"
FLOOR_COLOR = "#b3261e"  # the random-init floor: a red dashed line, the bar every recipe must clear
FLOOR_LABEL = "random-init floor (untrained backbone)"
BASELINE_MARKER = dict(marker="*", s=150, color=BASELINE_COLOR, edgecolor="white", linewidth=0.6, zorder=5)
FADED_ALPHA = 0.25  # pruned trials: visible, but behind the complete ones

RC = {
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "figure.titlesize": 11,
    "figure.titleweight": "bold",
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#E5E5E5",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "svg.fonttype": "none",  # SVG text stays text: searchable and editable in a paper's figure tool
    # Arch, study and choice names are shown as written: "$" is a dollar sign, never the start of mathtext
    # (a name like "a$\\x$" would otherwise be typeset, or fail to parse and lose the figure).
    "text.parse_math": False,
}


def styled(plot: Callable[..., Figure]) -> Callable[..., Figure]:
    """Run a `plot_*` function with `RC` in effect: every text, label and legend it makes gets these settings.
    Save the figure with `save` (or under `matplotlib.rc_context(RC)`) so that what is drawn only at saving
    (ticks added on the fly, SVG text) gets them too."""

    @functools.wraps(plot)
    def draw(*args, **kwargs) -> Figure:
        with matplotlib.rc_context(RC):
            return plot(*args, **kwargs)

    return draw


def arch_colors(archs: Iterable[str]) -> dict[str, str]:
    """Arch -> colour, in the order given (pass `selections.arch_order` so every figure agrees)."""
    return {arch: PALETTE[i % len(PALETTE)] for i, arch in enumerate(archs)}


def new_figure(width: float, height: float) -> Figure:
    """A figure not attached to pyplot (no global state, freed with its last reference)."""
    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Figure, stem: str | Path) -> tuple[Path, Path]:
    """PNG (for HTML and Markdown) and SVG (for papers) next to each other, at `stem` (a str or a Path, without
    the suffix) plus .png and .svg."""
    stem = Path(stem)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    with matplotlib.rc_context(RC):
        fig.savefig(png, dpi=150, facecolor="white")
        fig.savefig(svg, facecolor="white", metadata={"Date": None})  # no date: same data, same file
    return png, svg
