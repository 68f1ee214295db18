"""The files of one training run: recipe.json, history.csv, metrics.json and checkpoint.pt.

Checkpoints carry their own recipe, and every write goes to a temporary file that is renamed into place,
so a run killed at any instant leaves either the previous file or the new one, never half of one.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import torch

from lightrecipe.errors import UserError
from lightrecipe.plain_json import jsonable
from lightrecipe.trainers.recipe import Recipe
from lightrecipe.trainers.run.outcome import COMPLETE, DIVERGED

RECIPE_FILE = "recipe.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "checkpoint.pt"


def read_history(run_dir: str | Path) -> list[dict[str, str]]:
    """history.csv's rows as written (text), every attempt's epochs; [] when there is none or `run_dir` cannot
    be read as a folder (a reader that must not fail, such as a sweep trial reporting what it has)."""
    try:
        with (Path(run_dir) / HISTORY_FILE).open(newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


class RunFiles:
    def __init__(self, workdir: str | Path):
        self.dir = Path(workdir).resolve()
        self.shown = str(workdir)  # as the user typed it (--out), for messages
        if self.dir.exists() and not self.dir.is_dir():
            raise UserError(f"run folder '{self.shown}' is a file, not a folder; give a new folder to start a run "
                            "or an existing run folder to resume it")

    def check_recipe(self, recipe: Recipe) -> None:
        """Refuse a folder that holds another recipe's run (resuming it would mix two recipes)."""
        existing = self.dir / RECIPE_FILE
        if existing.exists():
            try:
                previous = json.loads(existing.read_text())
            except json.JSONDecodeError:
                previous = None
            if previous is not None and previous != recipe.to_dict():
                changed = sorted(k for k in recipe.to_dict() if previous.get(k) != getattr(recipe, k))
                raise UserError(
                    f"run folder '{self.shown}' holds a run of a different recipe (differs in: {', '.join(changed)}); "
                    "give a new folder to start a new run"
                )

    def prepare(self, recipe: Recipe) -> None:
        """Create the folder and write recipe.json."""
        self.check_recipe(recipe)
        self.dir.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(self.dir / RECIPE_FILE, recipe.to_json() + "\n")

    def finished_metrics(self) -> dict[str, Any] | None:
        """The metrics of a run that already ended (complete or diverged), else None."""
        path = self.dir / METRICS_FILE
        if not path.exists():
            return None
        metrics = json.loads(path.read_text())
        return metrics if metrics.get("state") in (COMPLETE, DIVERGED) else None

    def write_history(self, history: list[dict[str, Any]]) -> None:
        if not history:
            return
        columns = list(dict.fromkeys(key for row in history for key in row))  # a resumed older run may lack some
        tmp = self.dir / (HISTORY_FILE + ".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(history)
        os.replace(tmp, self.dir / HISTORY_FILE)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        _atomic_write_text(self.dir / METRICS_FILE, json.dumps(jsonable(metrics), indent=2, sort_keys=True) + "\n")

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        tmp = self.dir / (CHECKPOINT_FILE + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.dir / CHECKPOINT_FILE)

    def load_checkpoint(self) -> dict[str, Any] | None:
        path = self.dir / CHECKPOINT_FILE
        if not path.exists():
            return None
        # weights_only: a checkpoint holds tensors, numbers, strings and dicts; nothing executable.
        return torch.load(path, map_location="cpu", weights_only=True)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
