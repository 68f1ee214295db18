"""`lightrecipe demo`'s arguments. The demo itself runs end to end (a real sweep on the digits folder, then its
report) in tests/test_readme_blocks.py, as the README's hold-up study runs it."""

import shlex
from pathlib import Path

import pytest

from lightrecipe.cli import build_parser, main
from lightrecipe.demo import DEMO_ARCHS, demo_archs, single_run_note


def test_arch_adds_to_the_demos_mobilenet_and_the_help_says_so(capsys):
    args = build_parser().parse_args(["demo", "--arch", "resnet10t"])
    assert demo_archs(args.arch) == (*DEMO_ARCHS, "resnet10t")  # the README: `--arch resnet10t` adds a ResNet
    args = build_parser().parse_args(["demo", "--arch", DEMO_ARCHS[0], "--arch", "resnet10t"])
    assert demo_archs(args.arch) == (*DEMO_ARCHS, "resnet10t")  # the README's measured run names both
    assert demo_archs(build_parser().parse_args(["demo"]).arch) == DEMO_ARCHS
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"an arch to search besides {DEMO_ARCHS[0]}, which the demo always searches" in help_text


def test_the_demo_says_its_trained_values_are_single_runs_and_names_a_confirm_that_parses():
    note = single_run_note(Path("demo") / "sweep")
    assert "one run of one seed" in note and "several points" in note and "floor does not" in note
    command = note.split("The estimate: ")[1].split(" (")[0]
    args = build_parser().parse_args(shlex.split(command)[1:])  # the printed command as the CLI reads it
    assert args.command == "confirm" and args.sweep_dir == Path("demo") / "sweep"
