"""`lightrecipe spaces list | show NAME|FILE | validate FILE`."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add `spaces` and its sub-subcommands to the `lightrecipe` parser."""
    parser = subparsers.add_parser(
        "spaces", help="list, show and validate search spaces", description="Search spaces: list, show, validate."
    )
    sub = parser.add_subparsers(dest="spaces_command", metavar="SPACES_COMMAND", parser_class=type(parser))
    sub.required = True

    p = sub.add_parser("list", help="the built-in spaces")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="a space's YAML and a table of its parameters")
    p.add_argument("space", metavar="NAME|FILE", help="a built-in space name or a YAML file")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("validate", help="check a space file before a sweep uses it")
    p.add_argument("space", metavar="FILE", help="a YAML file (or a built-in name)")
    p.set_defaults(func=cmd_validate)


def cmd_list(args: argparse.Namespace) -> int:
    from lightrecipe.spaces import list_spaces, load_space

    spaces = [load_space(name) for name in list_spaces()]
    width = max(len(s.name) for s in spaces)
    print(f"{'name':<{width}}  params  description")
    for space in spaces:
        print(f"{space.name:<{width}}  {len(space.params):>6}  {space.description}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from lightrecipe.spaces.loader import load_space, space_text

    space = load_space(args.space)  # validates first: no table of a broken space
    text, _ = space_text(args.space)
    print(text.rstrip("\n"))
    print()
    print(param_table(space))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    import sys

    from lightrecipe.errors import UserError
    from lightrecipe.spaces import load_space
    from lightrecipe.words import counted

    space = load_space(args.space)
    print(f"ok: {space.name}, {counted(len(space.params), 'param')}")
    try:
        space.baseline_params()
    except UserError as exc:
        sys.stderr.write(f"note: the baseline trial cannot be enqueued: {exc}\n")
    return 0


def param_table(space) -> str:
    """Rows of parameter, kind, range or choices, log, condition; plain text, aligned."""
    from lightrecipe.spaces.params import Choice, yaml_value

    rows = [("param", "kind", "range", "log", "when")]
    for name, spec in space.params.items():
        if isinstance(spec, Choice):
            span = ", ".join(yaml_value(v) for v in spec.values)
            log = "-"
        else:
            span = f"{yaml_value(spec.low)} .. {yaml_value(spec.high)}"
            log = "yes" if spec.log else "no"
        when = "; ".join(f"{k} in {{{', '.join(yaml_value(v) for v in vals)}}}" for k, vals in spec.when.items())
        rows.append((name, spec.kind(), span, log, when or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
