"""best-<arch>.yaml: the best recipe of each arch as a file `lightrecipe train --recipe` accepts as is."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from lightrecipe.errors import UserError
from lightrecipe.reports import tables
from lightrecipe.trainers.recipe import FIELD_NAMES, Recipe, field_types


def write_best_recipes(trials: pd.DataFrame, metric: str, out: Path, notes: list[str]) -> dict[str, Path]:
    """Arch -> the file written in `out`; an arch whose best trial has no valid recipe gets a note instead."""
    written: dict[str, Path] = {}
    for arch, row in tables.best_trials(trials, metric).iterrows():
        data = _recipe_from_row(row)
        if data is None:
            notes.append(f"best-{arch}.yaml not written: trial {row.study} #{row.number} recorded no full recipe")
            continue
        try:
            recipe = Recipe.from_dict(data, source=f"trial {row.study} #{row.number}")
        except UserError as exc:
            notes.append(f"best-{arch}.yaml not written: {exc}")
            continue
        one_line = lambda s: str(s).replace("\n", " ")  # noqa: E731
        header = (
            f"# Best recipe for {one_line(arch)}: val {metric} {float(row[metric]):.4f}\n"
            f"# trial #{int(row.number)} of study '{one_line(row.study)}' in {one_line(row.source)}\n"
            f"# Train it: lightrecipe train --recipe best-{safe_name(arch)}.yaml\n"
        )
        path = out / f"best-{safe_name(arch)}.yaml"
        path.write_text(header + recipe.to_yaml(), encoding="utf-8")
        written[str(arch)] = path
    return written


def _recipe_from_row(row: pd.Series) -> dict[str, Any] | None:
    """The trial's resolved recipe with each field's own type (a CSV-like frame turns ints into floats)."""
    types = field_types()
    out: dict[str, Any] = {}
    for name in FIELD_NAMES:
        value = row.get(f"recipe_{name}")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        kind = types[name]
        if kind is bool:
            value = bool(value)
        elif kind is int:
            value = int(value)
        elif kind is float:
            value = float(value)
        else:
            value = str(value)
        out[name] = value
    return out


def safe_name(text: str) -> str:
    """A file-name-safe form of an arch name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or "arch"
