"""lightrecipe: search MoCo-style contrastive training recipes for efficient networks and compare them with the
ResNet-50 (MoCo v2) settings.

The Python API is the names in `__all__`; everything else is private by convention. A space built in Python,
a tiny sweep on the bundled digits, its trials as a DataFrame and its report:

    import lightrecipe as lr

    space = lr.Space(
        name="my-space",
        base="digits-small",
        fixed={"epochs": 1, "batch_size": 32, "queue_size": 256, "data_fraction": 0.3},
        params={"temperature": lr.Float(0.1, 0.3), "aug_strength": lr.Choice([0.5, 1.0])},
    )
    outcomes = lr.sweep(space, archs=["mobilenetv3_small_050"], trials=2, out="runs/py-sweep")
    trials = lr.load_trials("runs/py-sweep")          # one row per trial: params, state, metrics
    report = lr.report("runs/py-sweep", out="runs/py-report")

Torch, timm, Ray and Optuna load on first use of a name that needs them, so `import lightrecipe` is quick.
"""

from __future__ import annotations

import importlib
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, TextIO

__version__ = metadata.version("lightrecipe")  # pyproject.toml is its one home

# name -> module that defines it; resolved on first use (PEP 562) so importing the package loads no torch.
_LAZY = {
    "Recipe": "lightrecipe.trainers.recipe",
    "preset": "lightrecipe.trainers.recipe",
    "train": "lightrecipe.trainers.run.train",
    "Space": "lightrecipe.spaces.space",
    "Float": "lightrecipe.spaces.params",
    "Int": "lightrecipe.spaces.params",
    "Choice": "lightrecipe.spaces.params",
    "load_space": "lightrecipe.spaces.loader",
    "SweepSettings": "lightrecipe.search.sweep",
    "load_trials": "lightrecipe.reports.tables",
    "export": "lightrecipe.trainers.export",
    "UserError": "lightrecipe.errors",
}

__all__ = [
    "Recipe",
    "preset",
    "train",
    "Space",
    "Float",
    "Int",
    "Choice",
    "load_space",
    "sweep",
    "SweepSettings",
    "load_trials",
    "report",
    "export",
    "UserError",
    "__version__",
]

if TYPE_CHECKING:
    from lightrecipe.errors import UserError
    from lightrecipe.reports.report import Report
    from lightrecipe.reports.tables import load_trials
    from lightrecipe.search.settings import StudyOutcome, SweepSettings
    from lightrecipe.spaces.loader import load_space
    from lightrecipe.spaces.params import Choice, Float, Int
    from lightrecipe.spaces.space import Space
    from lightrecipe.trainers.export import export
    from lightrecipe.trainers.recipe import preset
    from lightrecipe.trainers.recipe import Recipe
    from lightrecipe.trainers.run.train import train


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'lightrecipe' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def sweep(space: Any, *, archs: Sequence[str], trials: int, out: str | Path, stream: TextIO | None = None,
          **settings: Any) -> list[StudyOutcome]:
    """Run `lightrecipe sweep` from Python: one Optuna study per arch, recorded in OUT's trial database.

    `space` is a `Space`, a built-in space name or a YAML path; `settings` are the other fields of
    `SweepSettings` (epochs, grace_epochs, overrides, concurrency, cpus_per_trial, gpus_per_trial, address,
    storage, seed, time_budget, resume, baseline, max_failures, startup_trials, warm_start, warm_top), with the
    CLI's defaults; `warm_start="runs/mnv3:mobilenetv3_small_050"` starts each study from that study's top
    `warm_top` recipes, as `--warm-start` does.
    Returns one `StudyOutcome` per study; progress goes to `stream` (default stdout)."""
    from lightrecipe.search.settings import SweepSettings
    from lightrecipe.search.sweep import run_sweep

    s = SweepSettings(space=space, archs=tuple(archs), trials=trials, out=Path(out), **settings)
    return run_sweep(s, stream=stream if stream is not None else sys.stdout)


def report(sources: str | Path | Sequence[str | Path], out: str | Path, *, metric: str = "knn_top1") -> Report:
    """Write the report of one or more sweep folders or trial-database URLs to the folder `out`: report.html,
    report.md, trials.csv, the figures and best-<arch>.yaml per arch."""
    from lightrecipe.reports.build import build_report

    sources = [str(sources)] if isinstance(sources, (str, Path)) else [str(s) for s in sources]
    return build_report(sources, out, metric=metric)
