"""The Ray Tune function trainable: one trial is one `train()` call in an absolute run folder.

A thin adapter (STYLE.md rule 7): it turns train()'s per-epoch `report` into `tune.report` and its return
value into one last report. The run folder is absolute and derived from the Optuna trial number, so a trial
that Ray restarts after its worker died, or that `--resume` re-runs after the driver died, calls train() on
the same folder and train() continues from its last checkpoint.

Results sent to Tune (the searcher in `searcher.py` turns them into trial records):
    kind="epoch"   one per epoch but the last: train()'s epoch metrics (epoch, loss, lr, knn_top1, ...)
    kind="final"   once: train()'s final metrics plus `state` and `error` (`metric_keys` lists them). It carries `epoch` only when the
                   trial completed, so ASHA (time attribute `epoch`) never ranks a failed or diverged trial;
                   otherwise the last finished epoch is in `last_epoch`.
The last epoch is sent merged into the final result: ASHA stops a trial as soon as it reports `max_t`
epochs, which would cut off the final evaluation (linear probe, test metrics).
"""

from __future__ import annotations

import csv
import json
import math
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from lightrecipe.errors import UserError
from lightrecipe.search import records

OBJECTIVE = records.DEFAULT_OBJECTIVE
KIND = "kind"
EPOCH, FINAL = "epoch", "final"
LAST_EPOCH = "last_epoch"
METRIC_KEYS = "metric_keys"  # which keys of the final result are train()'s (Tune adds its own)
HISTORY_KEYS = ("epoch", "loss", "lr", "knn_top1", "images_per_s", "epoch_seconds")  # records.HISTORY
CLOCK_FILE = "trial.json"  # wall time of earlier attempts of this trial, next to train()'s own files
HISTORY_FILE = "history.csv"  # train() writes every finished epoch here (the trainer's contract)
FULL_HISTORY = "history"  # the final result carries the run folder's whole history: epochs whose report
#                           died with a killed driver are in it

# Keys of the config that the searcher hands to each trial.
CFG_RECIPE = "recipe"
CFG_RECIPE_ERROR = "recipe_error"
CFG_RUN_DIR = "run_dir"
CFG_CPUS = "cpus"
CFG_GPUS = "gpus"
CFG_BASELINE = "baseline"  # the ResNet-50 settings trial: ASHA never stops it (see sweep.BaselineKeepingASHA)


def run_trial(config: dict[str, Any]) -> None:
    """Tune function trainable. `config` holds the resolved recipe (dict), the run folder and resources."""
    from ray import tune

    run_dir = Path(config[CFG_RUN_DIR])
    run_dir.mkdir(parents=True, exist_ok=True)
    clock = WallClock(run_dir)
    node = node_label()

    def stamp(result: dict[str, Any]) -> dict[str, Any]:
        result.update(node=node, wall_seconds=clock.save())
        return result

    if config.get(CFG_RECIPE_ERROR):
        tune.report(stamp(failed_result(config[CFG_RECIPE_ERROR], None)))
        return

    import torch

    from lightrecipe.trainers.recipe import Recipe
    from lightrecipe.trainers.train import train

    held: dict[str, Any] = {}  # the last epoch, sent together with the final metrics

    def report(metrics: dict[str, Any]) -> None:
        row = _numbers(metrics)
        if int(row["epoch"]) >= recipe.epochs:
            held.update(row)
            return
        tune.report(stamp({**row, KIND: EPOCH}))

    cpus = float(config.get(CFG_CPUS, 1) or 1)
    gpus = float(config.get(CFG_GPUS, 0) or 0)
    torch.set_num_threads(max(1, int(round(cpus))))  # as many threads as CPUs reserved, not the machine's
    if gpus > 0 and not torch.cuda.is_available():  # never fall back to a CPU silently: 50x slower
        tune.report(stamp(failed_result(
            f"--gpus-per-trial {gpus:g}, but this worker sees no CUDA device (CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', '')!r}, torch {torch.__version__})", None)))
        return
    device = "cuda" if gpus > 0 else "cpu"
    try:
        recipe = Recipe.from_dict(config[CFG_RECIPE], source="trial recipe")
        final = train(recipe, workdir=run_dir, device=device, report=report)
    except Exception as exc:  # noqa: BLE001 - a trial that raises is recorded as failed; the sweep goes on
        traceback.print_exc()  # the full traceback goes to the worker's log
        tune.report(stamp({**failed_result(describe(exc), held or None), FULL_HISTORY: read_history(run_dir)}))
        return
    tune.report(stamp({**final_result(final), FULL_HISTORY: read_history(run_dir)}))


def final_result(final: dict[str, Any]) -> dict[str, Any]:
    """train()'s return value as the last Tune result (see the module docstring)."""
    out = _numbers(final)
    out[METRIC_KEYS] = sorted(final)
    state = str(final.get("state") or "complete")
    out.update({KIND: FINAL, "state": state, "error": str(final.get("error") or "")})
    if state != "complete":
        out[LAST_EPOCH] = out.pop("epoch", None)
    value = out.get(OBJECTIVE)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        out[OBJECTIVE] = float("nan")  # Tune checks that every result names the metric
    return out


def failed_result(error: str, last_row: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(last_row or {})
    out[METRIC_KEYS] = sorted(set(out) | {"state", "error"})
    out[LAST_EPOCH] = out.pop("epoch", None)
    out.setdefault(OBJECTIVE, float("nan"))
    out.update({KIND: FINAL, "state": "failed", "error": error})
    return out


def describe(exc: BaseException) -> str:
    """One line for the trial record: the message, and where it was raised for anything but a UserError."""
    if isinstance(exc, UserError):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """The epochs train() finished in this run folder (all attempts), as numbers; [] when there are none."""
    path = run_dir / HISTORY_FILE
    if not path.exists():
        return []
    rows = []
    with path.open(newline="") as f:
        for raw in csv.DictReader(f):
            try:
                row = {k: float(raw[k]) for k in HISTORY_KEYS}
            except (KeyError, TypeError, ValueError):
                continue  # a row without the epoch metrics is not an epoch
            row["epoch"] = int(row["epoch"])
            rows.append(row)
    return rows


def node_label() -> str:
    """host/IP/Ray node id: two Ray nodes on one machine share host and IP, never the node id."""
    import ray

    try:
        node_id = ray.get_runtime_context().get_node_id()[:8]
        ip = ray.util.get_node_ip_address()
    except Exception:  # noqa: BLE001 - outside Ray (a direct call in a test or a script)
        node_id, ip = "local", "127.0.0.1"
    return f"{socket.gethostname()}/{ip}/{node_id}"


class WallClock:
    """Wall seconds of a trial over all its attempts (Ray retries, `--resume`), kept in the run folder."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / CLOCK_FILE
        self.start = time.monotonic()
        self.before = 0.0
        if self.path.exists():
            try:
                self.before = float(json.loads(self.path.read_text()).get("wall_seconds", 0.0))
            except (ValueError, OSError):
                self.before = 0.0

    def seconds(self) -> float:
        return self.before + time.monotonic() - self.start

    def save(self) -> float:
        total = self.seconds()
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"wall_seconds": total}))
        os.replace(tmp, self.path)
        return total


def _numbers(metrics: dict[str, Any]) -> dict[str, Any]:
    """Plain Python scalars (Tune flattens nested dicts; tensors and numpy scalars would not pickle cheaply)."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):
            value = value.item()
        out[key] = value
    return out
