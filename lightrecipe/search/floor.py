"""The random-init floor: the study's backbone untrained, scored by train()'s own final evaluation.

A recipe is only better than no training when it beats this number. On small data it is high (a random
MobileNet-V3 on the bundled digits: about 83% val kNN), so a report without it cannot tell a better recipe from
less damage. The backbone is the one train() would start from for that seed (`Trainer.build` seeds torch with
`recipe.seed` before it builds the model), and the scores come from `scoring.final_scores`, so the floor and a
trained trial are measured on one footing: same splits, same kNN and linear probe, and the same device and
precision: where trials hold GPUs or run on a joined cluster, the floor is a Ray task holding one trial's CPUs
and GPUs, started beside the study's first trials (on a cluster the driver may have no GPU, and at ImageNet
scale the floor takes hours); where they run on this machine's CPUs, it is measured in a thread of the driver
(no worker to start) while Ray starts and the first trials run. Each row names the device and precision it was
measured with.

A sweep measures one seed per arch study (or on `--resume` when it has none yet); `lightrecipe confirm`
measures `--seeds` of them. Stored as the study attribute `records.FLOOR` (see records.py).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, TextIO

import optuna

from lightrecipe.errors import UserError
from lightrecipe.search.cluster.interrupts import received
from lightrecipe.search.store import records
from lightrecipe.search.store.study import jsonable


def random_init_scores(recipe: Any, data: Any = None, device: str = "cpu") -> dict[str, float]:
    """train()'s final scores of the backbone it would start from (`recipe.seed`), without training it."""
    import torch

    from lightrecipe.trainers.data.datasets import load_dataset
    from lightrecipe.trainers.method.model import MoCo
    from lightrecipe.trainers.run.scoring import final_scores

    data = load_dataset(recipe) if data is None else data
    torch.manual_seed(recipe.seed)  # as Trainer.build does before it builds the model
    backbone = MoCo.from_recipe(recipe).backbone.to(device)
    return {k: float(v) for k, v in final_scores(backbone, data, recipe, torch.device(device)).items()}


def measure(recipe: Any, seeds: Iterable[int], device: str = "cpu") -> list[dict[str, Any]]:
    """One row per seed: {"seed": s, knn_top1, linear_top1, test_knn_top1, test_linear_top1, ..., device,
    precision}."""
    from lightrecipe.trainers.data.datasets import load_dataset

    data = load_dataset(recipe)  # the splits do not depend on the seed: load once
    return [{"seed": int(s), **random_init_scores(recipe.replace(seed=int(s)), data, device),
             "device": device, "precision": recipe.precision} for s in seeds]


@dataclass(frozen=True)
class Place:
    """Where the floor is measured: in the driver, or in a Ray task holding one trial's CPUs and GPUs."""

    cpus: float = 1.0
    gpus: float = 0.0
    on_ray: bool = False


def place_of(settings: Any) -> Place:
    """A sweep's (or confirm's) trials' place: a Ray task when they hold GPUs or run on a joined cluster."""
    return Place(float(settings.cpus_per_trial), float(settings.gpus_per_trial),
                 on_ray=bool(settings.address) or settings.gpus_per_trial > 0)


def _measure_in_a_trial_place(recipe: dict[str, Any], seeds: list[int], gpus: float) -> list[dict[str, Any]]:
    """The Ray task: the floor on the device a trial with these resources trains on (trainable.py's choice)."""
    from lightrecipe.search.tune.devices import check_cuda
    from lightrecipe.trainers.recipe import Recipe

    check_cuda(gpus)
    return measure(Recipe.from_dict(recipe), seeds, "cuda" if gpus > 0 else "cpu")


class _DriverThread:
    """The floor measured in a thread of the driver, beside the trials (which run in Ray's worker processes): a
    sweep on this machine's CPUs does not wait for it before its first trial, and Ray starts while it runs. A
    daemon thread: an interrupted sweep exits without waiting for it (its result is dropped)."""

    def __init__(self, recipe: Any, seeds: list[int]):
        self.rows: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(recipe, seeds), name="random-init floor", daemon=True)
        self.thread.start()

    def _run(self, recipe: Any, seeds: list[int]) -> None:
        try:
            self.rows = measure(recipe, seeds)
        except BaseException as exc:  # handed to the driver's thread, which reports or raises it
            self.error = exc

    def result(self) -> list[dict[str, Any]]:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.rows


