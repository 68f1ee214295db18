"""What a confirm run is asked to do, and its defaults: light (no Ray, no Optuna), so that building the
command-line parser stays quick."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lightrecipe.search.settings import SweepSettings

DEFAULT_TOP = 3  # K: enough to see whether the short-schedule order holds, cheap enough to run
DEFAULT_SEEDS = 3  # the fewest seeds that give a t-interval with finite width and a usable mean
EPOCHS_FACTOR = 3  # default schedule: 3x the sweep's, a 3-4x longer schedule than the search's


@dataclass(frozen=True)
class ConfirmSettings:
    sweep_dir: Path
    run: SweepSettings  # the sweep's cluster settings (address, storage, concurrency, resources, resume, ...)
    top: int = DEFAULT_TOP
    seeds: int = DEFAULT_SEEDS
    epochs: int | None = None  # None: EPOCHS_FACTOR x the source study's epochs
    archs: tuple[str, ...] = ()  # empty: every arch study of the sweep
