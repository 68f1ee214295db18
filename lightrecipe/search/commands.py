"""`lightrecipe sweep`: search a space for each arch on a local Ray instance or a Ray cluster."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from lightrecipe.errors import UserError
from lightrecipe.search import dashboard
from lightrecipe.search.argparse_private import actions_of, is_switch
from lightrecipe.search.settings import DEFAULT_WARM_TOP, MAX_FAILURES
from lightrecipe.search.store import records
from lightrecipe.search.store.storage import masked
from lightrecipe.search.tune.sampler import DEFAULT_STARTUP_TRIALS

EPILOG = """examples:
  lightrecipe sweep --space paper-efficient --arch mobilenetv3_large_100 --arch efficientnet_b0 \\
      --trials 40 --epochs 20 --out sweeps/paper
  lightrecipe sweep ... --out sweeps/paper --resume           # after a crash: continue, same flags
  lightrecipe sweep --space paper-efficient --arch efficientnet_b0 --trials 40 --out sweeps/effnet \\
      --warm-start sweeps/paper:mobilenetv3_large_100           # start from the MobileNet study's top 3
  lightrecipe sweep ... --address 10.0.0.1:6379 --gpus-per-trial 0.5 \\
      --storage postgresql://user@db/lightrecipe                # on a Ray cluster (see README, "Running on a cluster")

