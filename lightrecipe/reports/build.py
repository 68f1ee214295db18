"""Trial databases -> a report folder: report.html (self-contained), report.md, trials.csv, the figures as
PNG and SVG, and best-<arch>.yaml per arch (a recipe `lightrecipe train --recipe` accepts as is)."""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import yaml

from lightrecipe.errors import UserError
from lightrecipe.reports import figures, style, tables
from lightrecipe.search.storage import masked
from lightrecipe.trainers.recipe import FIELD_NAMES, Recipe, field_types

TOP_KNOBS = 3  # knobs named per arch in the headline


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


@dataclass
class _Figure:
    stem: str
    caption: str
    png: Path | None = None
    svg: Path | None = None
    skipped: str = ""


def build_report(sources: str | Sequence[str], out: str | Path, *, metric: str = "knn_top1") -> Report:
    if metric not in tables.REPORT_METRICS:
        raise UserError(f"metric '{metric}' cannot rank recipes; valid: {', '.join(tables.REPORT_METRICS)} "
                        "(test metrics are never used to pick a recipe)")
    sources = [sources] if isinstance(sources, str) else list(sources)
    trials, curves = tables.load(sources)
    sources = [masked(str(s)) for s in sources]  # a database password never reaches the report or a message
    if trials.empty:
        raise UserError(f"no trials in {', '.join(repr(str(s)) for s in sources)}: the database holds no "
                        "study with trials yet (start a sweep, or give the sweep folder it writes to)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out '{out}' is a file; give a folder for the report")
    out.mkdir(parents=True, exist_ok=True)

    notes: list[str] = []
    if not tables.scored(trials, metric).shape[0]:
        counts = trials.groupby("study")["state"].value_counts()
        notes.append(f"no complete trial has a {metric} value yet; "
                     + "; ".join(f"{study}: " + ", ".join(f"{n} {state}" for state, n in part.droplevel(0).items())
                                 for study, part in counts.groupby(level=0)))
    importance = figures.importance_data(trials, metric)  # computed once: the figure and the headline share it
    drawn = _draw_figures(trials, curves, metric, out, notes, importance)
    if not importance.empty:  # when the whole figure is skipped, its note already names every arch
        notes.extend(f"importance skipped for {n}" for n in importance.attrs.get("notes", []))
    headline = headline_data(trials, metric, importance)
    best_files = _write_best_recipes(trials, metric, out, notes)

    csv = out / "trials.csv"
    trials.drop(columns=["distributions"]).to_csv(csv, index=False)
    report = Report(out=out, html=out / "report.html", markdown=out / "report.md", csv=csv, notes=notes,
                    headline=headline, best_recipes=best_files,
                    figures=[p for f in drawn for p in (f.png, f.svg) if p is not None])
    context = dict(trials=trials, metric=metric, sources=[str(s) for s in sources], drawn=drawn, report=report)
    report.html.write_text(_html(**context), encoding="utf-8")
    report.markdown.write_text(_markdown(**context), encoding="utf-8")
    return report


def _draw_figures(trials: pd.DataFrame, curves: pd.DataFrame, metric: str, out: Path, notes: list[str],
                  importance: pd.DataFrame) -> list[_Figure]:
    drawn = []
    for stem, caption, data_fn, plot_fn in figures.FIGURES:
        fig_info = _Figure(stem, caption)
        if stem == "curves":
            data = figures.curves_data(curves, trials, metric)
        elif stem == "importance":
            data = importance
        else:
            data = data_fn(trials, metric)
        if data.empty:
            fig_info.skipped = str(data.attrs.get("reason", "no data"))
        else:
            try:
                fig = plot_fn(data)
                fig_info.png, fig_info.svg = style.save(fig, out / stem)
            except Exception as exc:  # one figure that cannot be drawn must not lose the rest of the report
                fig_info.skipped = f"could not be drawn ({type(exc).__name__}: {exc})"
        if fig_info.skipped:
            notes.append(f"figure '{stem}' skipped: {fig_info.skipped}")
        drawn.append(fig_info)
    return drawn


