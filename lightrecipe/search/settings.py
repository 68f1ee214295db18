"""What a sweep is asked to do (`SweepSettings`, the CLI's flags and `lr.sweep`'s arguments), its checks, and
what it plans and returns per study. Light to import: `lightrecipe sweep --help` and its user errors load no
Ray, Optuna or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightrecipe.errors import UserError
from lightrecipe.search.tune.sampler import DEFAULT_STARTUP_TRIALS
from lightrecipe.trainers.run import trackers

if TYPE_CHECKING:
    from lightrecipe.search.store.study import Census

MAX_FAILURES = 2  # Ray restarts a trial whose worker died this many times, then records it failed
DEFAULT_WARM_TOP = 3  # issue 23: a few proven recipes from the source, leaving most of the budget to TPE


@dataclass(frozen=True)
class SweepSettings:
    space: Any  # built-in space name, YAML path, or a Space built in Python
    archs: tuple[str, ...]
    trials: int  # per study, the baseline included
    out: Path
    epochs: int | None = None  # None: --set epochs, else the space's fixed epochs, else its base preset's
    grace_epochs: int | None = None  # None: a quarter of the epochs (see default_grace)
    overrides: dict[str, Any] = field(default_factory=dict)  # --set
    concurrency: int | None = None  # None: as many trials as the cluster's resources fit
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    workers_per_trial: int = 1  # >1: each trial is a Ray Train data-parallel run; cpus/gpus_per_trial per worker
    address: str | None = None
    storage: str | None = None  # SQLAlchemy URL; None: records.default_storage_url(out)
    ray_storage: str | None = None  # Tune's storage_path; None: OUT/ray
    seed: int = 0
    time_budget: float | None = None  # seconds for the whole sweep
    resume: bool = False
    baseline: bool = True
    max_failures: int = MAX_FAILURES
    startup_trials: int = DEFAULT_STARTUP_TRIALS  # random samples before TPE models the space
    warm_start: str | None = None  # SOURCE[:ARCH]: a sweep folder or database URL whose top recipes start each study
    warm_top: int = DEFAULT_WARM_TOP  # how many of the source's recipes (search/warm_start.py)
    log_to: tuple[str, ...] = ()  # --log-to: trackers every trial also writes to (trainers/run/trackers.py)


@dataclass
class StudyPlan:
    arch: str
    name: str
    overrides: dict[str, Any]
    max_epochs: int
    grace: int
    census: Census
    seed: int
    params_count: int
    baseline_note: str = ""  # what fitting changed in the ResNet-50 baseline (trainers/fit.py), "" when nothing


@dataclass
class StudyOutcome:
    name: str
    arch: str
    counts: dict[str, int]  # records state -> trials
    finished: int
    trials: int
    best: tuple[int, float] | None  # (trial number, objective)
    baseline: tuple[int, float | None] | None  # (trial number, objective or None)
    unfinished: int = 0  # trials left RUNNING (time budget); `--resume` runs them
    # The most common reason among the trials that failed, diverged or collapsed, and how many trials gave it;
    # what a study in which no trial completed says about itself (commands.no_trial_completed).
    failure: tuple[str, int] | None = None
    baseline_note: str = ""  # the baseline's fitted queue and batch (trainers/fit.py), "" when nothing changed


def default_grace(epochs: int) -> int:
    """ASHA's first rung: a quarter of the schedule. A kNN monitor after one epoch of contrastive training
    ranks recipes poorly (warm-up, queue still filling), so the first cut waits a little."""
    return max(1, epochs // 4)


def check_settings(settings: SweepSettings) -> None:
    if not settings.archs:
        raise UserError("--arch is required (one or more timm names, e.g. --arch mobilenetv3_large_100)")
    if len(set(settings.archs)) != len(settings.archs):
        raise UserError(f"--arch lists a name twice: {', '.join(settings.archs)}")
    if settings.trials < 1:
        raise UserError(f"--trials must be at least 1, got {settings.trials}")
    if settings.epochs is not None and settings.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {settings.epochs}")
    if settings.grace_epochs is not None and settings.grace_epochs < 1:
        raise UserError(f"--grace-epochs must be at least 1, got {settings.grace_epochs}")
    if settings.concurrency is not None and settings.concurrency < 1:
        raise UserError(f"--concurrency must be at least 1, got {settings.concurrency}")
    if not settings.cpus_per_trial > 0:
        raise UserError(f"--cpus-per-trial must be above 0, got {settings.cpus_per_trial:g}")
    if settings.gpus_per_trial < 0:
        raise UserError(f"--gpus-per-trial must be 0 or more (fractions share a GPU), got {settings.gpus_per_trial:g}")
    if settings.gpus_per_trial > 1:  # a trial trains on one device; reserving more would leave them idle
        raise UserError(
            f"--gpus-per-trial {settings.gpus_per_trial:g}: a trial trains on one GPU; valid: 0 to 1 (fractions share a GPU)"
        )
    if settings.workers_per_trial < 1:
        raise UserError(f"--workers-per-trial must be at least 1, got {settings.workers_per_trial}")
    if settings.workers_per_trial > 1 and 0 < settings.gpus_per_trial < 1:
        raise UserError(f"--gpus-per-trial {settings.gpus_per_trial:g} with --workers-per-trial "
                        f"{settings.workers_per_trial}: data-parallel workers need a GPU each (two on one GPU break "
                        "NCCL); valid: --gpus-per-trial 1, or 0 on CPUs")
    if settings.time_budget is not None and not settings.time_budget > 0:
        raise UserError(f"--time-budget must be a positive number of seconds, got {settings.time_budget:g}")
    if "arch" in settings.overrides:
        raise UserError("--set arch=... is not allowed; use --arch (repeatable)")
    if settings.warm_top < 1:
        raise UserError(f"--warm-top must be at least 1, got {settings.warm_top}")
    trackers.parse(settings.log_to)  # an unknown tracker or a missing extra, before Ray starts
    if settings.startup_trials < 0:
        raise UserError(f"--startup-trials must be 0 or more, got {settings.startup_trials}")


def make_out(out: Path | str) -> Path:
    """The sweep folder, created if missing; a path that is a file or cannot be made is a UserError."""
    path = Path(out).resolve()
    if path.exists() and not path.is_dir():
        raise UserError(f"--out '{out}' is a file; give a folder for the sweep (it is created if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out '{out}': cannot create the folder: {exc.strerror or exc}") from None
    return path
