"""`--log-to`: the experiment trackers a run or a sweep also writes to (MLflow, TensorBoard), and what
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
EXTRAS = {"mlflow": ("mlflow", "mlflow"), "tensorboard": ("tensorboardX", "tensorboard")}
VALID = "mlflow[:URI], tensorboard[:DIR]"
EPOCH_METRICS = ("knn_top1", "loss", "lr", "feature_rank", "images_per_s")  # train()'s per-epoch report
# train()'s final scores; the final val knn_top1 is the last epoch's, already on its curve
FINAL_METRICS = ("linear_top1", "test_knn_top1", "test_linear_top1")
RECIPE_ARTIFACT = "recipe.yaml"
STATE_TAG = "state"


@dataclass(frozen=True)
class Tracker:
    kind: str  # a key of EXTRAS
    target: str | None  # mlflow: tracking URI; tensorboard: folder; None: the default

    def where(self, out: Path) -> str:
        """The URI, folder or project this tracker writes to; defaults live next to the run or sweep."""
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

