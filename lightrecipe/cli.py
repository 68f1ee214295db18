"""The `lightrecipe` command. Each part of the package registers its own subcommands; this file only
assembles them and turns user mistakes into one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import sys

from lightrecipe.errors import UserError

USAGE_ERROR = 2  # exit code for user mistakes, as argparse uses
PROG = "lightrecipe"
ERROR_PREFIX = f"{PROG}: error: "  # every user mistake's line starts so, whichever subcommand found it


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line (no usage dump) with exit code 2. The line starts as every
    other user mistake's does; the subcommand is named in the `--help` it points to."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{ERROR_PREFIX}{message} (see '{self.prog} --help')\n")
        sys.exit(USAGE_ERROR)


def build_parser() -> Parser:
    import lightrecipe
    from lightrecipe import demo
    from lightrecipe.reports import commands as report_commands
    from lightrecipe.search import commands as search_commands
    from lightrecipe.search.confirm import commands as confirm_commands
    from lightrecipe.spaces import commands as space_commands
    from lightrecipe.trainers import commands as train_commands
    from lightrecipe.trainers import export_commands, prepare_commands

    parser = Parser(
        prog=PROG,
        description="Search MoCo-style contrastive training recipes for efficient networks and compare them "
        "with the ResNet-50 settings. Start with `make demo` in a checkout (or `lightrecipe demo`): a small sweep "
        "on the bundled digits and its report.",
    )
    parser.add_argument("--version", action="version", version=f"lightrecipe {lightrecipe.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    train_commands.register(sub)
    space_commands.register(sub)
    sweep_parser = search_commands.register(sub)
    confirm_commands.register(sub, sweep_parser=sweep_parser, summary=report_commands.print_holdup)
    report_commands.register(sub)
    export_commands.register(sub)
    prepare_commands.register(sub)
    demo.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        sys.stderr.write(f"{ERROR_PREFIX}{exc}\n")
        return USAGE_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("lightrecipe: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