def headline_data(trials: pd.DataFrame, metric: str, importance: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per arch: baseline (ResNet-50 settings) and best top-1 in percent, the delta in points, the best
    trial, the most important knobs, and trial counts by state."""
    comp = figures.comparison_data(trials, metric)
    importance = figures.importance_data(trials, metric) if importance is None else importance
    best = tables.best_trials(trials, metric)
    rows = []
    for arch in tables.arch_order(trials):
        sub = trials[trials["arch"] == arch]
        c = comp[comp["arch"] == arch] if not comp.empty else comp
        get = lambda kind, col: float(c.loc[c["kind"] == kind, col].iloc[0]) if len(c) and (c["kind"] == kind).any() \
            else math.nan  # noqa: E731
        imp = importance[importance["arch"] == arch].sort_values("importance", ascending=False) \
            if not importance.empty else importance
        knobs = ", ".join(f"{r.knob} ({r.importance:.2f})" for r in imp.head(TOP_KNOBS).itertuples()) if len(imp) else ""
        b = best.loc[arch] if arch in best.index else None
        counts = sub["state"].value_counts()
        rows.append(dict(
            arch=arch, baseline=get("baseline", "top1"), best=get("best", "top1"),
            delta=get("best", "top1") - get("baseline", "top1"),
            best_trial=f"{b.study} #{int(b.number)}" if b is not None else "",
            top_knobs=knobs,
            trials=len(sub),
            **{s: int(counts.get(s, 0)) for s in ("complete", "pruned", "failed", "diverged", "running")},
        ))
    return pd.DataFrame(rows)


def _recipe_from_row(row: pd.Series) -> dict[str, Any] | None:
    """The trial's resolved recipe with each field's own type (a CSV-like frame turns ints into floats)."""
    types = field_types()
    out: dict[str, Any] = {}
    for name in FIELD_NAMES:
        value = row.get(f"recipe_{name}")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        kind = types[name]
        if kind is bool:
            value = bool(value)
        elif kind is int:
            value = int(value)
        elif kind is float:
            value = float(value)
        else:
            value = str(value)
        out[name] = value
    return out


def safe_name(text: str) -> str:
    """A file-name-safe form of an arch name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or "arch"


def _write_best_recipes(trials: pd.DataFrame, metric: str, out: Path, notes: list[str]) -> dict[str, Path]:
    written: dict[str, Path] = {}
    for arch, row in tables.best_trials(trials, metric).iterrows():
        data = _recipe_from_row(row)
        if data is None:
            notes.append(f"best-{arch}.yaml not written: trial {row.study} #{row.number} recorded no full recipe")
            continue
        try:
            recipe = Recipe.from_dict(data, source=f"trial {row.study} #{row.number}")
        except UserError as exc:
            notes.append(f"best-{arch}.yaml not written: {exc}")
            continue
        one_line = lambda s: str(s).replace("\n", " ")  # noqa: E731
        header = (
            f"# Best recipe for {one_line(arch)}: val {metric} {float(row[metric]):.4f}\n"
            f"# trial #{int(row.number)} of study '{one_line(row.study)}' in {one_line(row.source)}\n"
            f"# Train it: lightrecipe train --recipe best-{safe_name(arch)}.yaml\n"
        )
        path = out / f"best-{safe_name(arch)}.yaml"
        path.write_text(header + recipe.to_yaml(), encoding="utf-8")
        written[str(arch)] = path
    return written


# --- HTML ------------------------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.5 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1d1d1f;margin:0;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:28px 32px 60px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:36px 0 10px;border-bottom:1px solid #e5e5e5;padding-bottom:4px}
.meta{color:#666;font-size:13px}.meta code{font-size:12px}
table{border-collapse:collapse;font-size:13.5px;margin:8px 0}th,td{padding:5px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f4f4f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.up{color:#0a7d38;font-weight:700}.down{color:#b3261e;font-weight:700}
.notes{background:#fff8e1;border-left:4px solid #f0b400;padding:8px 14px;font-size:13.5px}
figure{margin:22px 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:13px;color:#555}.skipped{color:#8a6d00;font-style:italic}
td.err{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;color:#8b1a1a;max-width:560px;word-break:break-word}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any, fmt: str = "{:.1f}") -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def _table(frame: pd.DataFrame, numeric: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    body = []
    for _, r in frame.iterrows():
        cells = []
        for c in frame.columns:
            cls = ' class="num"' if c in numeric else (' class="err"' if c == "error" else "")
            cells.append(f"<td{cls}>{_e(r[c])}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _headline_html(headline: pd.DataFrame, metric: str, best_files: dict[str, Path]) -> str:
    rows = []
    for r in headline.itertuples():
        cls = "up" if r.delta > 0 else ("down" if r.delta < 0 else "")
        recipe = best_files.get(r.arch)
        rows.append(
            f"<tr><td><b>{_e(r.arch)}</b></td><td class=num>{_num(r.baseline)}</td><td class=num>{_num(r.best)}</td>"
            f"<td class='num {cls}'>{_num(r.delta, '{:+.1f}')}</td><td>{_e(r.top_knobs) or '–'}</td>"
            f"<td>{_e(r.best_trial)}</td><td>{_e(recipe.name) if recipe else '–'}</td>"
            f"<td class=num>{r.complete}/{r.trials}</td><td class=num>{r.pruned}</td>"
            f"<td class=num>{r.failed + r.diverged}</td><td class=num>{r.running}</td></tr>"
        )
    return (f"<table><thead><tr><th>arch</th><th>ResNet-50 settings (%)</th><th>best recipe (%)</th><th>delta (pts)</th>"
            f"<th>most important knobs</th><th>best trial</th><th>recipe file</th><th>complete</th><th>pruned</th>"
            f"<th>failed</th><th>running</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p class=meta>val {_e(figures.metric_label(metric))} ({_e(metric)}); ResNet-50 settings and best "
            "recipe are means over repeated seeds of that recipe.</p>")


def _html(*, trials: pd.DataFrame, metric: str, sources: list[str], drawn: list[_Figure], report: Report) -> str:
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        "<title>lightrecipe report</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>How the best recipe for each efficient net differs from the ResNet-50 settings</h1>",
        f"<p class=meta>Sources: {', '.join(f'<code>{_e(s)}</code>' for s in sources)} · ranked by val "
        f"<b>{_e(metric)}</b> · {len(trials)} trials in {trials['study'].nunique()} studies · generated "
        f"{_e(dt.datetime.now().strftime('%Y-%m-%d %H:%M'))}</p>",
        "<h2>Headline</h2>",
        _headline_html(report.headline, metric, report.best_recipes),
    ]
    if report.notes:
        parts.append("<div class=notes><b>Notes</b><ul>" + "".join(f"<li>{_e(n)}</li>" for n in report.notes)
                     + "</ul></div>")
    parts.append("<h2>Figures</h2>")
    for f in drawn:
        if f.png is None:
            parts.append(f"<figure><figcaption><b>{_e(f.caption)}</b> <span class=skipped>— skipped: "
                         f"{_e(f.skipped)}</span></figcaption></figure>")
            continue
        raw = f.png.read_bytes()
        width = int.from_bytes(raw[16:20], "big") * 96 // 150  # PNG IHDR width at 150 dpi -> CSS px at 96 dpi
        data = base64.b64encode(raw).decode("ascii")
        parts.append(f"<figure id='fig-{_e(f.stem)}'><img src='data:image/png;base64,{data}' width={width} "
                     f"alt='{_e(f.caption)}'>"
                     f"<figcaption><b>{_e(f.caption)}</b> · <a href='{_e(f.png.name)}'>PNG</a> · "
                     f"<a href='{_e(f.svg.name if f.svg else '')}'>SVG</a></figcaption></figure>")
    parts.append("<h2>Studies</h2>")
    parts.append(_table(tables.state_counts(trials)))
    top = _top_trials(trials, metric)
    if not top.empty:
        parts.append(f"<h2>Top trials per arch</h2>{_table(top, numeric=(metric,))}")
    failures = trials[trials["state"].isin(["failed", "diverged"])][["study", "number", "state", "node", "error"]]
    if len(failures):
        parts.append(f"<h2>Failed and diverged trials</h2>{_table(failures)}")
    parts.append("<p class=meta>Files: <a href='trials.csv'>trials.csv</a> · <a href='report.md'>report.md</a>"
                 + "".join(f" · <a href='{_e(p.name)}'>{_e(p.name)}</a>" for p in report.best_recipes.values())
                 + "</p></main></body></html>\n")
    return "\n".join(parts)


def _top_trials(trials: pd.DataFrame, metric: str, n: int = 5) -> pd.DataFrame:
    done = tables.scored(trials, metric)
    if done.empty:
        return done
    params = [c for c in done.columns if c.startswith("param_") and done[c].notna().any()]
    top = done.sort_values(metric, ascending=False).groupby("arch", sort=False).head(n)
    top = top.sort_values(["arch", metric], ascending=[True, False])
    frame = top[["arch", "number", "baseline", metric, *params]].copy()
    frame[metric] = frame[metric].map(lambda v: f"{v:.4f}")
    for c in params:
        frame[c] = frame[c].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v))
                                else (f"{v:.4g}" if isinstance(v, float) else v))
    return frame.rename(columns={c: c[len("param_"):] for c in params})


# --- Markdown --------------------------------------------------------------------------------------------


def _md(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _markdown(*, trials: pd.DataFrame, metric: str, sources: list[str], drawn: list[_Figure], report: Report) -> str:
    lines = ["# How the best recipe for each efficient net differs from the ResNet-50 settings", "",
             f"Sources: {', '.join(f'`{_md(s)}`' for s in sources)}; ranked by val `{metric}`; {len(trials)} trials.",
             "", "## Headline", "",
             "| arch | ResNet-50 settings (%) | best recipe (%) | delta (pts) | most important knobs | best trial | recipe file |",
             "|---|---:|---:|---:|---|---|---|"]
    for r in report.headline.itertuples():
        recipe = report.best_recipes.get(r.arch)
        lines.append(f"| {_md(r.arch)} | {_num(r.baseline)} | {_num(r.best)} | {_num(r.delta, '{:+.1f}')} | "
                     f"{_md(r.top_knobs) or '–'} | {_md(r.best_trial)} | {recipe.name if recipe else '–'} |")
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


__all__ = ["Report", "build_report", "headline_data", "safe_name"]
