"""The Ray Tune function trainable: one trial is one `train()` call in an absolute run folder.

A thin adapter (no training logic of its own): it turns train()'s per-epoch `report` into `tune.report` and its return
value into one last report. The run folder is absolute and derived from the study's key and the Optuna
trial number, so a trial that Ray restarts after its worker died, or that `--resume` re-runs after the
driver died, calls train() on the same folder and train() continues from its last checkpoint; the epochs
that folder already holds are reported again first (see `_train`).

Results sent to Tune (the searcher in `searcher.py` turns them into trial records):
    kind="epoch"   one per epoch but the last: train()'s epoch metrics (epoch, loss, lr, knn_top1, ...)
    kind="final"   once: train()'s final metrics plus `state` and `error` (`metric_keys` lists them). It carries `epoch` only when the
                   trial completed, so ASHA (time attribute `epoch`) never ranks a failed or diverged trial;
                   otherwise the last finished epoch is in `last_epoch`.
The last epoch is sent merged into the final result: ASHA stops a trial as soon as it reports `max_t`
epochs, which would cut off the final evaluation (linear probe, test metrics).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from lightrecipe.errors import UserError
from lightrecipe.search.store import records
from lightrecipe.search.tune import collapse
from lightrecipe.search.tune.devices import check_cuda, node_label
from lightrecipe.trainers.run.trackers import RECIPE_CONFIG

OBJECTIVE = records.DEFAULT_OBJECTIVE
KIND = "kind"
EPOCH, FINAL = "epoch", "final"
LAST_EPOCH = "last_epoch"
METRIC_KEYS = "metric_keys"  # which keys of the final result are train()'s (Tune adds its own)
HISTORY_KEYS = ("epoch", "loss", "lr", "knn_top1", "images_per_s", "epoch_seconds")  # records.HISTORY
CLOCK_FILE = "trial.json"  # wall time and attempts of this trial, next to train()'s own files
FULL_HISTORY = "history"  # the final result carries the run folder's whole history: epochs whose report
#                           died with a killed driver are in it
TRACEBACK = "traceback"  # a failed result carries the worker's traceback, for the driver's log

# Keys of the config that the searcher hands to each trial.
CFG_RECIPE = RECIPE_CONFIG  # where the trackers find it too (W&B logs the config as it is)
CFG_RECIPE_ERROR = "recipe_error"
CFG_RUN_DIR = "run_dir"
CFG_CPUS = "cpus"
CFG_GPUS = "gpus"
CFG_BASELINE = "baseline"  # the ResNet-50 settings trial: ASHA never stops it (see scheduler.StudyASHA)
CFG_WORKERS = "workers"  # data-parallel Ray Train workers per trial; 1: train() runs in the Tune trial itself
CFG_WORKER_FAILURES = "worker_failures"  # worker-group restarts a data-parallel trial allows (from the checkpoint)


def run_trial(config: dict[str, Any]) -> None:
    """Tune function trainable. `config` holds the resolved recipe (dict), the run folder and resources.

    Whatever goes wrong on the worker (the run folder cannot be made, the data is missing on this node, a
    GPU trial on a worker without CUDA, a bug) ends as one `failed` result naming the reason, with the
    traceback for the driver's log; only a worker that dies outright is left to Ray's retries.
    """
    from ray import tune

    started = time.monotonic()
    run_dir = Path(config[CFG_RUN_DIR])
    node = node_label()
    clock: WallClock | None = None
    held: dict[str, Any] = {}  # the last epoch, sent together with the final metrics

    def stamp(result: dict[str, Any]) -> dict[str, Any]:
        seconds = clock.save() if clock is not None else time.monotonic() - started
        result.update(node=node, wall_seconds=seconds)
        return result

    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        clock = WallClock(run_dir)
        if config.get(CFG_RECIPE_ERROR):
            tune.report(stamp(failed_result(config[CFG_RECIPE_ERROR], None)))
            return
        final = _train(config, run_dir, lambda row: tune.report(stamp(row)), held)
    except collapse.Collapsed as stop:  # pruned, as ASHA would, but at any epoch (collapse.py)
        stopped = failed_result(str(stop), held or None, state=records.PRUNED)
        tune.report(stamp({**stopped, FULL_HISTORY: read_history(run_dir)}))
        return
    except Exception as exc:  # noqa: BLE001 - a trial that raises is recorded as failed; the sweep goes on
        text = traceback.format_exc()
        print(text, file=sys.stderr)  # the worker's log, next to Ray's own
        failed = failed_result(describe(exc), held or None)
        tune.report(stamp({**failed, FULL_HISTORY: read_history(run_dir), TRACEBACK: text}))
        return
    tune.report(stamp({**final_result(final), FULL_HISTORY: read_history(run_dir)}))


def _train(config: dict[str, Any], run_dir: Path, send: Any, held: dict[str, Any]) -> dict[str, Any]:
    """train() on this worker; epoch results go to `send`, except the last one, kept in `held`."""
    import torch

    from lightrecipe.trainers.recipe import Recipe
    from lightrecipe.trainers.run.train import train

    recipe = Recipe.from_dict(config[CFG_RECIPE], source="trial recipe")
    cpus = float(config.get(CFG_CPUS, 1) or 1)
    gpus = float(config.get(CFG_GPUS, 0) or 0)
    torch.set_num_threads(max(1, int(round(cpus))))  # as many threads as CPUs reserved, not the machine's
    workers = int(config.get(CFG_WORKERS, 1) or 1)
    if workers == 1:  # data-parallel, each Ray Train worker checks its own device
        check_cuda(gpus)

    def report(metrics: dict[str, Any]) -> None:
        row = _numbers(metrics)
        reason = collapse.verdict(row)
        if reason:  # ends train() here; run_trial reports the trial as pruned with this reason
            held.update(row)
            raise collapse.Collapsed(reason)
        if int(row["epoch"]) >= recipe.epochs:
            held.update(row)
            return
        send({**row, KIND: EPOCH})

    # Epochs an earlier attempt finished go out again first: a driver that died may never have seen them,
    # and ASHA must judge a rung on that rung's own result (the searcher and scheduler ignore repeats).
    for row in read_history(run_dir):
        if row["epoch"] < recipe.epochs:
            send({**row, KIND: EPOCH})
    if workers > 1:
        from lightrecipe.search.tune.data_parallel import train_on_workers

        return train_on_workers(config[CFG_RECIPE], run_dir, workers=workers, cpus=cpus, gpus=gpus,
                                max_failures=int(config.get(CFG_WORKER_FAILURES, 0) or 0), report=report,
                                history=lambda: read_history(run_dir))
    return train(recipe, workdir=run_dir, device="cuda" if gpus > 0 else "cpu", report=report)


def final_result(final: dict[str, Any]) -> dict[str, Any]:
    """train()'s return value as the last Tune result (see the module docstring)."""
    out = _numbers(final)
    out[METRIC_KEYS] = sorted(final)
    state = str(final.get("state") or records.COMPLETE)
    out.update({KIND: FINAL, "state": state, "error": str(final.get("error") or "")})
    if state != records.COMPLETE:
        out[LAST_EPOCH] = out.pop("epoch", None)
    value = out.get(OBJECTIVE)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        out[OBJECTIVE] = float("nan")  # Tune checks that every result names the metric
    return out


