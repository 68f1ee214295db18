"""`lightrecipe export RUN_DIR --out DIR`: the command; the work is in export.py."""

from __future__ import annotations


def register(subparsers) -> None:
    """Add `lightrecipe export` to the `lightrecipe` parser."""
    p = subparsers.add_parser(
        "export",
        help="write a run's trained backbone as timm loads it (model.safetensors, config.json, recipe, metrics, "
             "history)",
        description="Export the query backbone of a run folder (its last checkpoint) with timm's own key names; "
        "load it, with the recipe's input size, interpolation, mean/std and crop, by "
        "timm.create_model('local-dir:DIR', pretrained=True).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (lightrecipe train --out, or a sweep's trial folder)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the exported files (created if missing)")
    p.set_defaults(func=_cmd_export)


def _cmd_export(args) -> int:
    from lightrecipe.trainers.export import export  # torch loads here, not when the parser is built

    paths = export(args.run_dir, args.out)
    for path in paths.values():
        print(path)
    return 0
