"""The W&B logging actor's `run()`, in this process: when it returns, the run's file is whole and W&B's service
process is gone, so Ray killing the actor (and its children) right after loses nothing."""

from __future__ import annotations

import os
import queue
from pathlib import Path

import pytest

from lightrecipe.search.tune.wandb_actor import RecipeLoggingActor
from lightrecipe.trainers.run import trackers
from tests import wandb_offline


def child_pids() -> set[int]:
    """This process's living children, read from /proc (W&B's service is one)."""
    me, found = os.getpid(), set()
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # not a process, or gone meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        if entry.name.isdigit() and int(fields[1]) == me and fields[0] != "Z":
            found.add(int(entry.name))
    return found


@pytest.mark.slow  # W&B starts its service process
def test_run_returns_only_after_w_and_b_wrote_the_whole_run_and_its_service_exited(tmp_path, monkeypatch):
    from ray.air.integrations.wandb import _QueueItem

    wandb_offline.offline(monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)  # the actor changes into its trial folder; the test's own folder is restored
    monkeypatch.setenv("WANDB_START_METHOD", "thread")  # run() sets it, as it does in its own Ray worker
    before = child_pids()
    items: queue.Queue = queue.Queue()
    for epoch in (1, 2):
        items.put((_QueueItem.RESULT, {"epoch": epoch, "knn_top1": 0.5 + epoch / 10, "training_iteration": epoch}))
    items.put((_QueueItem.RESULT, {"config": {trackers.STATE_TAG: "complete"}, "training_iteration": 2}))
    items.put((_QueueItem.END, None))
    recipe = {"arch": "mobilenetv3_small_050", "temperature": 0.2}
    actor = RecipeLoggingActor(logdir=str(tmp_path), queue=items, exclude=[], to_config=[], project="p",
                               dir=str(tmp_path), id="t0", name="trial-0000",
                               config={trackers.RECIPE_CONFIG: recipe, "number": 0})
    actor.run()

    assert child_pids() <= before  # W&B's service process has exited: nothing is left for a kill to cut short
    (run,) = wandb_offline.read_runs(tmp_path / "wandb")
    assert run.exit_code == 0 and run.config[trackers.STATE_TAG] == "complete"
    assert run.history["knn_top1"] == {1: 0.6, 2: 0.7}
    assert run.config[trackers.RECIPE_CONFIG] == recipe and len(run.artifacts) == 1
