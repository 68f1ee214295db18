"""best-<arch>.yaml: the best recipe of each arch as a file `lightrecipe train --recipe` accepts as is."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from lightrecipe.errors import UserError
from lightrecipe.reports import selections
from lightrecipe.reports.text import one_line
from lightrecipe.search.store import records
from lightrecipe.trainers.fields.recipe_text import CPU_THREADS
from lightrecipe.trainers.recipe import FIELD_NAMES, Recipe, field_types
from lightrecipe.words import counted


def write_best_recipes(trials: pd.DataFrame, metric: str, out: Path, notes: list[str],
                       confirmed: dict[str, tuple[pd.Series, str]] | None = None) -> dict[str, Path]:
    """Arch -> the file written in `out`; an arch whose best trial has no valid recipe gets a note instead.
    `confirmed` (arch -> (a confirm trial row of the winning recipe, how it was confirmed)) replaces the
    sweep's best trial of that arch: a recipe that held up over seeds and a longer schedule wins over a
    single short run, and its file says so in a comment.

    Arch and study names come from the database as they are: the file name keeps only safe characters
    (never a path), two archs that reduce to the same name get distinct files, and the comment lines say
    each name on one line."""
    written: dict[str, Path] = {}
    taken: set[str] = set()
    confirmed = confirmed or {}
    best = selections.best_trials(trials, metric)
    for arch in sorted(set(best.index) | set(confirmed)):
        row, how = confirmed[arch] if arch in confirmed else (best.loc[arch], "")
        data = _recipe_from_row(row)
        if data is None:
            notes.append(f"best-{arch}.yaml not written: trial {row.study} #{row.number} recorded no full recipe")
            continue
        try:
            recipe = Recipe.from_dict(data, source=f"trial {row.study} #{row.number}")
        except UserError as exc:
            notes.append(f"best-{arch}.yaml not written: {exc}")
            continue
        name = _unique(f"best-{safe_name(arch)}", taken) + ".yaml"
        header = (
            f"# Best recipe for {one_line(arch)}{_which(row)}: val {metric} {float(row[metric]):.4f}"
            + (f" (seed {int(row.recipe_seed)}; means over seeds in the report)\n# {one_line(how)} "
               "(lightrecipe confirm)" if how else "") + "\n"
            f"# trial #{int(row.number)} of study '{one_line(row.study)}' in {one_line(row.source)}\n"
            f"# run folder: {one_line(row.run_dir or '-')}\n"
            f"# Train it: lightrecipe train --recipe {name}\n"
        )
        threads = _cpu_threads(row)
        if threads is not None:  # the number above reproduces on a CPU only at this count (recipe_text.CPU_THREADS)
            header += (f"# Obtained on a CPU with {counted(threads, 'torch thread')}: `lightrecipe train --recipe` on a "
                       f"CPU trains with\n# {CPU_THREADS} below, since another count gives another number\n"
                       f"{CPU_THREADS}: {threads}\n")
        path = out / name
        path.write_text(header + recipe.to_yaml(), encoding="utf-8")
        written[str(arch)] = path
    return written


def _which(row: pd.Series) -> str:
    """', the ResNet-50 settings (queue 128, batch 64: fitted to 1078 training images)' when the best recipe is
    the baseline; ' (queue 128, batch 64: fitted to ...)' when the queue and batch of the space's base preset
    were fitted to the data (trainers/fit.py); '' otherwise. The recipe below holds the fitted values."""
    fitted = row.get("fitted")
    fitted = one_line(fitted) if isinstance(fitted, str) else ""
    if bool(row.get("baseline")) or row.get("role") == records.ROLE_RESNET50:
        return f", the {selections.baseline_name(fitted)}"
    return f" ({fitted})" if fitted else ""


def _unique(stem: str, taken: set[str]) -> str:
    """`stem`, or `stem-2`, `stem-3`, ... when an earlier arch already took it."""
    candidate, n = stem, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}"
    taken.add(candidate)
    return candidate


def _cpu_threads(row: pd.Series) -> int | None:
    """The torch thread count the trial's CPU result was obtained with (train()'s metrics), or None (a GPU or a
    data-parallel run, or a trial from before the count was recorded)."""
    try:
        value = float(row.get(CPU_THREADS))  # a number column: NaN where a trial recorded none
    except (TypeError, ValueError):
        return None
    return int(value) if math.isfinite(value) and value >= 1 else None


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
    """A file-name-safe form of an arch name: letters, digits, '.', '_' and '-' only, never starting or ending
    with '.' or '_' (so never '..' alone, a hidden file or a path)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or "arch"
