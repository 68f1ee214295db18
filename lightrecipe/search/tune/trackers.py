"""`--log-to` on a sweep or confirm: Ray Tune's own logger callbacks (MLflowLoggerCallback, TBXLoggerCallback,
WandbLoggerCallback), run in the driver, each told what trainers/run/trackers.py says a run carries.

Each trial's config holds its recipe, its sampled params and its tags (searcher.py puts them there), so the
callbacks log them from the trial itself. What Ray's callbacks do not do, these subclasses add: the tags of
the trial (study, arch, trial; a confirm run's source trial and seed), the step as the epoch (Tune counts
reports, and a resumed trial reports its finished epochs again), the trial's state and the recipe YAML.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ray.tune.logger import TBXLoggerCallback
from ray.tune.result import TIMESTEPS_TOTAL, TRAINING_ITERATION

from lightrecipe.search.store import records
from lightrecipe.search.store.study import slug
from lightrecipe.search.tune import trainable
from lightrecipe.trainers.run import trackers

CFG_TAGS = "tags"  # the trial config's tags (trackers.tags)


def state_of(trial: Any, failed: bool, stopped_by_scheduler: Callable[[int], bool]) -> str:
    """The trial's state as the searcher records it: a final result says it, else ASHA stopped it, else Tune
    did (time budget, interrupt: still resumable)."""
    last = trial.last_result or {}
    if last.get(trainable.KIND) == trainable.FINAL:
        return str(last.get("state") or records.COMPLETE)
    if failed:
        return records.FAILED
    return records.PRUNED if stopped_by_scheduler(int(trial.config.get("number", -1))) else "stopped"


def epoch_of(result: dict[str, Any]) -> int:
    return int(result.get("epoch") or result.get(trainable.LAST_EPOCH) or result.get(TRAINING_ITERATION) or 0)


def callbacks(chosen: list[trackers.Tracker], out: Path, *, study: str,
              stopped_by_scheduler: Callable[[int], bool]) -> list[Any]:
    """One Tune callback per tracker, for one study's Tune run."""
    return [CALLBACKS[t.kind](t.where(out), out, study, stopped_by_scheduler) for t in chosen]


def _mlflow(uri: str, out: Path, study: str, stopped_by_scheduler: Callable[[int], bool]) -> Any:
    from mlflow import MlflowClient
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    class MLflow(MLflowLoggerCallback):
        """Ray's MLflow callback, one experiment per study; tags per trial, state and recipe at the end."""

        def log_trial_start(self, trial: Any) -> None:
            self.tags = dict(trial.config.get(CFG_TAGS) or {})  # read by the base when it starts the run
            super().log_trial_start(trial)

        def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
            run_id = self._trial_runs[trial]
            self.mlflow_util.log_metrics(run_id=run_id, metrics_to_log=result, step=epoch_of(result))

        def log_trial_end(self, trial: Any, failed: bool = False) -> None:
            run_id = self._trial_runs[trial]
            client = MlflowClient(tracking_uri=uri)
            client.set_tag(run_id, trackers.STATE_TAG, state_of(trial, failed, stopped_by_scheduler))
            recipe = trial.config.get(trainable.CFG_RECIPE)
            if recipe:
                client.log_text(run_id, trackers.recipe_yaml(recipe), trackers.RECIPE_ARTIFACT)
            super().log_trial_end(trial, failed)

    return MLflow(tracking_uri=uri, experiment_name=study)


class _TensorBoard(TBXLoggerCallback):
    """Ray's TBX callback writing to DIR/<study>/trial-NNNN (not Tune's trial folder), steps as epochs; the
    recipe YAML, the sampled params, the tags and the state as text summaries."""

    def __init__(self, root: str, out: Path, study: str, stopped_by_scheduler: Callable[[int], bool]):
        super().__init__()
        self.folder = Path(root) / slug(study)
        self.stopped_by_scheduler = stopped_by_scheduler

    def log_trial_start(self, trial: Any) -> None:
        if trial in self._trial_writer:
            self._trial_writer[trial].close()
        number = int(trial.config.get("number", 0))
        writer = self._summary_writer_cls(str(self.folder / f"trial-{number:04d}"), flush_secs=30)
        self._trial_writer[trial] = writer
        self._trial_result[trial] = {}
        writer.add_text("tags", json.dumps(trial.config.get(CFG_TAGS) or {}, sort_keys=True))
        writer.add_text("params", json.dumps(trial.config.get("params") or {}, sort_keys=True))
        if trial.config.get(trainable.CFG_RECIPE):
            writer.add_text(trackers.RECIPE_ARTIFACT, trackers.recipe_yaml(trial.config[trainable.CFG_RECIPE]))

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        # The whole history and the metric names are lists: the base would try them as histograms and warn.
        scalars = {k: v for k, v in result.items() if k not in (trainable.FULL_HISTORY, trainable.METRIC_KEYS)}
        super().log_trial_result(iteration, trial, {**scalars, TIMESTEPS_TOTAL: epoch_of(result)})

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        if trial in self._trial_writer:
            state = state_of(trial, failed, self.stopped_by_scheduler)
            self._trial_writer[trial].add_text(trackers.STATE_TAG, state)
        super().log_trial_end(trial, failed)


def _wandb(project: str, out: Path, study: str, stopped_by_scheduler: Callable[[int], bool]) -> Any:
    from ray.air.integrations.wandb import WandbLoggerCallback

    from lightrecipe.search.tune.wandb_actor import RecipeLoggingActor

    class WandB(WandbLoggerCallback):
        """Ray's W&B callback, one W&B group per study and a run per trial; its logging actor also logs the
        recipe YAML (wandb_actor.py); the state goes into the run's config at the end."""

        _logger_actor_cls = RecipeLoggingActor

        def log_trial_start(self, trial: Any) -> None:
            # Ray passes self.kwargs to wandb.init (after its own id, name, group, config): the trial's own tags
            number = int(trial.config.get("number", 0))
            self.kwargs = {**self.kwargs, "tags": trackers.wandb_tags(trial.config.get(CFG_TAGS) or {}),
                           "name": f"trial-{number:04d}"}
            super().log_trial_start(trial)

        def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
            # Ray logs at step = training_iteration (Tune's count of reports); here that count is the epoch.
            super().log_trial_result(iteration, trial, {**result, TRAINING_ITERATION: epoch_of(result)})

        def log_trial_end(self, trial: Any, failed: bool = False) -> None:
            # A result's `config` updates the run's config: the state, at the last epoch's step.
            state = state_of(trial, failed, stopped_by_scheduler)
            self.log_trial_result(0, trial, {"config": {trackers.STATE_TAG: state},
                                             TRAINING_ITERATION: epoch_of(trial.last_result or {})})
            super().log_trial_end(trial, failed)

    init = trackers.wandb_init(project, out, {})
    return WandB(project=init.pop("project"), group=study, **init)


CALLBACKS = {"mlflow": _mlflow, "tensorboard": _TensorBoard, "wandb": _wandb}  # kind -> (where, out, study, stop)
