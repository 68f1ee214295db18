"""CLI: `lightrecipe train`, `lightrecipe presets`, `lightrecipe bench train`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from lightrecipe.errors import UserError
from lightrecipe.trainers.presets import preset, preset_description, preset_names
from lightrecipe.trainers.fit import Fit, TrainImages, fit_preset
from lightrecipe.trainers.recipe import Recipe, check_field_names, parse_assignments

METRIC_KEYS = ("knn_top1", "linear_top1", "test_knn_top1", "test_linear_top1", "params", "state")


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train one recipe and print its metrics")
    p.add_argument("--preset", default=None, help=f"starting recipe: {', '.join(preset_names())} (default: the MoCo v2 ResNet-50 settings); "
                        "MoCo's queue and batch are fitted to the training images unless --set gives them")
    p.add_argument("--recipe", default=None, metavar="FILE.yaml",
                   help="recipe file: a full recipe, or `preset: NAME` plus fields (default: none)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one recipe field (repeatable)")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder (not a file); an existing run there resumes")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="data-parallel processes on this machine: one GPU each (nccl), or CPU processes (gloo); "
                        "batch_size stays the global batch")
    p.set_defaults(func=run_train)

    p = subparsers.add_parser("presets", help="list the recipe presets")
    p.add_argument("--show", default=None, metavar="NAME", help="print one preset as YAML (default: list them all)")
    p.set_defaults(func=run_presets)

    bench = subparsers.add_parser("bench", help="measure training throughput")
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


def run_train(args) -> int:
    fit = resolve_recipe(args.preset, args.recipe, args.overrides)  # every field checked before torch loads
    recipe = fit.recipe
    if fit.note():
        settings = f"preset '{args.preset}'" if args.preset else "the MoCo v2 settings (the field defaults)"
        print(f"{settings}: {fit.note()}", file=sys.stderr)
    from lightrecipe.trainers.progress import EpochBar
    from lightrecipe.trainers.train import train

    out = Path(args.out).resolve()
    say_where_the_run_starts(out)
    if args.nproc != 1:
        from lightrecipe.trainers.distributed import check_devices, check_parallel, launch

        check_parallel(recipe, args.nproc)  # before any process starts: a bad combination is one line, exit 2
        check_devices(args.device, args.nproc)
        with EpochBar(recipe.epochs) as bar:  # launch() splits the cores between the processes
            metrics = launch(recipe, workdir=args.out, nproc=args.nproc, device=args.device, report=bar.update)
    else:
        use_all_cores()
        with EpochBar(recipe.epochs) as bar:
            metrics = train(recipe, workdir=args.out, device=args.device, report=bar.update)
    summary = {k: metrics.get(k) for k in METRIC_KEYS}
    print(json.dumps(summary))
    if metrics.get("state") == "diverged":
        print(f"lightrecipe: run diverged: {metrics.get('error')}", file=sys.stderr)
        return 1
    print(f"run folder: {out}", file=sys.stderr)
    return 0


def say_where_the_run_starts(out: Path) -> None:
    """One line when the folder already holds this run: finished (metrics are printed again) or resumable."""
    from lightrecipe.trainers.run_files import CHECKPOINT_FILE, RunFiles

    if RunFiles(out).finished_metrics() is not None:
        print(f"already finished: {out} holds this run's metrics; printing them again", file=sys.stderr)
    elif (out / CHECKPOINT_FILE).exists():
        print(f"resuming from the checkpoint in {out}", file=sys.stderr)


def run_presets(args) -> int:
    if args.show:
        print(preset(args.show).to_yaml(), end="")
        return 0
    width = max(len(n) for n in preset_names())
    for name in preset_names():
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
