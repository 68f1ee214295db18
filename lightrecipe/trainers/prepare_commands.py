"""`lightrecipe prepare SRC --out CACHE --size S`: the command; the work is in data/prepare.py."""

from __future__ import annotations


def register(subparsers) -> None:
    """Add `lightrecipe prepare` to the `lightrecipe` parser."""
    p = subparsers.add_parser(
        "prepare",
        help="decode an image folder or tree once into a cache that data_root can name (fast loading for sweeps)",
        description="Decode every image of SRC once, its shorter side resized to S, into CACHE (uint8, read "
        "memory-mapped). Give CACHE as data_root (or eval_root) instead of SRC; crops are drawn as from the files.",
    )
    p.add_argument("src", metavar="SRC", help="an ImageNet-layout folder (train/<class>/, val/<class>/) or any tree "
                   "of jpg/jpeg/png/webp images")
    p.add_argument("--out", required=True, metavar="CACHE", help="cache folder (written beside, renamed into place)")
    p.add_argument("--size", required=True, type=int, metavar="S",
                   help="shorter side in pixels; at least the recipes' image_size, e.g. image_size / 0.875 so "
                   "evaluation views are not upsampled (256 for 224, 146 for 128, 73 for 64)")
    p.add_argument("--kind", choices=("imagefolder", "unlabeled"), default=None,
                   help="what SRC is (default: imagefolder when SRC has train/ and val/, else unlabeled)")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="decoding processes (default: one per core)")
    p.set_defaults(func=_cmd_prepare)


def _cmd_prepare(args) -> int:
    import sys

    from lightrecipe.trainers.data.prepare import prepare

    prepare(args.src, args.out, args.size, kind=args.kind, workers=args.workers,
            say=lambda line: print(line, file=sys.stderr))
    return 0
