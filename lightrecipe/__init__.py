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

# Imported under private names: `dir(lightrecipe)` and tab completion show the promised names only.
import importlib as _importlib
import sys as _sys
from importlib import metadata as _metadata
from pathlib import Path as _Path
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any
from typing import Sequence as _Sequence
from typing import TextIO as _TextIO

__version__ = _metadata.version("lightrecipe")  # pyproject.toml is its one home

# name -> module that defines it; resolved on first use (PEP 562) so importing the package loads no torch.
_LAZY = {
    "Recipe": "lightrecipe.trainers.recipe",
    "preset": "lightrecipe.trainers.recipe",
    "list_presets": "lightrecipe.trainers.presets",
    "train": "lightrecipe.trainers.run.train",
    "Space": "lightrecipe.spaces.space",
    "Float": "lightrecipe.spaces.params",
    "Int": "lightrecipe.spaces.params",
    "Choice": "lightrecipe.spaces.params",
    "load_space": "lightrecipe.spaces.loader",
    "list_spaces": "lightrecipe.spaces.loader",
    "StudyOutcome": "lightrecipe.search.settings",
    "load_trials": "lightrecipe.reports.tables",
    "Report": "lightrecipe.reports.report",
    "export": "lightrecipe.trainers.export",
    "UserError": "lightrecipe.errors",
}

# The promise, in the order of the workflow: a recipe, a space, a sweep, confirm, the report, export.
__all__ = [
    "Recipe",
    "preset",
    "list_presets",
    "train",
    "Space",
    "Float",
    "Int",
    "Choice",
    "load_space",
    "list_spaces",
    "sweep",
    "confirm",
    "StudyOutcome",
    "load_trials",
    "report",
    "Report",
    "export",
    "UserError",
    "__version__",
]

if _TYPE_CHECKING:
    from lightrecipe.errors import UserError
    from lightrecipe.reports.report import Report
    from lightrecipe.reports.tables import load_trials
    from lightrecipe.search.settings import StudyOutcome
    from lightrecipe.spaces.loader import list_spaces, load_space
    from lightrecipe.spaces.params import Choice, Float, Int
    from lightrecipe.spaces.space import Space
    from lightrecipe.trainers.export import export
    from lightrecipe.trainers.presets import list_presets
    from lightrecipe.trainers.recipe import Recipe, preset
    from lightrecipe.trainers.run.train import train


def __getattr__(name: str) -> _Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'lightrecipe' has no attribute {name!r}")
    value = getattr(_importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def sweep(space: _Any, *, archs: _Sequence[str], trials: int, out: str | _Path, stream: _TextIO | None = None,
          **settings: _Any) -> list[StudyOutcome]:
    """Run `lightrecipe sweep` from Python: one Optuna study per arch, recorded in OUT's trial database.

    `space` is a `Space`, a built-in space name or a YAML path; `settings` are the other fields of
    `SweepSettings` (epochs, grace_epochs, overrides, concurrency, cpus_per_trial, gpus_per_trial, address,
    storage, seed, time_budget, resume, baseline, max_failures, startup_trials, warm_start, warm_top), with the
    CLI's defaults; `warm_start="runs/mnv3:mobilenetv3_small_050"` starts each study from that study's top
    `warm_top` recipes, as `--warm-start` does.
    Returns one `StudyOutcome` per study; progress goes to `stream` (default stdout)."""
    from lightrecipe.search.settings import SweepSettings
    from lightrecipe.search.sweep import run_sweep

    settings = SweepSettings(space=space, archs=tuple(archs), trials=trials, out=_Path(out), **settings)
    return run_sweep(settings, stream=stream if stream is not None else _sys.stdout)


def confirm(sweep_dir: str | _Path, *, top: int | None = None, seeds: int | None = None, epochs: int | None = None,
            archs: _Sequence[str] = (), stream: _TextIO | None = None, **settings: _Any) -> list[StudyOutcome]:
    """Run `lightrecipe confirm` from Python: re-train the sweep's `top` recipes per arch and the ResNet-50
    settings with `seeds` seeds at `epochs` epochs, as studies of their own in the sweep's trial database;
    `lr.report(sweep_dir, ...)` then shows whether the ranking holds up. A value left None takes the command's
    default (`lightrecipe confirm --help`: top 3, 3 seeds, 3x the sweep's epochs).

    `settings` are where and how the runs go, as for `sweep` (concurrency, cpus_per_trial, gpus_per_trial,
    workers_per_trial, address, storage, time_budget, resume, max_failures). Returns one `StudyOutcome` per
    confirm study."""
    from lightrecipe.search.confirm.run import run_confirm
    from lightrecipe.search.confirm.settings import ConfirmSettings
    from lightrecipe.search.settings import SweepSettings

    run = SweepSettings(space="confirm", archs=tuple(archs), trials=1, out=_Path(sweep_dir), **settings)
    given = {name: value for name, value in (("top", top), ("seeds", seeds)) if value is not None}
    request = ConfirmSettings(sweep_dir=_Path(sweep_dir), run=run, epochs=epochs, archs=tuple(archs), **given)
    return run_confirm(request, stream=stream if stream is not None else _sys.stdout)


def report(sources: str | _Path | _Sequence[str | _Path], out: str | _Path, *, metric: str = "knn_top1") -> Report:
    """Write the report of one or more sweep folders or trial-database URLs to the folder `out`: report.html,
    report.md, trials.csv, the figures and best-<arch>.yaml per arch."""
    from lightrecipe.reports.build import build_report

    sources = [str(sources)] if isinstance(sources, (str, _Path)) else [str(source) for source in sources]
    return build_report(sources, out, metric=metric)
