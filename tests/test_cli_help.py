"""Every subcommand and option says what it does and, where it has one, its default."""

from __future__ import annotations

import argparse
import re

import pytest

from lightrecipe.cli import build_parser, main


def _parsers(parser: argparse.ArgumentParser, path: str = "lightrecipe"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {choice.dest for choice in action._choices_actions}
            for name, sub in action.choices.items():
                assert name in helped, f"`{path} {name}` has no help line"
                yield from _parsers(sub, f"{path} {name}")


def _options():
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if action.option_strings and action.dest not in ("help", "version"):
                yield pytest.param(action, id=f"{path} {action.option_strings[0]}")


@pytest.mark.parametrize("action", list(_options()))
def test_every_option_has_help_naming_its_default(action):
    assert action.help, "no help line"
    has_default = action.default not in (None, False, True, [], argparse.SUPPRESS) and not action.required
    if has_default:
        assert "default" in action.help, f"help does not name the default {action.default!r}: {action.help!r}"


def test_version(capsys):
    from lightrecipe import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"lightrecipe {__version__}"


@pytest.mark.parametrize("path", [path for path, _ in _parsers(build_parser())])
def test_a_bad_flag_to_any_subcommand_is_one_line_that_starts_as_every_user_error(path, capsys):
    """Whichever parser finds the mistake (a subcommand's own, for a missing required argument), the line starts
    `lightrecipe: error:` as the CLI's other user errors do, and exit code 2."""
    argv = path.split()[1:] + ["--no-such-flag"]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith("lightrecipe: error: ") and err.count("\n") == 1, err
    assert f"(see '{path} --help')" in err or "(see 'lightrecipe --help')" in err, err


@pytest.mark.parametrize("path", [path for path, _ in _parsers(build_parser())])
def test_no_example_in_a_help_epilog_runs_two_lines_into_one(path):
    """A continued example ends its line with a backslash in the printed help (two in the source); one in the source
    joins the two lines into one command with a long gap in it, its flags far off the screen."""
    parser = dict(_parsers(build_parser()))[path]
    for line in (parser.epilog or "").splitlines():
        command = re.split(r"\s{2,}#", line.strip())[0]
        assert not re.search(r"\S\s{3,}\S", command), f"{path} --help: {line.strip()!r}"
