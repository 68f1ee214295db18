"""Ray Tune's W&B logging actor, taught to log a trial's recipe YAML as a W&B artifact.

WandbLoggerCallback gives each trial an actor on the driver's node that owns the trial's wandb run; only that
process can add to the run, so the artifact is logged there. Ray takes the actor's class from the callback's
`_logger_actor_cls` and hands it each result through `_handle_result`: both private, used in this module
only, and pinned by tests/search/tune/test_trackers.py (the artifact read back from W&B's run folder).

The actor's `run()` also waits for W&B's own service process to write out and exit. Ray kills the actor, and the
actor's child processes, as soon as `run()` returns, and `wandb.finish()` can return while that service still holds
the run's last records: under load, a sweep's offline run file was found cut short before its history, its state
and its exit record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.air.integrations.wandb import _WandbLoggingActor

from lightrecipe.trainers.run import trackers


class RecipeLoggingActor(_WandbLoggingActor):
    """Logs the recipe with the trial's first result, when its run exists (the run starts in the actor's
    `run()`); a trial that fails before its first epoch has no recipe artifact, its config holds the recipe."""

    _recipe_logged = False

    def run(self) -> None:
        super().run()  # logs until the trial's end, then wandb.finish()
        self._wandb.teardown()  # returns once W&B's service process has written everything and exited

    def _handle_result(self, result: dict) -> Any:
        if not self._recipe_logged:
            self._recipe_logged = True
            recipe = (self.kwargs.get("config") or {}).get(trackers.RECIPE_CONFIG)
            run = self._wandb.run
            if recipe and run is not None:
                path = Path(run.dir) / trackers.RECIPE_ARTIFACT  # inside the W&B run's own folder
                path.write_text(trackers.recipe_yaml(recipe))
                run.log_artifact(trackers.wandb_recipe_artifact(self._wandb, run.id, path))
        return super()._handle_result(result)
