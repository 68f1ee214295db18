"""Recipes as text: recipe files (YAML or JSON mappings), the CLI's `--set key=value`, and the `cpu_threads` line
a recipe file may carry beside the recipe. Reading only: the Recipe checks the values it is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lightrecipe.errors import UserError
from lightrecipe.trainers.fields.yaml_files import parse_yaml


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """['lr=0.1', 'symmetric=true'] -> {'lr': 0.1, 'symmetric': True}; values are YAML scalars."""
    out: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects key=value, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, (dict, list)):
            raise UserError(f"--set {key.strip()}: expected a single value, got {raw!r}")
        out[key.strip()] = value if value is not None else ""
    return out


def load_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML/JSON file as a dict; a missing or malformed file is a UserError naming it."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"recipe file '{p}' does not exist")
    data = parse_yaml(p.read_text(), f"recipe file '{p}'")
    if not isinstance(data, dict):
        raise UserError(f"recipe file '{p}' must hold a mapping of recipe fields, got {type(data).__name__}")
    return data


# A recipe file may say, beside the recipe, how many torch CPU threads its result was obtained with (a report's
# best-<arch>.yaml does): the thread count sets the order of CPU reductions, so a CPU result is bit-identical
# only at that count. Not a recipe field: it is where a number came from, not how to train; `lightrecipe train
# --recipe` applies it to a CPU run so that the file's number reproduces.
CPU_THREADS = "cpu_threads"


def cpu_threads_of(path: str | Path) -> int | None:
    """The recipe file's `cpu_threads` (CPU_THREADS), or None when it records none."""
    return checked_cpu_threads(load_mapping(path).get(CPU_THREADS), path)


def checked_cpu_threads(value: Any, path: str | Path) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise UserError(f"recipe file '{path}': '{CPU_THREADS}' is {value!r}; valid: a whole number of torch CPU "
                        "threads, 1 or more (or no such line: every core)")
    return value
