"""`import lightrecipe as lr`: the promised names, a quick import, and the example the docstring and README show."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lightrecipe as lr

README = Path(__file__).resolve().parents[1] / "README.md"
PROMISED = ["Recipe", "preset", "list_presets", "train", "Space", "Float", "Int", "Choice", "load_space", "list_spaces",
            "sweep", "confirm", "StudyOutcome", "load_trials", "report", "Report", "export", "UserError", "__version__"]


def test_the_promised_names_and_nothing_else():
    assert lr.__all__ == PROMISED
    for name in PROMISED:
        assert getattr(lr, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'run_sweep'"):
        lr.run_sweep  # noqa: B018 internal names stay internal


def test_dir_shows_the_promise_and_no_leaked_import():
    assert dir(lr) == sorted(PROMISED)
    assert len(lr.__all__) <= 25


def test_presets_and_spaces_can_be_listed_from_python():
    from lightrecipe.spaces import load_space

    assert "resnet50-mocov2" in lr.list_presets() and "digits-small" in lr.list_presets()
    assert "paper-efficient" in lr.list_spaces()
    assert [load_space(name).name for name in lr.list_spaces()] == lr.list_spaces()


def test_confirm_from_python_checks_its_folder_before_anything_runs(tmp_path):
    with pytest.raises(lr.UserError, match="is not a folder"):
        lr.confirm(tmp_path / "no-such-sweep")
    with pytest.raises(lr.UserError, match="--seeds must be at least 2"):
        lr.confirm(tmp_path, seeds=1)


def test_front_door_names_are_the_parts_own_objects():
    from lightrecipe.spaces.params import Float
    from lightrecipe.trainers.recipe import Recipe

    assert lr.Recipe is Recipe and lr.Float is Float
    assert lr.preset("digits-small").arch == "mobilenetv3_small_050"


@pytest.mark.slow
def test_import_loads_no_torch():
    code = "import sys, lightrecipe; print(sorted(m for m in ('torch', 'timm', 'ray', 'optuna') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _docstring_example() -> str:
    doc = lr.__doc__
    start = doc.index("    import lightrecipe as lr")
    return textwrap.dedent(doc[start:doc.index("\n\n", doc.index("lr.report", start))])


def _readme_python_block() -> str:
    section = README.read_text().split("### 7. Python", 1)[1]
    return textwrap.dedent(re.search(r"\n((?:    .*\n)(?:    .*\n|\n)*)", section).group(1)).strip()


def test_the_readme_shows_the_docstring_example():
    assert _readme_python_block() == _docstring_example().strip()


@pytest.mark.slow
def test_the_example_runs(ray_local, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the example writes to relative paths, as a user's notebook would
    scope: dict = {}
    exec(compile(_docstring_example(), "lightrecipe.__doc__", "exec"), scope)
    outcome = scope["outcomes"][0]
    assert (outcome.arch, outcome.finished, outcome.trials) == ("mobilenetv3_small_050", 2, 2)
    trials = scope["trials"]
    assert len(trials) == 2 and set(trials["state"]) == {"complete"}
    assert trials["recipe_temperature"].between(0.1, 0.3).all() and trials["baseline"].sum() == 1
    assert set(trials["recipe_epochs"]) == {1}  # the space's fixed part reached every trial
    assert scope["report"].html.is_file() and (tmp_path / "runs/py-report/report.html").is_file()


@pytest.mark.slow
def test_listing_validating_and_user_errors_load_no_torch(tmp_path):
    """The quick commands answer in about a second because nothing heavy is imported for them."""
    commands = [["presets"], ["spaces", "list"], ["spaces", "validate", "paper-efficient"],
                ["train", "--set", "optimizer=adam", "--out", str(tmp_path / "run")],
                ["sweep", "--space", "nope", "--arch", "resnet18", "--trials", "2", "--out", str(tmp_path / "s")],
                ["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]]
    code = ("import contextlib, io, sys\nfrom lightrecipe.cli import main\n"
            f"for argv in {commands!r}:\n"
            "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
            "        rc = main(argv)\n"
            "    print(argv[0], rc, sorted(m for m in ('torch', 'timm', 'ray') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["presets 0 []", "spaces 0 []", "spaces 0 []", "train 2 []", "sweep 2 []", "report 2 []"]
