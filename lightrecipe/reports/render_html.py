"""report.html: one self-contained page (figures embedded as data URIs, no network), every user string escaped."""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import pandas as pd

from lightrecipe.reports import figures, holdup, selections, tables
from lightrecipe.reports.text import number, percent, plus_minus
from lightrecipe.search.store import records
from lightrecipe.words import counted

if TYPE_CHECKING:
    from lightrecipe.reports.report import DrawnFigure, Report

_CSS = """
body{font:15px/1.5 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1d1d1f;margin:0;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:28px 32px 60px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:36px 0 10px;border-bottom:1px solid #e5e5e5;padding-bottom:4px}
.meta{color:#666;font-size:13px}.meta code{font-size:12px}
table{border-collapse:collapse;font-size:13.5px;margin:8px 0}th,td{padding:5px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f4f4f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.up{color:#0a7d38;font-weight:700}.down{color:#b3261e;font-weight:700}
.notes{background:#fff8e1;border-left:4px solid #f0b400;padding:8px 14px;font-size:13.5px}
figure{margin:22px 0}figure img{max-width:100%;height:auto;border:1px solid #eee;box-sizing:border-box}
figcaption{font-size:13px;color:#555}.skipped{color:#8a6d00;font-style:italic}
td.err{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;color:#8b1a1a;max-width:560px;word-break:break-word}
main{overflow-wrap:break-word}h3{font-size:15px;margin:18px 0 4px}
.sub{color:#666;font-size:12.5px}
"""


