"""`lightrecipe train --log-to ...`: the trackers' plain clients (MlflowClient, tensorboardX's SummaryWriter,
a wandb run), writing what trainers/run/trackers.py says a run carries. A sweep uses Ray Tune's callbacks instead
(search/tune/trackers.py). The final metrics go in at the last epoch's step, as a sweep's final result does;
TensorBoard shows a sweep's scalars under Ray's `ray/tune/` prefix and a train run's without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from lightrecipe.trainers.recipe import Recipe
from lightrecipe.trainers.run import trackers
from lightrecipe.trainers.run.outcome import COMPLETE


class _MLflow:
    def __init__(self, uri: str, recipe: Recipe, tags: dict[str, str], out: Path):
        import mlflow
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        experiment = "lightrecipe-train"  # every `train` run of one store in one experiment, as a sweep's study
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        self.run_id = self.client.create_run(experiment_id, tags=tags).info.run_id
        self.client.log_batch(self.run_id, params=[mlflow.entities.Param(f"recipe/{k}", str(v))
                                                   for k, v in recipe.to_dict().items()])
        self.client.log_text(self.run_id, recipe.to_yaml(), trackers.RECIPE_ARTIFACT)

    def epoch(self, row: dict[str, Any]) -> None:
        for name, value in trackers.numbers(row, trackers.EPOCH_METRICS).items():
            self.client.log_metric(self.run_id, name, value, step=int(row["epoch"]))

    def end(self, metrics: dict[str, Any]) -> None:
        for name, value in trackers.numbers(metrics, trackers.FINAL_METRICS).items():
            self.client.log_metric(self.run_id, name, value, step=int(metrics.get("epoch") or 0))
        state = str(metrics.get("state") or COMPLETE)
        self.client.set_tag(self.run_id, trackers.STATE_TAG, state)
        self.client.set_terminated(self.run_id, "FINISHED" if state == COMPLETE else "FAILED")


class _TensorBoard:
    def __init__(self, folder: str, recipe: Recipe, tags: dict[str, str], out: Path):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(folder)
        self.writer.add_text("tags", json.dumps(tags, sort_keys=True))
        self.writer.add_text(trackers.RECIPE_ARTIFACT, recipe.to_yaml())

    def epoch(self, row: dict[str, Any]) -> None:
        for name, value in trackers.numbers(row, trackers.EPOCH_METRICS).items():
            self.writer.add_scalar(name, value, global_step=int(row["epoch"]))

    def end(self, metrics: dict[str, Any]) -> None:
        for name, value in trackers.numbers(metrics, trackers.FINAL_METRICS).items():
            self.writer.add_scalar(name, value, global_step=int(metrics.get("epoch") or 0))
        self.writer.add_text(trackers.STATE_TAG, str(metrics.get("state") or COMPLETE))
        self.writer.close()


class _WandB:
    """A W&B run of its own (`reinit`), so a process already holding one keeps it; steps are epochs."""

    def __init__(self, project: str, recipe: Recipe, tags: dict[str, str], out: Path):
        import wandb

        self.wandb = wandb
        self.run = wandb.init(**trackers.wandb_init(project, out, tags), group="lightrecipe-train",
                              config={trackers.RECIPE_CONFIG: recipe.to_dict(), "tags": tags}, reinit="create_new")
        self.recipe_file = Path(self.run.dir) / trackers.RECIPE_ARTIFACT  # inside the W&B run's own folder
        self.recipe_file.write_text(recipe.to_yaml())

    def epoch(self, row: dict[str, Any]) -> None:
        self.run.log(trackers.numbers(row, trackers.EPOCH_METRICS), step=int(row["epoch"]))

    def end(self, metrics: dict[str, Any]) -> None:
        self.run.log(trackers.numbers(metrics, trackers.FINAL_METRICS), step=int(metrics.get("epoch") or 0))
        state = str(metrics.get("state") or COMPLETE)
        self.run.config.update({trackers.STATE_TAG: state})
        self.run.log_artifact(trackers.wandb_recipe_artifact(self.wandb, self.run.id, self.recipe_file))
        self.run.finish(exit_code=0 if state == COMPLETE else 1)


CLIENTS = {"mlflow": _MLflow, "tensorboard": _TensorBoard, "wandb": _WandB}  # kind -> plain client


class TrainTrackers:
    """The `--log-to` trackers of one `train` run: `epoch(row)` as train()'s report, `end(metrics)` after."""

    def __init__(self, chosen: list[trackers.Tracker], recipe: Recipe, out: Path):
        tags = trackers.tags(study=None, arch=recipe.arch, kind="train")
        self.clients = [CLIENTS[t.kind](t.where(out), recipe, tags, out) for t in chosen]

    def epoch(self, row: dict[str, Any]) -> None:
        for client in self.clients:
            client.epoch(row)

    def end(self, metrics: dict[str, Any]) -> None:
        for client in self.clients:
            client.end(metrics)

    def around(self, report: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        """train()'s report callback that also logs each epoch."""

        def both(row: dict[str, Any]) -> None:
            report(row)
            self.epoch(row)

        return both
