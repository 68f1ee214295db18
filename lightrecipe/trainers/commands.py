"""CLI: `lightrecipe train`, `lightrecipe presets`, `lightrecipe bench train`, `lightrecipe bench latency`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from lightrecipe.errors import UserError
from lightrecipe.trainers.fields.recipe_text import parse_assignments
from lightrecipe.trainers.fit import Fit, TrainImages, fit_preset
from lightrecipe.trainers.presets import list_presets, preset_description
from lightrecipe.trainers.recipe import Recipe, check_field_names, preset
from lightrecipe.trainers.run import trackers
from lightrecipe.trainers.run.outcome import DIVERGED

METRIC_KEYS = ("knn_top1", "linear_top1", "test_knn_top1", "test_linear_top1", "params", "state")


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train one recipe and print its metrics")
    p.add_argument("--preset", default=None, help=f"starting recipe: {', '.join(list_presets())} (default: the MoCo v2 ResNet-50 settings); "
                        "MoCo's queue and batch are fitted to the training images unless --set gives them")
    p.add_argument("--recipe", default=None, metavar="FILE.yaml",
                   help="recipe file: a full recipe, or `preset: NAME` plus fields; its `cpu_threads`, if any, is the "
                        "torch thread count a CPU run uses (a report's best-<arch>.yaml records it) (default: none)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one recipe field (repeatable)")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder (not a file); an existing run there resumes")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="data-parallel processes on this machine: one GPU each (nccl), or CPU processes (gloo); "
                        "batch_size stays the global batch")
    p.add_argument("--log-to", action="append", default=[], metavar="TRACKER[:WHERE]", dest="log_to",
                   help="also log the run to mlflow[:URI] (default file store OUT/mlruns), tensorboard[:DIR] "
                        "(default OUT/tensorboard) or wandb[:PROJECT] (default project lightrecipe, files in "
                        "WANDB_DIR or OUT); repeatable; needs the extra of that name")
    p.set_defaults(func=run_train)

    p = subparsers.add_parser("presets", help="list the recipe presets")
    p.add_argument("--show", default=None, metavar="NAME", help="print one preset as YAML (default: list them all)")
    p.set_defaults(func=run_presets)

    bench = subparsers.add_parser("bench", help="measure training throughput or inference latency")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="WHAT")  # argparse keeps the parent's class
    bench_sub.required = True
    p = bench_sub.add_parser("train", help="time training steps; prints one JSON line")
    p.add_argument("--arch", default="mobilenetv3_large_100", help="timm architecture (default mobilenetv3_large_100)")
    p.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    p.add_argument("--image-size", type=int, default=32, help="view size in pixels (default 32)")
    p.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    p.add_argument("--warmup-steps", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one recipe field (repeatable; default: the MoCo v2 settings)")
    p.set_defaults(func=run_bench)

    p = bench_sub.add_parser("latency", help="time a backbone's inference at batch 1 and a serving batch; "
                                             "prints one JSON line")
    p.add_argument("--arch", required=True, help="timm architecture")
    p.add_argument("--image-size", type=int, default=224, help="input size in pixels (default 224)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads torch may use (default: every core this process may run on)")
    p.set_defaults(func=run_latency)


def resolve_recipe(preset_name: str | None, recipe_file: str | None, overrides: list[str]) -> Fit:
    """What `train` trains: a recipe file as written (plus --set), or a preset (default: the Recipe field defaults,
    MoCo v2's) plus --set, with the queue and batch of MoCo's settings fitted to the training images (fit.py)."""
    if recipe_file is not None:
        recipe = Recipe.from_file(recipe_file)
        if preset_name is not None:
            raise UserError("give --preset or --recipe, not both (a recipe file can name its preset: 'preset: NAME')")
        return Fit(recipe.with_overrides(overrides))
    explicit = parse_assignments(overrides)
    check_field_names(explicit, "--set")
    return fit_preset(preset_name, explicit, TrainImages(), source="--set")


def use_all_cores() -> None:
    """Outside Ray, one process owns the machine: let torch use every core (Ray sets its own limits)."""
    import torch

    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))


def set_cpu_threads(recipe_file: str | None, device: str | None) -> None:
    """Every core, unless the recipe file records the thread count its result was obtained with and this run is on
    a CPU: then that count, so the file's number reproduces (recipe_text.CPU_THREADS), and one line says so."""
    import torch

    from lightrecipe.trainers.fields.recipe_text import CPU_THREADS, cpu_threads_of
    from lightrecipe.trainers.run.trainer import resolve_device
    from lightrecipe.words import counted

    threads = cpu_threads_of(recipe_file) if recipe_file is not None else None
    if threads is None or resolve_device(device).type != "cpu":
        use_all_cores()
        return
    torch.set_num_threads(threads)
    print(f"training on {counted(threads, 'CPU thread')}: {recipe_file} says its result was obtained so "
          f"('{CPU_THREADS}: {threads}'; another count gives another number; remove the line to use every core)",
          file=sys.stderr)


def run_train(args) -> int:
    fit = resolve_recipe(args.preset, args.recipe, args.overrides)  # every field checked before torch loads
    recipe = fit.recipe
    if fit.note():
        settings = f"preset '{args.preset}'" if args.preset else "the MoCo v2 settings (the field defaults)"
        print(f"{settings}: {fit.note()}", file=sys.stderr)
    chosen = trackers.parse(args.log_to)
    from lightrecipe.trainers.run.progress import EpochBar
    from lightrecipe.trainers.run.tracker_clients import TrainTrackers
    from lightrecipe.trainers.run.train import train

    out = Path(args.out).resolve()
    say_where_the_run_starts(out, recipe)
    logs = TrainTrackers(chosen, recipe, out)
    if args.nproc != 1:
        from lightrecipe.trainers.parallel.launch import check_devices
        from lightrecipe.trainers.parallel.world import check_parallel
        from lightrecipe.trainers.run.launch import launch

        check_parallel(recipe, args.nproc)  # before any process starts: a bad combination is one line, exit 2
        check_devices(args.device, args.nproc)
        with EpochBar(recipe.epochs) as bar:  # launch() splits the cores between the processes
            metrics = launch(recipe, workdir=args.out, nproc=args.nproc, device=args.device,
                             report=logs.around(bar.update))
    else:
        set_cpu_threads(args.recipe, args.device)
        with EpochBar(recipe.epochs) as bar:
            metrics = train(recipe, workdir=args.out, device=args.device, report=logs.around(bar.update))
    logs.end(metrics)
    summary = {k: metrics.get(k) for k in METRIC_KEYS}
    print(json.dumps(summary))
    if metrics.get("state") == DIVERGED:
        print(f"lightrecipe: run diverged: {metrics.get('error')}", file=sys.stderr)
        return 1
    print(f"run folder: {out}", file=sys.stderr)
    return 0


def say_where_the_run_starts(out: str | Path, recipe: Recipe) -> None:
    """One line when the folder already holds this run: finished (metrics are printed again) or resumable.
    A folder holding another recipe's run is refused first, so that its one-line error is all that is printed."""
    from lightrecipe.trainers.run.run_files import CHECKPOINT_FILE, RunFiles

    files = RunFiles(out)  # as typed: its errors name the folder as the user gave it
    files.check_recipe(recipe)
    if files.finished_metrics() is not None:
        print(f"already finished: {files.dir} holds this run's metrics; printing them again", file=sys.stderr)
    elif (files.dir / CHECKPOINT_FILE).exists():
        print(f"resuming from the checkpoint in {files.dir}", file=sys.stderr)


def run_presets(args) -> int:
    if args.show:
        print(preset(args.show).to_yaml(), end="")
        return 0
    width = max(len(n) for n in list_presets())
    for name in list_presets():
        print(f"{name:<{width}}  {preset_description(name)}")
    return 0


def run_bench(args) -> int:
    from lightrecipe.trainers.bench import bench_train

    use_all_cores()
    result = bench_train(
        arch=args.arch, batch_size=args.batch_size, image_size=args.image_size, steps=args.steps,
        warmup_steps=args.warmup_steps, device=args.device, overrides=args.overrides,
    )
    print(json.dumps(result))
    return 0


def run_latency(args) -> int:
    from lightrecipe.trainers.latency import measure

    print(json.dumps(measure(args.arch, image_size=args.image_size, device=args.device, threads=args.threads)))
    return 0