@dataclass
class Pending:
    """A floor being measured: `finish` stores it (a Ray task's or the driver thread's result, or nothing left
    to do)."""

    study: optuna.Study
    known: dict[int, dict[str, Any]]
    task: Any = None  # the Ray ObjectRef of the task measuring the missing seeds, or a _DriverThread

    def finish(self, stream: TextIO | None = None) -> list[dict[str, Any]]:
        """Waits for the measurement (if any), stores every row; returns them in seed order. A measurement that
        failed (a worker without the GPU it was promised, a lost node, data the floor cannot read) stores nothing
        and says so on `stream`: the trials' own results stand, and `--resume` measures the floor again."""
        if self.task is not None:
            try:
                rows = self._result()
            except Exception as exc:
                if not _reported(exc):
                    raise  # a bug, not a measurement that failed: it surfaces
                cause = getattr(exc, "cause", None) or exc  # a task's own error, not Ray's wrapping of it
                reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
                if stream is not None:
                    stream.write(f"[{self.study.study_name}] random-init floor not measured: {reason}; "
                                 "--resume measures it again\n")
                rows = []
            finally:
                self.task = None
            if rows:
                _store(self.study, self.known, rows)
        return [self.known[s] for s in sorted(self.known)]

    def _result(self) -> list[dict[str, Any]]:
        if isinstance(self.task, _DriverThread):
            return self.task.result()
        import ray

        return ray.get(self.task)

    def cancel(self) -> None:
        """Drops an unfinished measurement (an interrupted sweep): `--resume` measures its seeds again. A Ray task
        is cancelled; the driver's thread cannot be, and ends with the process, its result unused."""
        if self.task is not None and not isinstance(self.task, _DriverThread):
            import ray

            ray.cancel(self.task)
        self.task = None


def _reported(exc: Exception) -> bool:
    """Whether a failed measurement is a line on the stream (a user error, or Ray's) rather than a bug."""
    if isinstance(exc, UserError):
        return True
    import ray

    return isinstance(exc, ray.exceptions.RayError)


def recorded(study: optuna.Study) -> list[dict[str, Any]]:
    """The floor rows a study holds ([] when none)."""
    rows = study.user_attrs.get(records.FLOOR) or []
    return [r for r in rows if isinstance(r, dict) and "seed" in r]


def start(study: optuna.Study, recipe: Any, seeds: Iterable[int] | None = None, place: Place = Place()) -> Pending:
    """Starts measuring the seeds (default: the recipe's own) the study has no floor for yet: in a thread of the
    driver, or as a Ray task (Ray must be initialised); either runs beside the trials until `finish`."""
    seeds = [recipe.seed] if seeds is None else seeds
    known = {int(r["seed"]): r for r in recorded(study)}
    missing = [int(s) for s in seeds if int(s) not in known]
    if not missing:
        return Pending(study, known)
    if not place.on_ray:
        return Pending(study, known, _DriverThread(recipe, missing))
    import ray

    task = ray.remote(num_cpus=place.cpus, num_gpus=place.gpus, max_retries=0)(_measure_in_a_trial_place)
    return Pending(study, known, task.remote(recipe.to_dict(), missing, place.gpus))


def ensure(study: optuna.Study, recipe: Any, seeds: Iterable[int] | None = None,
           place: Place = Place()) -> list[dict[str, Any]]:
    """`start` and `finish` in one: every row, in seed order."""
    return start(study, recipe, seeds, place).finish()


@contextmanager
def beside_the_trials(study: optuna.Study, recipe: Any, seeds: Iterable[int] | None = None,
                      place: Place = Place(), stream: TextIO | None = None,
                      started: Pending | None = None) -> Iterator[None]:
    """Measures the floor while the block runs the study's trials and stores it after (a failure to measure it
    is a line on `stream`, not the sweep's outcome); an interrupted or failed block drops an unfinished
    measurement (`--resume` takes it up again). `started`: the study's measurement `start` began earlier (a
    sweep starts its first study's before Ray)."""
    pending = started or start(study, recipe, seeds, place)
    try:
        yield
    except BaseException:
        pending.cancel()
        raise
    if received() is None:
        pending.finish(stream)
    else:
        pending.cancel()


def _store(study: optuna.Study, known: dict[int, dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    for row in rows:
        known[int(row["seed"])] = row
    study.set_user_attr(records.FLOOR, jsonable([known[s] for s in sorted(known)]))
