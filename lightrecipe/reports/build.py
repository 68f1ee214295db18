"""Trial databases -> a report folder: report.html (self-contained), report.md, trials.csv, the figures as
PNG and SVG, and best-<arch>.yaml per arch (a recipe `lightrecipe train --recipe` accepts as is).

This module only orchestrates: tables.py reads the databases, figures/ computes and draws each figure,
headline.py, best_recipes.py, render_html.py and render_md.py make the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from lightrecipe.errors import UserError
from lightrecipe.reports import figures, holdup, selections, tables
from lightrecipe.reports.best_recipes import write_best_recipes
from lightrecipe.reports.figures import style
from lightrecipe.reports.headline import headline_data
from lightrecipe.reports.render_html import render_html
from lightrecipe.reports.render_md import render_markdown
from lightrecipe.reports.report import DrawnFigure, Report
from lightrecipe.search.store import records
from lightrecipe.search.store.storage import masked
from lightrecipe.words import counted


def build_report(sources: str | Sequence[str], out: str | Path, *, metric: str = "knn_top1") -> Report:
    if metric not in tables.REPORT_METRICS:
        raise UserError(f"metric '{metric}' cannot rank recipes; valid: {', '.join(tables.REPORT_METRICS)} "
                        "(test metrics are never used to pick a recipe)")
    sources = [sources] if isinstance(sources, str) else list(sources)
    frames = tables.load(sources)
    trials = frames.trials
    sources = [masked(str(s)) for s in sources]  # a database password never reaches the report or a message
    if trials.empty:
        raise UserError(f"no trials in {', '.join(repr(str(s)) for s in sources)}: the database holds no "
                        "study with trials yet (start a sweep, or give the sweep folder it writes to)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out '{out}' is a file; give a folder for the report")
    out.mkdir(parents=True, exist_ok=True)

    notes = _unscored_notes(trials, metric)
    data = {spec.stem: spec.data(frames, metric) for spec in figures.FIGURES}
    drawn = [_draw(spec, data[spec.stem], out, notes) for spec in figures.FIGURES]
    confirmed = holdup.holdup_data(frames, metric)
    headline = headline_data(frames, metric, importance=data["importance"], confirmed=confirmed)  # fANOVA once
    winners = holdup.confirmed_winners(confirmed, metric)
    best_files = write_best_recipes(trials, metric, out, notes, confirmed=_winner_recipes(frames.confirm, winners))

    csv = out / "trials.csv"
    trials.drop(columns=["distributions"]).to_csv(csv, index=False)
    report = Report(out=out, html=out / "report.html", markdown=out / "report.md", csv=csv, notes=notes,
                    headline=headline, best_recipes=best_files, holdup=confirmed,
                    holdup_summary=holdup.holdup_summary(confirmed, metric),
                    figures=[p for f in drawn for p in (f.png, f.svg) if p is not None])
    context = dict(trials=trials, metric=metric, sources=[str(s) for s in sources], drawn=drawn, report=report)
    report.html.write_text(render_html(**context), encoding="utf-8")
    report.markdown.write_text(render_markdown(**context), encoding="utf-8")
    return report


def _winner_recipes(confirm: pd.DataFrame, winners: pd.DataFrame) -> dict[str, tuple[pd.Series, str]]:
    """Arch -> (the confirmed winner's first-seed trial row, the sentence that says how it was confirmed)."""
    out = {}
    for arch, w in winners.iterrows():
        runs = confirm[(confirm["study"] == w.study) & (confirm["source_trial"] == w.source_trial)
                       & (confirm["state"] == records.COMPLETE)].sort_values("seed")
        if len(runs):
            seeds, epochs = counted(int(w.n), "seed"), counted(int(runs.iloc[0]["max_epochs"]), "epoch")
            out[str(arch)] = (runs.iloc[0], f"confirmed winner: recipe {w.label} of {w.study}, {seeds} at {epochs}")
    return out


def _unscored_notes(trials: pd.DataFrame, metric: str) -> list[str]:
    """A note when no trial can be ranked yet, with each study's trial counts by state."""
    if selections.scored(trials, metric).shape[0]:
        return []
    counts = trials.groupby("study")["state"].value_counts()
    return [f"no complete trial has a {metric} value yet; "
            + "; ".join(f"{study}: " + ", ".join(f"{n} {state}" for state, n in part.droplevel(0).items())
                        for study, part in counts.groupby(level=0))]


def _draw(spec: figures.FigureSpec, data: pd.DataFrame, out: Path, notes: list[str]) -> DrawnFigure:
    """Draw one figure from its data and save it; what it skips or leaves out goes to `notes`."""
    drawn = DrawnFigure(spec.stem, spec.caption)
    if data.empty:
        drawn.skipped = str(data.attrs.get("reason", "no data"))
    else:
        try:
            drawn.png, drawn.svg = style.save(spec.plot(data), out / spec.stem)
        except Exception as exc:  # one figure that cannot be drawn must not lose the rest of the report
            drawn.skipped = f"could not be drawn ({type(exc).__name__}: {exc})"
    if drawn.skipped:
        notes.append(f"figure '{spec.stem}' skipped: {drawn.skipped}")
    else:  # drawn, but without some archs: say which and why (the reason already names them when skipped)
        notes.extend(f"figure '{spec.stem}' leaves out {note}" for note in data.attrs.get("notes", []))
    return drawn


__all__ = ["DrawnFigure", "Report", "build_report"]
