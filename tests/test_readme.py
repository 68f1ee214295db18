"""The README's `$ lightrecipe ...` examples, run as written, print what the README says they print.

Each indented block of the README is read; a line starting with `$ lightrecipe` is a command, the lines after
it (up to the next `$`) are its output as the README shows it, which must appear in the real output in that
order and contiguously (the README may show only part, e.g. only the table of `spaces show`). The YAML block
that defines `my-space.yaml` is written to that file first, as a reader would. Commands run in a scratch folder.
Every other `lightrecipe` command of the README's blocks (CIFAR trainings and sweeps, caches, cluster sweeps) runs
in tests/test_readme_blocks.py, which fails on a command no test runs (`make demo`'s job too, in the README's hold-up study); the
Python section in tests/test_front_door.py.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from lightrecipe.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(text: str) -> list[list[str]]:
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith("    ") or (current and not line.strip()):
            current.append(line[4:])
        elif current:
            blocks.append(current)
            current = []
    return [[line.rstrip() for line in b] for b in blocks + ([current] if current else [])]


def _examples() -> list[tuple[str, list[str]]]:
    examples = []
    for block in _blocks(README.read_text()):
        for i, line in enumerate(block):
            if line.startswith("$ lightrecipe "):
                output = []
                for after in block[i + 1:]:
                    if after.startswith("$ "):
                        break
                    output.append(after)
                while output and not output[-1]:
                    output.pop()
                examples.append((line[2:], output))
    return examples


def _my_space_yaml() -> str:
    block = next(b for b in _blocks(README.read_text()) if b and b[0] == "name: my-space")
    return "\n".join(block).strip() + "\n"


EXAMPLES = _examples()


def run_cli(argv: list[str]) -> tuple[int, str]:
    """`lightrecipe ARGV` through the real CLI in this process: its exit code and what it printed (stdout, then
    stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue() + err.getvalue()


def test_the_readme_has_the_examples_this_file_runs():
    commands = [command for command, _ in EXAMPLES]
    assert "lightrecipe presets" in commands and "lightrecipe spaces validate my-space.yaml" in commands
    assert len(commands) >= 8


@pytest.mark.parametrize("command,shown", EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_a_readme_example_prints_what_the_readme_shows(command, shown, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-space.yaml").write_text(_my_space_yaml())
    argv = shlex.split(re.sub(r"\s+#.*$", "", command))[1:]  # without `lightrecipe` and a trailing comment
    code, text = run_cli(argv)
    printed = text.splitlines()
    says_error = any(line.startswith("lightrecipe: error:") for line in shown)
    assert code == (2 if says_error else 0), printed
    assert any(printed[i:i + len(shown)] == shown for i in range(len(printed) - len(shown) + 1)), (
        "the README shows:\n" + "\n".join(shown) + "\n\nthe command printed:\n" + "\n".join(printed))
