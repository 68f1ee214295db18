"""What a report is: the files `build_report` wrote and the frames it stated, and each figure it drew (or
why it could not)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class Report:
    out: Path
    html: Path
    markdown: Path
    csv: Path
    figures: list[Path] = field(default_factory=list)  # PNG and SVG files
    best_recipes: dict[str, Path] = field(default_factory=dict)  # arch -> best-<arch>.yaml
    notes: list[str] = field(default_factory=list)  # what was skipped and why
    headline: pd.DataFrame = field(default_factory=pd.DataFrame)
    holdup: pd.DataFrame = field(default_factory=pd.DataFrame)  # holdup.holdup_data: the confirm runs
    holdup_summary: pd.DataFrame = field(default_factory=pd.DataFrame)  # per confirm study: tau, flags


@dataclass
class DrawnFigure:
    stem: str
    caption: str
    png: Path | None = None
    svg: Path | None = None
    skipped: str = ""  # why there is no figure: nothing to show yet, or it could not be drawn
