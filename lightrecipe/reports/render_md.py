"""report.md: the headline, notes and figures as Markdown (figures linked as the PNG files next to it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from lightrecipe.reports.text import markdown_text as _md
from lightrecipe.reports.text import number

if TYPE_CHECKING:
    from lightrecipe.reports.build import DrawnFigure, Report


def render_markdown(*, trials: pd.DataFrame, metric: str, sources: list[str], drawn: list[DrawnFigure], report: Report) -> str:
    lines = ["# How the best recipe for each efficient net differs from the ResNet-50 settings", "",
             f"Sources: {', '.join(_md(s) for s in sources)}; ranked by val `{metric}`; {len(trials)} trials.",
             "", "## Headline", "",
             "| arch | ResNet-50 settings (%) | best recipe (%) | delta (pts) | most important knobs | best trial | recipe file |",
             "|---|---:|---:|---:|---|---|---|"]
    for r in report.headline.itertuples():
        recipe = report.best_recipes.get(r.arch)
        lines.append(f"| {_md(r.arch)} | {number(r.baseline)} | {number(r.best)} | {number(r.delta, '{:+.1f}')} | "
                     f"{_md(r.top_knobs) or '–'} | {_md(r.best_trial)} | {_md(recipe.name) if recipe else '–'} |")
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {_md(n)}" for n in report.notes]
    lines += ["", "## Figures", ""]
    for f in drawn:
        if f.png is None:
            lines.append(f"- *{f.caption}*: skipped ({_md(f.skipped)})")
        else:
            lines += [f"### {f.caption}", "", f"![{f.caption}]({f.png.name})", "", f"[SVG]({f.svg.name if f.svg else ''})", ""]
    lines += ["", "All trials: `trials.csv`.", ""]
    return "\n".join(lines)
