"""`--workers-per-trial 2`: a sweep trial as a Ray Train data-parallel run inside its Tune trial (real Ray, gloo).

One Ray Train worker is killed with SIGKILL during epoch 2; Ray Train restarts the worker group, every rank's
train() resumes from the run folder's epoch-1 checkpoint, and the trial ends with the metrics of an uninterrupted
2-process run of the same recipe (trainers/run/launch.py's launcher, no Ray). The sweep is the README's own
example of `--workers-per-trial 2` on one machine, run as written but for its `/tmp` folder. And a user's
mistake that only the workers meet (the data missing on their node) fails the trial at once, with its one line.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import signal
import threading
from pathlib import Path

import optuna
import pytest
import torch

from lightrecipe import cli
from lightrecipe.errors import UserError
from lightrecipe.search.store import records
from lightrecipe.search.tune.data_parallel import train_on_workers
from lightrecipe.trainers.recipe import Recipe
from lightrecipe.trainers.run.launch import launch
from lightrecipe.trainers.run.outcome import RunStopped
from tests.search.helpers import ARCH, TINY_SPACE, descendants, load, processes_mentioning, trial_rows, wait_for
from tests.test_readme_blocks import readme_command_of

pytestmark = pytest.mark.slow  # about a minute on 2 idle cores each: Ray Train starts its workers
STUDY = records.study_name("tiny", ARCH)
README_EXAMPLE = "--out /tmp/ddp_sweep --workers-per-trial 2"  # tests/test_readme_blocks.py: CLAIMS
METRICS = ("loss", "knn_top1", "linear_top1", "test_knn_top1", "test_linear_top1")
TRAIN_WORKER = "RayTrainWorker"  # the class of Ray Train's worker actors: their process titles name it


def train_workers() -> set[int]:
    """Ray Train workers of the session's Ray, which runs below this process."""
    return processes_mentioning(TRAIN_WORKER) & descendants(os.getpid())


def test_a_killed_train_worker_resumes_from_the_checkpoint_and_ends_as_an_uninterrupted_run(ray_local, tmp_path):
    out = tmp_path / "sweep"
    killed: list[int] = []
    failure: list[BaseException] = []

    def kill_one_worker_during_epoch_two():
        try:
            wait_for("the trial to record epoch 1 of 2 and still run",
                     lambda: (rows := trial_rows(out)) is not None and
                     ((rows["epochs"] == 1) & (rows["optuna_state"] == "RUNNING")).any(), timeout_s=300)
            workers = wait_for("the trial's 2 Ray Train worker processes", lambda: len(ours := train_workers()) == 2
                               and ours, timeout_s=60)
            victim = min(workers)
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread below
            failure.append(exc)

    optuna.storages.RDBStorage("sqlite://")  # import SQLAlchemy before a second thread does
    thread = threading.Thread(target=kill_one_worker_during_epoch_two, daemon=True)
    argv = shlex.split(readme_command_of(README_EXAMPLE).replace("/tmp/ddp_sweep", str(out)))[1:]
    assert argv[:7] == ["sweep", "--space", "tests/search/tiny.yaml", "--arch", ARCH, "--trials", "1"]
    argv[2] = TINY_SPACE  # the README runs in the checkout
    assert argv[argv.index("--epochs") + 1] == "2"  # a worker is killed in epoch 2
    thread.start()
    code = cli.main(argv)
    thread.join(timeout=60)
    assert not failure, failure[0]
    assert code == 0 and killed, "no Ray Train worker was killed during the trial"
    (trial,) = load(out, STUDY).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE, trial.user_attrs.get(records.ERROR)
    run_dir = Path(trial.user_attrs[records.RUN_DIR])
    history = (run_dir / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["1", "2"]  # epoch 2 ran once more, from epoch 1

    recipe = Recipe.from_dict(json.loads((run_dir / "recipe.json").read_text()))
    threads = torch.get_num_threads()
    try:  # one thread per rank, as each Ray Train worker runs with --cpus-per-trial 1
        reference = launch(recipe, workdir=tmp_path / "uninterrupted", nproc=2, device="cpu")
    finally:
        torch.set_num_threads(threads)
    resumed = json.loads((run_dir / "metrics.json").read_text())
    assert {k: resumed[k] for k in METRICS} == pytest.approx({k: reference[k] for k in METRICS}, rel=1e-6)


def test_a_mistake_the_workers_meet_fails_the_trial_at_once_with_its_one_line(ray_local, tmp_path):
    """The data missing where the workers run (the driver's own check saw it elsewhere): every rank raises the
    user's error together, so Ray Train has no worker failure to restart `max_failures` times, and the trial's
    error is the one line a one-worker trial records, not Ray Train's wrapped traceback."""
    missing = tmp_path / "imagenet"
    recipe = Recipe(arch=ARCH, dataset="imagefolder", data_root=str(missing), image_size=32, batch_size=8,
                    queue_size=0, bn_splits=2, epochs=1)
    reported: list[dict] = []
    with pytest.raises(UserError) as raised:
        train_on_workers(recipe.to_dict(), tmp_path / "run", workers=2, cpus=1, gpus=0, max_failures=2,
                         report=reported.append, history=list)
    message = str(raised.value)
    assert f"data_root '{missing}' does not exist" in message and "\n" not in message, message
    assert reported == [] and not (tmp_path / "run" / "recipe.json").exists()  # nothing trained, nothing written


def test_queues_the_driver_closed_stop_the_workers_instead_of_failing_them(ray_local):
    """The driver shuts its queues when Tune stops the trial or it goes down: rank 0's next stop check and epoch
    report then stop every rank (one process here: no group) instead of raising, which Ray Train would restart."""
    from ray.util.queue import Queue

    from lightrecipe.search.tune.data_parallel import _epoch_callback, _stop_check

    results, stop = Queue(actor_options={"num_cpus": 0}), Queue(actor_options={"num_cpus": 0})
    # The worker holds its own handles to the driver's queue actors (copies, as Ray Train hands them over).
    asked_to_stop = _stop_check(copy.copy(stop))
    on_epoch = _epoch_callback(True, copy.copy(results), asked_to_stop)
    on_epoch({"epoch": 1})  # open queues, no stop asked: training goes on
    assert results.get(timeout=10) == ("epoch", {"epoch": 1}) and not asked_to_stop()
    stop.put(True)
    assert asked_to_stop()  # the driver asked
    results.shutdown()  # kills the queue actors
    stop.shutdown()
    assert asked_to_stop()
    with pytest.raises(RunStopped):
        on_epoch({"epoch": 2})
