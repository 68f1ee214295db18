"""Pins what lightrecipe relies on in argparse beyond its documented API (search/argparse_private.py)."""

import argparse

from lightrecipe.search.argparse_private import actions_of, is_switch, share_action


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="x")
    parser.add_argument("folder")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--no-baseline", action="store_false", dest="baseline")
    return parser


def test_actions_of_lists_every_argument_in_the_order_added():
    assert [a.dest for a in actions_of(_parser())] == ["help", "folder", "seeds", "resume", "baseline"]


def test_a_shared_action_parses_in_the_other_parser_with_its_type_and_default():
    other = argparse.ArgumentParser(prog="y")
    for action in actions_of(_parser()):
        if action.dest != "help":
            share_action(other, action)
    args = other.parse_args(["f", "--seeds", "5", "--resume"])
    assert (args.folder, args.seeds, args.resume, args.baseline) == ("f", 5, True, True)
    assert other.parse_args(["g"]).seeds == 3


def test_switches_are_the_flags_without_a_value():
    switches = {a.dest for a in actions_of(_parser()) if is_switch(a)}
    assert switches == {"resume", "baseline"}
