"""ASHA for one study, with rung records kept by Optuna trial number so that `--resume` can rebuild them.

Asynchronous successive halving (Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning"),
decided exactly as Ray Tune's `ASHAScheduler` with one bracket decides: rungs at grace * rf^k epochs below
the full schedule; when a trial first reaches a rung it is recorded there, and it is stopped when its value
is below the (1 - 1/rf) quantile of the values recorded at that rung before it. Two differences, both the
reason this file exists:

- records are keyed by the Optuna trial number, not by Tune's trial id, and `Rungs.from_study` rebuilds them
  from the intermediate values in the trial database. A requeued sweep (`--resume`) therefore compares new
  and resumed trials with every rung result recorded before the interrupt, and prunes as the uninterrupted
  sweep would; a resumed trial is never judged again at a rung it was already judged at;
- the ResNet-50 baseline trial is never stopped (everything is compared with it); its results still count
  at every rung, so it sets the bar the searched recipes must clear.

Only Tune's public scheduler interface is used (`FIFOScheduler`, whose trial order this keeps).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np
import optuna
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from lightrecipe.search.tune import trainable

REDUCTION_FACTOR = 3  # ASHA keeps the best third at each rung (Li et al. 2020 use 3 or 4)


def milestones(grace: int, max_epochs: int, reduction_factor: float = REDUCTION_FACTOR) -> list[int]:
    """Rung epochs, ascending: grace * rf^k below `max_epochs` (a trial at `max_epochs` has finished)."""
    out, epoch = [], float(grace)
    while epoch < max_epochs:
        out.append(int(round(epoch)))
        epoch *= reduction_factor
    return out


class Rungs:
    """The rung records of one study: milestone -> {trial number: objective at that milestone}."""

    def __init__(self, grace: int, max_epochs: int, reduction_factor: float = REDUCTION_FACTOR):
        self.reduction_factor = float(reduction_factor)
        self.recorded: dict[int, dict[int, float]] = {m: {} for m in milestones(grace, max_epochs, reduction_factor)}

    @classmethod
    def from_study(
        cls, study: optuna.Study, grace: int, max_epochs: int, reduction_factor: float = REDUCTION_FACTOR
    ) -> "Rungs":
        """Rungs as the study's trials left them: each trial's intermediate value at each milestone epoch."""
        rungs = cls(grace, max_epochs, reduction_factor)
        for trial in study.get_trials(deepcopy=False):
            rungs.seed(trial.number, trial.intermediate_values)
        return rungs

    def seed(self, number: int, values: Mapping[int, float]) -> None:
        for milestone, recorded in self.recorded.items():
            if milestone in values:
                recorded[number] = float(values[milestone])

    def judge(self, number: int, epoch: int, value: float) -> bool:
        """Record a result; True when the trial should stop. The highest rung the trial reached and is not
        yet recorded at decides (as Ray's `_Bracket.on_result`); a NaN value is never below the cutoff."""
        for milestone in sorted(self.recorded, reverse=True):
            recorded = self.recorded[milestone]
            if epoch < milestone or number in recorded:
                continue
            cutoff = self.cutoff(recorded.values())
            recorded[number] = float(value)
            return cutoff is not None and float(value) < cutoff
        return False

    def cutoff(self, values: Iterable[float]) -> float | None:
        values = list(values)
        if not values or all(math.isnan(v) for v in values):
            return None
        return float(np.nanpercentile(values, (1 - 1 / self.reduction_factor) * 100))


class StudyASHA(FIFOScheduler):
    """Tune's side of `Rungs`: reads the trial number and baseline flag from the trial's config (set by the
    searcher), stops trials at `max_epochs`, and remembers which trials it stopped (the searcher records
    those as pruned; a trial Tune stops for any other reason stays resumable)."""

    def __init__(self, rungs: Rungs, *, max_epochs: int, time_attr: str = "epoch", metric: str = trainable.OBJECTIVE):
        super().__init__()
        self.rungs = rungs
        self.max_epochs = int(max_epochs)
        self.time_attr = time_attr
        self._metric = metric
        self.stopped: set[int] = set()

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        epoch, value = result.get(self.time_attr), result.get(self._metric)
        if epoch is None or value is None:
            return TrialScheduler.CONTINUE  # a failed or diverged trial's last result names no epoch
        if epoch >= self.max_epochs:
            return TrialScheduler.STOP  # finished (its final evaluation rides on this result)
        number = int(trial.config["number"])
        stop = self.rungs.judge(number, int(epoch), float(value))
        if stop and not trial.config.get(trainable.CFG_BASELINE):
            self.stopped.add(number)
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def was_stopped(self, number: int) -> bool:
        return number in self.stopped

    def debug_string(self) -> str:
        rungs = ", ".join(f"epoch {m}: {len(r)} recorded" for m, r in sorted(self.rungs.recorded.items()))
        return f"ASHA by trial number ({rungs}); stopped {len(self.stopped)}"
