"""`lightrecipe confirm SWEEP_DIR`: re-train a sweep's top recipes and the ResNet-50 settings with more seeds and
a longer schedule (run.py). Its cluster flags are the sweep's own argparse actions, shared, not copied:
one definition, one help text, one set of checks (settings.check_settings)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from lightrecipe.search.argparse_private import actions_of, share_action
from lightrecipe.search.confirm.settings import DEFAULT_SEEDS, DEFAULT_TOP, EPOCHS_FACTOR

# The sweep's flags that say what to search; every other sweep flag (where and how trials run) is shared.
SWEEP_ONLY = ("help", "space", "arch", "trials", "out", "epochs", "grace_epochs", "assignments", "seed",
              "baseline", "startup_trials", "warm_start", "warm_top")

EPILOG = """examples:
  lightrecipe confirm sweeps/paper                        # top 3 + ResNet-50 settings, 3 seeds, 3x the epochs
  lightrecipe confirm sweeps/paper --top 5 --seeds 5 --epochs 100 --arch mobilenetv3_large_100
  lightrecipe confirm sweeps/paper ... --resume           # after a crash or --time-budget: same flags
  lightrecipe report sweeps/paper --out report/           # the report gains "Does it hold up?"

exit codes as `lightrecipe sweep`.
"""


def register(subparsers, *, sweep_parser: argparse.ArgumentParser, summary: Callable[[str | Path], None]) -> None:
    """Add `confirm`, sharing `sweep_parser`'s cluster flags; `summary(source)` prints the results at the end
    (the report's "Does it hold up?" tables: the caller passes it, since search never imports reports)."""
    p = subparsers.add_parser(
        "confirm",
        help="re-train a sweep's top recipes and the ResNet-50 settings with N seeds on a longer schedule",
        description=(
            "Per arch study of the sweep: its top-K recipes by the sweep's objective and the ResNet-50 "
            "settings, each trained with N seeds at E epochs through the same Ray trainable, and the random-init "
            "floor for the same seeds. Stored in the sweep's trial database as separate studies; the report "
            "shows whether the ranking holds up, with 95% intervals, and the test split."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR", help="the --out folder of a sweep")
    p.add_argument("--top", type=int, default=DEFAULT_TOP, metavar="K",
                   help=f"recipes per arch, best first by the sweep's objective (default {DEFAULT_TOP})")
    p.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, metavar="N",
                   help="seeds per recipe and for the floor: the N smallest no sweep trial trained with "
                        f"(default {DEFAULT_SEEDS})")
    p.add_argument("--epochs", type=int, metavar="E",
                   help=f"epochs of each run (default: {EPOCHS_FACTOR}x the sweep's)")
    p.add_argument("--arch", action="append", default=[], metavar="ARCH",
                   help="confirm only this arch's study; repeat for several (default: every arch)")
    for action in actions_of(sweep_parser):
        if action.dest not in SWEEP_ONLY:
            share_action(p, action)
    p.set_defaults(func=cmd_confirm, parser_of_sweep=p, summary=summary)


def settings_from(args: argparse.Namespace):
    """ConfirmSettings from parsed flags; the cluster part is a SweepSettings built from the shared flags."""
    from lightrecipe.search.commands import sweep_settings
    from lightrecipe.search.confirm.settings import ConfirmSettings

    run = sweep_settings(args, space="confirm", archs=tuple(args.arch), trials=1, out=args.sweep_dir, epochs=None)
    return ConfirmSettings(sweep_dir=args.sweep_dir, run=run, top=args.top, seeds=args.seeds, epochs=args.epochs,
                           archs=tuple(args.arch))


def cmd_confirm(args: argparse.Namespace) -> int:
    from lightrecipe.search.commands import run_resumably
    from lightrecipe.search.confirm.run import run_confirm

    settings = settings_from(args)
    source = args.sweep_dir if settings.run.storage is None else settings.run.storage
    return run_resumably(args, lambda: run_confirm(settings, stream=sys.stdout), settings.run.time_budget,
                         lambda: args.summary(source))
