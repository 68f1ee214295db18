"""`lightrecipe demo`: a small real sweep on the bundled digits, then its report.

An efficient MobileNet-V3 searched over the `digits-demo` space on scikit-learn's digits written as an
ImageNet-layout folder, the ResNet-50 settings as the study's first trial, ASHA on val kNN, then `lightrecipe
report` on the result, which draws the same network untrained (the random-init floor) beside both.
Sized to finish in under 10 minutes on two CPU cores; every number can be raised from the command line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DEMO_ARCHS = ("mobilenetv3_small_050",)  # the cheapest MobileNet-V3
DEMO_SPACE = "digits-demo"  # spaces/builtin/digits-demo.yaml: sizes, data properties and ranges for the digits
DEMO_TRIALS = 8  # per arch, the ResNet-50 baseline included
DEMO_EPOCHS = 24  # the demo's two best recipes passed the untrained val kNN at epochs 11 and 13 (measured)
DEMO_GRACE = 8  # ASHA's first rung: a MobileNet's kNN on digits dips for a few epochs before it climbs


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="run a small real sweep on the bundled digits and write its report",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument("--out", type=Path, default=Path("demo"), help="folder for the sweep and report (default: demo)")
    p.add_argument("--trials", type=int, default=DEMO_TRIALS,
                   help=f"trials per arch, the ResNet-50 baseline included (default {DEMO_TRIALS})")
    p.add_argument("--epochs", type=int, default=DEMO_EPOCHS, help=f"epochs of a full trial (default {DEMO_EPOCHS})")
    p.add_argument("--grace-epochs", type=int, default=None, metavar="G",
                   help=f"ASHA's first rung (default {DEMO_GRACE}, or a third of --epochs when that is smaller)")
    p.add_argument("--arch", action="append", default=[], metavar="ARCH",
                   help=f"an arch to search besides {' and '.join(DEMO_ARCHS)}, which the demo always searches; "
                        "repeatable, one study each, e.g. --arch resnet10t adds a ResNet (default: none added)")
    p.add_argument("--concurrency", type=int, default=None, help="trials at once (default: one per CPU)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted demo sweep in --out")
    p.set_defaults(func=run_demo)


def demo_archs(added: list[str]) -> tuple[str, ...]:
    """The demo's archs: its own first, then each `--arch` (adding one that is there already changes nothing).
    `--arch` adds, so the searched recipe of another family sits beside the demo's MobileNet in one report."""
    return tuple(dict.fromkeys([*DEMO_ARCHS, *added]))


def single_run_note(sweep_dir: Path) -> str:
    """What the demo's trained numbers are: one run each. The CPU's instruction set picks torch's and oneDNN's
    kernels, which sum in another order, and early MoCo training on digits grows such a rounding difference into
    another run (benchmarks/cpu_kernels.py); the untrained floor only evaluates and stays put."""
    return ("note: each trained value above is one run of one seed: bit-identical again on this machine, but on "
            "another CPU, torch build or thread count the same recipe and seed move by several points (the "
            f"untrained floor does not). The estimate: lightrecipe confirm {sweep_dir} (the winners over seeds)")


def run_demo(args: argparse.Namespace) -> int:
    from lightrecipe.reports.build import build_report
    from lightrecipe.reports.commands import print_summary
    from lightrecipe.search.commands import no_trial_completed
    from lightrecipe.search.settings import SweepSettings
    from lightrecipe.search.sweep import run_sweep
    from lightrecipe.trainers.data.digits_folder import write_digits_folder
    from lightrecipe.words import noun

    out = args.out.resolve()
    sweep_dir, report_dir = out / "sweep", out / "report"
    started = time.perf_counter()
    data_root = write_digits_folder(out / "data" / "digits")
    print(f"data: the bundled digits as an image folder, {data_root}")
    grace = args.grace_epochs if args.grace_epochs is not None else max(1, min(DEMO_GRACE, args.epochs // 3))
    settings = SweepSettings(
        space=DEMO_SPACE,
        archs=demo_archs(args.arch),
        trials=args.trials,
        out=sweep_dir,
        epochs=args.epochs,
        grace_epochs=grace,
        overrides={"dataset": "imagefolder", "data_root": str(data_root)},
        concurrency=args.concurrency,
        resume=args.resume or (sweep_dir / "trials.db").exists(),
    )
    outcomes = run_sweep(settings, stream=sys.stdout)
    swept = time.perf_counter() - started
    report = build_report([str(sweep_dir)], report_dir)
    print()
    for outcome in outcomes:
        print(f"{outcome.name}: {outcome.finished}/{outcome.trials} {noun(outcome.trials, 'trial')} finished")
    print_summary(report)
    print(single_run_note(args.out / "sweep"))
    total = time.perf_counter() - started
    print(f"sweep {swept / 60:.1f} min, report {(total - swept) / 60:.1f} min")
    print(f"trial database: {sweep_dir / 'trials.db'}")
    print(f"report: {report.html.resolve()}")
    empty = no_trial_completed(outcomes)  # as `lightrecipe sweep`: a study with no complete trial is exit code 1
    for line in empty:
        print(line, file=sys.stderr)
    return 1 if empty else 0