def failed_result(error: str, last_row: dict[str, Any] | None, state: str = records.FAILED) -> dict[str, Any]:
    out = dict(last_row or {})
    out[METRIC_KEYS] = sorted(set(out) | {"state", "error"})
    out[LAST_EPOCH] = out.pop("epoch", None)
    out.setdefault(OBJECTIVE, float("nan"))
    out.update({KIND: FINAL, "state": state, "error": error})
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
    from lightrecipe.trainers.run import run_files  # the trainer owns the run folder's files

    rows = []
    for raw in run_files.read_history(run_dir):
        try:
            row = {k: float(raw[k]) for k in HISTORY_KEYS}
        except (KeyError, TypeError, ValueError):
            continue  # a row without the epoch metrics is not an epoch
        row["epoch"] = int(row["epoch"])
        rows.append(row)
    return rows


class WallClock:
    """Wall seconds and attempts of a trial over all its runs (Ray retries, `--resume`), kept in the run
    folder; `attempts` counts the runs that started, this one included."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / CLOCK_FILE
        self.start = time.monotonic()
        self.before, attempts = 0.0, 0
        if self.path.exists():
            try:
                saved = json.loads(self.path.read_text())
                self.before, attempts = float(saved.get("wall_seconds", 0.0)), int(saved.get("attempts", 0))
            except (ValueError, OSError, AttributeError):
                self.before, attempts = 0.0, 0
        self.attempts = attempts + 1
        self.save()

    def seconds(self) -> float:
        return self.before + time.monotonic() - self.start

    def save(self) -> float:
        total = self.seconds()
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"wall_seconds": total, "attempts": self.attempts}))
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
