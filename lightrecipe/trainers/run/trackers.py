"""`--log-to`: the experiment trackers a run or a sweep also writes to (MLflow, TensorBoard, W&B), and what
each run tells them. One home for the rules both sides follow: `train` uses the libraries' plain clients
(tracker_clients.py), a sweep or confirm Ray Tune's own logger callbacks (search/tune/trackers.py).

Per run: the sampled params and the full recipe as parameters, per-epoch metrics under train()'s own names
(knn_top1, loss, lr, feature_rank, images_per_s), the final metrics, the state, tags naming the study and
arch (confirm runs: also the source trial and seed), and the recipe YAML as an artifact.

Nothing else leaves for a tracker: no environment, no command line (a `--storage` URL may hold a database
password, the environment an API key), so each client is told not to collect them.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from lightrecipe.errors import UserError, install_extra

# kind -> (module that must import, extra that installs it). TensorBoard files are written by tensorboardX
# (Ray's TBX callback uses it; no TensorFlow); the `tensorboard` package reads them and serves them.
EXTRAS = {"mlflow": ("mlflow", "mlflow"), "tensorboard": ("tensorboardX", "tensorboard"), "wandb": ("wandb", "wandb")}
VALID = "mlflow[:URI], tensorboard[:DIR], wandb[:PROJECT]"
EPOCH_METRICS = ("knn_top1", "loss", "lr", "feature_rank", "images_per_s")  # train()'s per-epoch report
# train()'s final scores; the final val knn_top1 is the last epoch's, already on its curve
FINAL_METRICS = ("linear_top1", "test_knn_top1", "test_linear_top1")
RECIPE_ARTIFACT = "recipe.yaml"
RECIPE_CONFIG = "recipe"  # the key of the full recipe in a run's config: a W&B run's, a sweep trial's Tune config
STATE_TAG = "state"
WANDB_PROJECT = "lightrecipe"  # `--log-to wandb` without a project
WANDB_TAG_CHARS = 64  # wandb.Settings refuses a longer tag; the full tags are in the run's config as well
# What W&B collects unless told not to: the command line, the host, git state, installed packages, system stats
# and the console. None of it is the run's, and the command line may hold a `--storage` password.
WANDB_SETTINGS = {"x_disable_meta": True, "x_disable_stats": True, "x_disable_machine_info": True,
                  "disable_git": True, "save_code": False, "x_save_requirements": False, "console": "off"}


@dataclass(frozen=True)
class Tracker:
    kind: str  # a key of EXTRAS
    target: str | None  # mlflow: tracking URI; tensorboard: folder; wandb: project; None: the default

    def where(self, out: Path) -> str:
        """The URI, folder or project this tracker writes to; defaults live next to the run or sweep."""
        if self.kind == "wandb":
            return self.target or WANDB_PROJECT
        if self.kind == "mlflow":
            uri = self.target or (Path(out).resolve() / "mlruns").as_uri()
            if uri.startswith("file:") or "://" not in uri:
                # MLflow 3.x refuses its file store unless told (it is in maintenance, not removed); it is the
                # one store that needs no server and no database, so a local run keeps using it.
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            return uri
        return str(Path(self.target or Path(out) / "tensorboard").resolve())


def parse(specs: list[str] | tuple[str, ...]) -> list[Tracker]:
    """`--log-to` values -> trackers; an unknown kind or a missing extra is a UserError (exit 2)."""
    out = []
    for spec in specs:
        kind, _, target = spec.partition(":")
        if kind not in EXTRAS:
            raise UserError(f"--log-to '{spec}': unknown tracker '{kind}'; valid: {VALID}")
        module, extra = EXTRAS[kind]
        try:
            importlib.import_module(module)
        except ImportError:
            raise UserError(f"--log-to {kind} needs the {extra} extra: {install_extra(extra)}") from None
        out.append(Tracker(kind, target or None))
    return out


def tags(*, study: str | None, arch: str, kind: str, trial: int | None = None, baseline: bool = False,
         source_trial: int | None = None, seed: int | None = None) -> dict[str, str]:
    """The tags of one run: the study and arch; a sweep trial's number; a confirm run's source trial and seed."""
    out = {"arch": arch, "kind": kind, "baseline": str(bool(baseline)).lower()}
    for key, value in (("study", study), ("trial", trial), ("source_trial", source_trial), ("seed", seed)):
        if value is not None:
            out[key] = str(value)
    return out


def wandb_init(project: str, out: Path, tags: Mapping[str, str]) -> dict[str, Any]:
    """wandb.init's arguments that `train` and a sweep share. Its files go to WANDB_DIR, else next to the run or
    sweep (OUT/wandb/); WANDB_MODE (offline, disabled) is read here and passed on, because a sweep's runs are
    started by Ray's logging actor, whose environment is the one Ray started with."""
    folder = Path(os.environ.get("WANDB_DIR") or out).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return dict(project=project, dir=str(folder), mode=os.environ.get("WANDB_MODE") or None,
                settings=dict(WANDB_SETTINGS), tags=wandb_tags(tags))


def wandb_tags(tags: Mapping[str, str]) -> list[str]:
    """W&B tags are plain strings: `key:value`, as the other trackers' tags read."""
    return [f"{k}:{v}"[:WANDB_TAG_CHARS] for k, v in sorted(tags.items())]


def wandb_recipe_artifact(wandb: Any, run_id: str, recipe_file: Path) -> Any:
    """The recipe YAML as a W&B artifact of type "recipe", one per run. The file is added as immutable: W&B then
    keeps no staging copy of it (outside the run's folders) and reads it where it lies when it syncs."""
    artifact = wandb.Artifact(f"recipe-{run_id}", type="recipe")
    artifact.add_file(str(recipe_file), name=RECIPE_ARTIFACT, policy="immutable")
    return artifact


def recipe_yaml(recipe: Mapping[str, Any]) -> str:
    from lightrecipe.trainers.recipe import Recipe

    return Recipe.from_dict(dict(recipe), source="tracked recipe").to_yaml()


def numbers(row: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, float]:
    """The named metrics of a row that are finite numbers (trackers reject NaN or skip it silently)."""
    import math

    out = {}
    for name in names:
        value = row.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out

