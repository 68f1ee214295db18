"""The places where lightrecipe needs more of argparse than its documented API, kept in one small module.

`confirm` takes the sweep's cluster flags as they are (one definition, one help text, one set of checks), and
`--resume` commands are rebuilt from a parser's flags; argparse documents neither a parser's list of actions
nor adding an existing action to another parser. tests/search/test_argparse_private.py pins both.
"""

from __future__ import annotations

import argparse


def actions_of(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Every argument `parser` knows, positional and optional (its `--help` included), in the order added."""
    return list(parser._actions)


def share_action(parser: argparse.ArgumentParser, action: argparse.Action) -> None:
    """Make `parser` accept `action` (an argument of another parser) exactly as its parser does."""
    parser._add_action(action)


def is_switch(action: argparse.Action) -> bool:
    """A flag that takes no value (`store_true` / `store_false`): written as the bare flag on a command line."""
    return isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