def escape_text(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


# A table cell cannot wrap a word, so a name longer than this with no space would widen its table past the
# page; it gets a break opportunity every this many characters (shorter names, every arch name, stay whole).
LONGEST_UNBROKEN = 32
_LONG_RUN = re.compile(rf"(\S{{{LONGEST_UNBROKEN + 1},}})")


def _cell(value: Any) -> str:
    """A name from the database as table-cell HTML: escaped, long runs given `<wbr>` break opportunities."""
    parts = _LONG_RUN.split("" if value is None else str(value))  # odd indices: the long runs
    return "".join(
        "<wbr>".join(escape_text(part[i:i + LONGEST_UNBROKEN]) for i in range(0, len(part), LONGEST_UNBROKEN)) if k % 2
        else escape_text(part) for k, part in enumerate(parts))


def _table(frame: pd.DataFrame, numeric: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{escape_text(c)}</th>" for c in frame.columns)
    body = []
    for _, r in frame.iterrows():
        cells = []
        for c in frame.columns:
            cls = ' class="num"' if c in numeric else (' class="err"' if c == "error" else "")
            cells.append(f"<td{cls}>{_cell(r[c])}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _headline_html(headline: pd.DataFrame, metric: str, best_files: dict[str, Path]) -> str:
    """One row per arch, nine columns: params and latency share one cell, the counts by state another, and the
    recipe file sits under the best trial, so the table fits the page."""
    rows = []
    for r in headline.itertuples():
        cls = "up" if r.delta > 0 else ("down" if r.delta < 0 else "")
        recipe = best_files.get(r.arch)
        link = f"<br><a class=sub href='{escape_text(recipe.name)}'>{_cell(recipe.name)}</a>" if recipe else ""
        run = f"<br><span class=sub>run folder: {_cell(r.best_run_dir)}</span>" if r.best_run_dir else ""
        fitted = f"<br><span class=sub>{_cell(r.baseline_fit)}</span>" if r.baseline_fit else ""
        rows.append(
            f"<tr><td><b>{_cell(r.arch)}</b><br><span class=sub>{escape_text(r.basis)}</span></td>"
            f"<td class=num>{number(r.params_m, '{:.2f}')} · {number(r.latency_ms, '{:.1f}', selections.NOT_MEASURED)}</td>"
            f"<td class=num>{plus_minus(r.floor, r.floor_ci)}</td><td class=num>{plus_minus(r.baseline, r.baseline_ci)}{fitted}</td>"
            f"<td class=num>{plus_minus(r.best, r.best_ci)}</td><td class='num {cls}'>{number(r.delta, '{:+.1f}')}</td>"
            f"<td>{_cell(r.top_knobs) or '–'}</td><td>{_cell(r.best_trial) or '–'}{link}{run}</td>"
            f"<td class=num>{r.complete}/{r.trials} · {r.pruned} · {r.failed + r.diverged} · {r.running}</td></tr>"
        )
    return (f"<table><thead><tr><th>arch</th><th>params (M) · latency (ms)</th><th>random-init floor (%)</th><th>ResNet-50 settings (%)</th><th>best recipe (%)</th>"
            f"<th>delta (pts)</th><th>most important knobs</th><th>best trial and its recipe file</th>"
            f"<th>trials: complete · pruned · failed · running</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p class=meta>val {escape_text(figures.metric_label(metric))} ({escape_text(metric)}); ResNet-50 settings and best "
            "recipe are means over repeated seeds of that recipe (± a 95% t-interval where `lightrecipe confirm` "
            "ran the recipe with several seeds: those rows show the test split); the random-init floor is the same backbone untrained, "
            "scored the same way: a recipe below it has done harm, not good. Latency: "
            f"{escape_text(headline.attrs.get('latency_caption', ''))}.</p>")


def _holdup_html(report: Report) -> str:
    """"Does it hold up?": per confirm study, the table over seeds, Kendall's tau and the flags."""
    data, summary = report.holdup, report.holdup_summary.set_index("study")
    parts = ["<h2>Does it hold up?</h2><p class=meta>The sweep's top recipes and the ResNet-50 settings re-trained "
             "by <code>lightrecipe confirm</code> with several seeds on a longer schedule, and the untrained backbone. "
             "Mean ± 95% t-interval over seeds, in %. Ranks by mean val.</p>"]
    for (arch, study), part in data.groupby(["arch", "study"], sort=True):
        s = summary.loc[study]
        rows = "".join(
            f"<tr><td>{_cell(r.label)}</td><td class=num>{holdup.seeds_done(r)}</td><td class=num>{percent(r.short)}</td>"
            f"<td class=num>{number(r.short_rank, '{:.0f}')}</td><td class=num>{number(r.confirmed_rank, '{:.0f}')}</td>"
            + "".join(f"<td class=num>{escape_text(plus_minus(100 * getattr(r, m), 100 * getattr(r, m + '_ci')))}</td>" for m in tables.METRICS)
            + f"<td class=sub>{'<br>'.join(_cell(d) for d in r.run_dirs) or '–'}</td></tr>"
            for r in part.itertuples())
        flags = "".join(f"<li>{escape_text(f)}</li>" for f in s.warnings)
        parts.append(
            f"<h3>{escape_text(arch)} <span class=sub>{escape_text(study)}</span></h3><table><thead><tr><th>recipe</th><th>seeds</th>"
            "<th>sweep val (%)</th><th>sweep rank</th><th>confirmed rank</th><th>val kNN</th><th>val linear</th>"
            "<th>test kNN</th><th>test linear</th><th>run folders</th></tr></thead>"
            f"<tbody>{rows}</tbody></table><p>Kendall's tau, sweep order vs confirmed order of the searched recipes ({counted(s.n, 'recipe')}): "
            f"<b>{escape_text(holdup.tau_text(s))}</b></p><p>{escape_text(holdup.seeds_text(s))}</p>"
            + (f"<div class=notes><ul>{flags}</ul></div>" if flags else ""))
    return "".join(parts)


def render_html(*, trials: pd.DataFrame, metric: str, sources: list[str], drawn: list[DrawnFigure], report: Report) -> str:
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        "<title>lightrecipe report</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>How the best recipe for each efficient net differs from the ResNet-50 settings</h1>",
        f"<p class=meta>Sources: {', '.join(f'<code>{escape_text(s)}</code>' for s in sources)} · ranked by val "
        f"<b>{escape_text(metric)}</b> · {counted(len(trials), 'trial')} in "
        f"{counted(trials['study'].nunique(), 'study', 'studies')} · generated "
        f"{escape_text(dt.datetime.now().strftime('%Y-%m-%d %H:%M'))}</p>",
        "<h2>Headline</h2>",
        _headline_html(report.headline, metric, report.best_recipes),
    ]
    if report.notes:
        parts.append("<div class=notes><b>Notes</b><ul>" + "".join(f"<li>{escape_text(n)}</li>" for n in report.notes)
                     + "</ul></div>")
    if not report.holdup.empty:
        parts.append(_holdup_html(report))
    parts.append("<h2>Figures</h2>")
    parts.extend(_figure_html(f) for f in drawn)
    parts.append("<h2>Studies</h2>")
    parts.append(_table(selections.state_counts(trials)))
    top = selections.top_trials(trials, metric)
    if not top.empty:
        parts.append("<h2>Top trials per arch</h2>" + _top_trials_html(top, metric))
    failures = trials[trials["state"].isin([records.FAILED, records.DIVERGED])][["study", "number", "state", "node", "error"]]
    if len(failures):
        parts.append(f"<h2>Failed and diverged trials</h2>{_table(failures)}")
    parts.append("<p class=meta>Files: <a href='trials.csv'>trials.csv</a> · <a href='report.md'>report.md</a>"
                 + "".join(f" · <a href='{escape_text(p.name)}'>{escape_text(p.name)}</a>" for p in report.best_recipes.values())
                 + "</p></main></body></html>\n")
    return "\n".join(parts)


def _figure_html(f: DrawnFigure) -> str:
    """The figure's PNG embedded as a data URI at its natural size, or the reason it was skipped."""
    if f.png is None:
        return (f"<figure><figcaption><b>{escape_text(f.caption)}</b> <span class=skipped>— skipped: "
                f"{escape_text(f.skipped)}</span></figcaption></figure>")
    raw = f.png.read_bytes()
    width = int.from_bytes(raw[16:20], "big") * 96 // 150  # PNG IHDR width at 150 dpi -> CSS px at 96 dpi
    data = base64.b64encode(raw).decode("ascii")
    return (f"<figure id='fig-{escape_text(f.stem)}'><img src='data:image/png;base64,{data}' width={width} "
            f"alt='{escape_text(f.caption)}'>"
            f"<figcaption><b>{escape_text(f.caption)}</b> · <a href='{escape_text(f.png.name)}'>PNG</a> · "
            f"<a href='{escape_text(f.svg.name if f.svg else '')}'>SVG</a></figcaption></figure>")


def _top_trials_html(top: pd.DataFrame, metric: str) -> str:
    """One table per arch with a column per trial and a row per knob: as narrow as five trials, however
    many knobs the space searched (a column per knob outgrew the page at eleven)."""
    params = [c for c in top.columns if c.startswith("param_")]
    parts = []
    for arch, part in top.groupby("arch", sort=False):
        heads = [f"#{int(r.number)}" + (" best" if i == 0 else "") + (" (ResNet-50 settings)" if r.baseline else "")
                 for i, r in enumerate(part.itertuples())]
        rows = [(f"val {metric}", [f"{v:.4f}" for v in part[metric]])]
        rows += [(c[len("param_"):], [_param_text(v) for v in part[c]]) for c in params if part[c].notna().any()]
        body = "".join(f"<tr><th>{_cell(name)}</th>" + "".join(f"<td class=num>{_cell(v)}</td>" for v in values)
                       + "</tr>" for name, values in rows)
        parts.append(f"<h3>{escape_text(arch)}</h3><table><thead><tr><th>trial</th>"
                     + "".join(f"<th>{escape_text(h)}</th>" for h in heads) + f"</tr></thead><tbody>{body}</tbody></table>")
    return "".join(parts)


def _param_text(value: Any) -> str:
    """A sampled value as the table shows it: 4 significant digits, '–' where the trial did not sample it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
