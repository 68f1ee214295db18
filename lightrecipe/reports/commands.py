"""`lightrecipe report SOURCE... --out DIR`: trial databases -> HTML/Markdown report, CSV, figures, best recipes."""

from __future__ import annotations

import argparse
from pathlib import Path

from lightrecipe.search.store.records import VALIDATION_METRICS  # not reports.tables: that loads pandas


def register(subparsers) -> None:
    """Add this part's subcommands to the `lightrecipe` parser."""
    p = subparsers.add_parser(
        "report",
        help="report how the best recipe per arch differs from the ResNet-50 settings",
        description="Read one or more trial databases (sweep folders or SQLAlchemy URLs; a running sweep is "
        "fine, it is read from a snapshot) and write report.html, report.md, trials.csv, figures (PNG, SVG) "
        "and best-<arch>.yaml recipes to --out.",
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="sweep folder (its trials.db), SQLite file, or database URL; several are merged")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the report (created if missing)")
    p.add_argument("--metric", default="knn_top1", choices=VALIDATION_METRICS,
                   help="validation metric that ranks recipes (default: knn_top1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lightrecipe.reports.build import build_report

    report = build_report(args.sources, args.out, metric=args.metric)
    print_summary(report)
    print(f"report: {report.html.resolve()}")
    return 0


def print_summary(report) -> None:
    """The report's notes and, per arch, ResNet-50 settings -> best recipe, as the terminal sees them."""
    from lightrecipe.reports.selections import baseline_name

    for note in report.notes:
        print(f"note: {note}")
    for row in report.headline.itertuples():
        if row.best == row.best:  # not NaN
            untrained = f"untrained {row.floor:.1f}%, " if row.floor == row.floor else ""
            baseline = f"{baseline_name(row.baseline_fit)} {row.baseline:.1f}%"
            print(f"{row.arch}: {untrained}{baseline} -> best {row.best:.1f}% ({row.delta:+.1f} pts); "
                  f"top knobs: {row.top_knobs or 'n/a'}")


def print_holdup(source: str | Path) -> None:
    """The report's "Does it hold up?" tables, as the terminal shows them."""
    from lightrecipe.reports import holdup, tables

    frames = tables.load([str(source)])
    for arch, text in holdup.terminal_text(frames).items():
        print(f"\n{arch}\n{text}")
