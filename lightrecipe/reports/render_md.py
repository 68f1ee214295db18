"""report.md: the headline, "Does it hold up?", notes and figures as Markdown (figures linked as the PNG files
next to it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from lightrecipe.reports import holdup, selections, tables
from lightrecipe.reports.text import markdown_text as _md
from lightrecipe.reports.text import number, percent, plus_minus
from lightrecipe.words import counted

if TYPE_CHECKING:
    from lightrecipe.reports.report import DrawnFigure, Report


def render_markdown(*, trials: pd.DataFrame, metric: str, sources: list[str], drawn: list[DrawnFigure], report: Report) -> str:
    lines = ["# How the best recipe for each efficient net differs from the ResNet-50 settings", "",
             f"Sources: {', '.join(_md(s) for s in sources)}; ranked by val `{metric}`; "
             f"{counted(len(trials), 'trial')}.",
             "", "## Headline", "",
             "| arch | numbers | params (M) | latency (ms) | random-init floor (%) | ResNet-50 settings (%) | best recipe (%) | delta (pts) | most important knobs | best trial | run folder | recipe file |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---|---|---|"]
    for r in report.headline.itertuples():
        recipe = report.best_recipes.get(r.arch)
        fitted = f" ({_md(r.baseline_fit)})" if r.baseline_fit else ""
        lines.append(f"| {_md(r.arch)} | {_md(r.basis)} | {number(r.params_m, '{:.2f}')} | "
                     f"{number(r.latency_ms, '{:.1f}', selections.NOT_MEASURED)} | {plus_minus(r.floor, r.floor_ci)} | {plus_minus(r.baseline, r.baseline_ci)}{fitted} | "
                     f"{plus_minus(r.best, r.best_ci)} | {number(r.delta, '{:+.1f}')} | "
                     f"{_md(r.top_knobs) or '–'} | {_md(r.best_trial)} | {_md(r.best_run_dir) or '–'} | "
                     f"{_md(recipe.name) if recipe else '–'} |")
    lines += ["", "The random-init floor is the same backbone untrained, scored the same way: a recipe below it has "
              "done harm, not good. ± is a 95% t-interval over seeds (rows from `lightrecipe confirm`, test split). "
              f"Latency: {_md(report.headline.attrs.get('latency_caption', ''))}."]
    if not report.holdup.empty:
        lines += _holdup_markdown(report)
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


def _holdup_markdown(report: Report) -> list[str]:
    """"Does it hold up?" per confirm study: the table over seeds, Kendall's tau and the flags."""
    lines = ["", "## Does it hold up?", "",
             "The sweep's top recipes and the ResNet-50 settings re-trained by `lightrecipe confirm` with several "
             "seeds on a longer schedule, and the untrained backbone: mean ± 95% t-interval over seeds, in %."]
    summary = report.holdup_summary.set_index("study")
    for (arch, study), part in report.holdup.groupby(["arch", "study"], sort=True):
        s = summary.loc[study]
        lines += ["", f"### {_md(arch)} ({_md(study)})", "",
                  "| recipe | seeds | sweep val | sweep rank | confirmed rank | val kNN | val linear | test kNN | "
                  "test linear | run folders |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in part.itertuples():
            cells = " | ".join(plus_minus(100 * getattr(r, m), 100 * getattr(r, m + "_ci")) for m in tables.METRICS)
            lines.append(f"| {_md(r.label)} | {holdup.seeds_done(r)} | {percent(r.short)} | {number(r.short_rank, '{:.0f}')} | "
                         f"{number(r.confirmed_rank, '{:.0f}')} | {cells} | "
                         f"{'<br>'.join(_md(d) for d in r.run_dirs) or '–'} |")
        lines += ["", f"Kendall's tau, sweep order vs confirmed order of the searched recipes ({counted(s.n, 'recipe')}): "
                      f"**{holdup.tau_text(s)}**", "", _md(holdup.seeds_text(s)), ""]
        lines += [f"- {_md(flag)}" for flag in s.warnings]
    return lines