exit codes: 0 every study has its --trials finished, at least one of them complete; 1 anything else (a study
in which no trial completed says so, with its most common failure); 2 a user error; 3 stopped by --time-budget
(resumable); 130 / 143 interrupted by SIGINT / SIGTERM (resumable with the printed command).
"""


def register(subparsers) -> argparse.ArgumentParser:
    """Add `sweep` and `dashboard` to the `lightrecipe` parser; returns the sweep parser, whose cluster flags
    `confirm` shares (cli.py registers confirm with it)."""
    p = subparsers.add_parser(
        "sweep",
        help="search a space of recipes for one or more archs (Ray Tune + Optuna + ASHA)",
        description=(
            "Run one Optuna study per (space, arch): TPE samples recipes, ASHA stops weak trials on val "
            "knn_top1, every trial is recorded in the trial database. The ResNet-50 settings run as the "
            "first trial of each study."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_study_flags(p)
    _add_cluster_flags(p)
    p.set_defaults(func=cmd_sweep, parser_of_sweep=p)
    dashboard.register(subparsers)
    return p


def _add_study_flags(p: argparse.ArgumentParser) -> None:
    """What to search: the space, the archs, the budget and fixed fields."""
    p.add_argument("--space", required=True, help="built-in space name (see `lightrecipe spaces list`) or a YAML file")
    p.add_argument("--arch", action="append", required=True, metavar="ARCH",
                   help="timm architecture; repeat for several (one study each, run one after another)")
    p.add_argument("--trials", type=int, required=True, metavar="N",
                   help="trials per study, the baseline included")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="sweep folder: trial database (trials.db), run folders, Ray's logs")
    p.add_argument("--epochs", type=int, help="epochs of a full trial (default: the space's fixed epochs)")
    p.add_argument("--grace-epochs", type=int, metavar="E",
                   help="epochs before ASHA may stop a trial (default: a quarter of --epochs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                   help="fixed recipe field for every trial, e.g. --set dataset=cifar10 (repeatable)")
    p.add_argument("--warm-start", metavar="SOURCE[:ARCH]",
                   help="start each new study from the top recipes of another study: SOURCE a sweep folder or "
                        "database URL, ARCH its study's arch (default: the same arch, or its only study); mapped "
                        "into this space and run right after the baseline")
    p.add_argument("--warm-top", type=int, default=DEFAULT_WARM_TOP, metavar="K",
                   help=f"how many of the source's recipes: confirmed winners first, then by val value "
                        f"(default {DEFAULT_WARM_TOP})")


def _add_cluster_flags(p: argparse.ArgumentParser) -> None:
    """Where and how trials run, resuming and the sampler (confirm shares all but those in its SWEEP_ONLY)."""
    p.add_argument("--concurrency", type=int, help="trials at once (default: as many as the cluster fits)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, metavar="C",
                   help="CPUs each trial holds, per worker with --workers-per-trial (default 1)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, metavar="G",
                   help="GPUs each trial holds, per worker with --workers-per-trial, 0 to 1; fractions share a GPU, "
                        "e.g. 0.5 (default 0)")
    p.add_argument("--workers-per-trial", type=int, default=1, metavar="N",
                   help="run each trial data-parallel on N Ray Train workers, possibly on several nodes; "
                        "batch_size stays the global batch (default 1: the trial trains in its own process)")
    p.add_argument("--address", help="join this Ray cluster (HOST:PORT of `ray start --head`); default: start a local one")
    p.add_argument("--storage", metavar="URL",
                   help="trial database: an SQLAlchemy URL (postgresql://user@host/db, password in ~/.pgpass "
                        "or PGPASSWORD) or journal:////shared/path/trials.log (default: sqlite file DIR/trials.db)")
    p.add_argument("--ray-storage", metavar="PATH|URI",
                   help="Ray Tune's storage_path (default DIR/ray); on a cluster a shared folder or s3://...")
    p.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="stop the sweep after this long; unfinished trials continue with --resume")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep in DIR after a crash, a time budget or an interrupt (same flags)")
    p.add_argument("--no-baseline", action="store_false", dest="baseline",
                   help="do not run the ResNet-50 settings as the first trial of each study")
    p.add_argument("--max-failures", type=int, default=MAX_FAILURES, metavar="K",
                   help=f"restarts of a trial whose worker died, from its checkpoint (default {MAX_FAILURES})")
    p.add_argument("--startup-trials", type=int, default=DEFAULT_STARTUP_TRIALS, metavar="N",
                   help="random trials before TPE models the space (Optuna's n_startup_trials, "
                   f"default {DEFAULT_STARTUP_TRIALS})")
    p.add_argument("--log-to", action="append", default=[], metavar="TRACKER[:WHERE]", dest="log_to",
                   help="also log every trial to mlflow[:URI] (default file store DIR/mlruns), tensorboard[:DIR] "
                        "(default DIR/tensorboard), wandb[:PROJECT] (default project lightrecipe, files in "
                        "WANDB_DIR or DIR); repeatable; needs the extra of that name")


def cmd_sweep(args: argparse.Namespace) -> int:
    from lightrecipe.spaces import load_space

    space = load_space(args.space)  # before Ray and Optuna load: a wrong space answers at once
    from lightrecipe.search.sweep import run_sweep

    settings = sweep_settings(args, space=space, archs=tuple(args.arch), trials=args.trials, out=args.out,
                              epochs=args.epochs, grace_epochs=args.grace_epochs, baseline=args.baseline,
                              startup_trials=args.startup_trials)

    def database() -> None:
        print(f"trial database: {masked(settings.storage or records.default_storage_url(str(args.out)))}")

    return run_resumably(args, lambda: run_sweep(settings, stream=sys.stdout), settings.time_budget, database)


def sweep_settings(args: argparse.Namespace, **study_fields):
    """SweepSettings from the parsed flags: every field whose flag has the field's name is taken as parsed (the
    cluster flags `sweep` and `confirm` share), `--set` is parsed into overrides, `study_fields` give the rest."""
    import dataclasses

    from lightrecipe.search.settings import SweepSettings
    from lightrecipe.trainers.fields.recipe_text import parse_assignments

    if args.max_failures < 0:
        raise UserError(f"--max-failures must be 0 or more, got {args.max_failures}")
    shared = {f.name: getattr(args, f.name) for f in dataclasses.fields(SweepSettings)
              if f.name not in study_fields and hasattr(args, f.name)}
    shared["log_to"] = tuple(shared.get("log_to") or ())
    if hasattr(args, "assignments"):
        shared["overrides"] = parse_assignments(args.assignments)
    return SweepSettings(**shared, **study_fields)


def run_resumably(args: argparse.Namespace, run, time_budget: float | None, epilogue) -> int:
    """Run a sweep-like command (`run()` returns its study outcomes) and turn the result into the exit-code
    contract: 0 all finished with a complete trial in every study, 3 time budget, 130/143 interrupted, 1
    otherwise, printing the --resume command, or why a finished study has nothing to show."""
    from lightrecipe.search.cluster.interrupts import EXIT_DONE, EXIT_OTHER, EXIT_TIME_BUDGET, Interrupted

    try:
        outcomes = run()
    except Interrupted as stop:
        print(f"\n{stop}: running trials stay in the trial database, resumable. Continue with:", flush=True)
        print(f"  {resume_command(args)}", flush=True)
        return stop.exit_code
    print()
    for outcome in outcomes:
        print_outcome(outcome)
    epilogue()
    if all(outcome.finished >= outcome.trials for outcome in outcomes):
        empty = no_trial_completed(outcomes)
        for line in empty:
            print(line, file=sys.stderr)
        return EXIT_OTHER if empty else EXIT_DONE
    print(f"to continue: {resume_command(args)}")
    return EXIT_TIME_BUDGET if time_budget else EXIT_OTHER


def print_outcome(outcome) -> None:
    from lightrecipe.words import noun

    states = ", ".join(f"{count} {state}" for state, count in outcome.counts.items() if count)
    print(f"{outcome.name}: {outcome.finished}/{outcome.trials} {noun(outcome.trials, 'trial')} finished "
          f"({states or 'none'})")
    if outcome.best:
        print(f"  best: trial {outcome.best[0]}, knn_top1 {outcome.best[1]:.4f}")
    if outcome.baseline:
        value = "not complete" if outcome.baseline[1] is None else f"knn_top1 {outcome.baseline[1]:.4f}"
        fitted = f" ({outcome.baseline_note})" if outcome.baseline_note else ""
        print(f"  ResNet-50 baseline{fitted}: trial {outcome.baseline[0]}, {value}")
    if outcome.unfinished or outcome.finished < outcome.trials:
        print("  unfinished: run the same command with --resume to continue")


def no_trial_completed(outcomes) -> list[str]:
    """One line per study in which no trial completed, naming its most common failure: such a study has no best
    recipe, so the sweep did not do its job (exit code 1, not 0)."""
    from lightrecipe.words import counted

    lines = []
    for o in outcomes:
        if o.best is not None:  # a trial Optuna holds as COMPLETE, with its value
            continue
        states = ", ".join(f"{n} {s}" for s, n in o.counts.items() if n) or "no trials"
        reason = " ".join(o.failure[0].split()) if o.failure else ""  # on one line, in full: the culprit is in it
        why = f"; the most common failure ({o.failure[1]} of {counted(o.finished, 'trial')}): {reason}" if reason \
            else ""
        lines.append(f"lightrecipe: no trial completed in study {o.name} ({states}){why}")
    return lines


def resume_command(args: argparse.Namespace) -> str:
    """This sweep's command line with --resume, as a shell would take it; a password in --storage shows as ***
    (give it through ~/.pgpass or PGPASSWORD instead of the URL)."""
    parts = ["lightrecipe", getattr(args, "command", None) or "sweep"]  # `confirm` reuses this with its parser
    for action in actions_of(args.parser_of_sweep):
        value = getattr(args, action.dest, None)
        if not action.option_strings and value is not None:  # a positional: confirm's SWEEP_DIR
            parts.append(str(value))
        if not action.option_strings or action.dest in ("help", "resume") or value == action.default:
            continue
        flag = action.option_strings[0]
        if is_switch(action):
            parts.append(flag)
            continue
        for item in value if isinstance(value, list) else [value]:
            parts += [flag, masked(str(item)) if action.dest == "storage" else str(item)]
    return shlex.join([*parts, "--resume"])
