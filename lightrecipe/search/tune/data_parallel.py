"""One sweep trial as a Ray Train data-parallel run: `--workers-per-trial N` (Ray Train V2 inside Tune).

Ray 2.60 composes the two as its Train + Tune guide describes ("Hyperparameter Tuning with Ray Tune", Train V2,
the default since `RAY_TRAIN_V2_ENABLED` became on by default): the Tune function trainable is the Ray Train
driver. It builds a `TorchTrainer` with N workers (`--cpus-per-trial` / `--gpus-per-trial` each) and calls
`fit()`; Ray Train starts the workers, initialises torch.distributed (gloo on CPU, nccl on GPU) and runs
`train()` on each, which then runs data-parallel (trainers/distributed.py). The trial itself holds no CPU: the
workers hold the resources, and the sweep's concurrency counts trials that fit N workers each.

Rank 0's per-epoch and final metrics travel to the driver through a Ray queue (`ray.util.queue.Queue`), and
the driver reports them to Tune exactly as a one-worker trial does (trainable.py), so the searcher, ASHA and the
trial database see one kind of trial. A worker that dies makes Ray Train restart the worker group (up to
`max_failures` times); every rank's `train()` then resumes from the run folder's last checkpoint.

A user's mistake that shows only on the workers (the data missing on a node) is raised on every rank together
(`World.agree`); the workers then end without an error, so Ray Train does not restart them `max_failures` times
for nothing, and rank 0's one line fails the trial as a one-worker trial's does.

When Tune stops the trial (ASHA, a signal, the time budget), its `tune.report` raises in the driver; the driver
then asks the workers to stop through a second queue, which rank 0 reads every `train.STOP_POLL_STEPS` steps
and at every epoch's end and passes to the other ranks, so all of them leave train() together, within a few
steps, and the run ends cleanly (resumable from its last epoch's checkpoint) instead of training on with nobody
listening. Queues the driver has closed read as a stop too, not as a worker failure Ray Train would restart.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable

from lightrecipe.errors import UserError

QUEUE_POLL_S = 1.0  # how often the driver looks for worker results while fit() runs
STOP_WAIT_S = 600.0  # how long a stopped trial's driver waits for its workers to finish the epoch they are in
# Tune hands a stopped trial's actor to the next trial (reuse_actors) only if the old trial's thread ends
# within this many seconds of being asked (FunctionTrainable.reset_config, read in the actor at each reuse;
# 2 s by default). Ours ends once its workers have left train(): several seconds, which would make the next
# trial fail with "Could not re-use actor" instead of waiting for the CPUs they free.
REUSE_WAIT_VARIABLE = "TUNE_FUNCTION_THREAD_TIMEOUT_S"
EPOCH, FINAL, USER_ERROR = "epoch", "final", "user_error"
WORKER_NODES = "worker_nodes"  # a final metric of a data-parallel trial: each rank's node (devices.node_label),
#                                 space-separated in rank order (a string, as every tracker takes it)
TRAIN_RUN_FOLDER = "ray-train"  # Ray Train's own run state, inside the trial's run folder


def train_on_workers(recipe: dict[str, Any], run_dir: Path, *, workers: int, cpus: float, gpus: float,
                     max_failures: int, report: Callable[[dict[str, Any]], None],
                     history: Callable[[], list[dict[str, Any]]]) -> dict[str, Any]:
    """train() on `workers` Ray Train workers; epoch metrics go to `report`, each epoch once and in order
    (`EpochRelay`, which reads the run folder's epochs through `history`); returns the final metrics."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.util.queue import Queue

    os.environ[REUSE_WAIT_VARIABLE] = str(int(STOP_WAIT_S) + 60)  # this trial actor's process, see above
    results, stop = Queue(actor_options={"num_cpus": 0}), Queue(actor_options={"num_cpus": 0})
    per_worker = {"CPU": cpus, **({"GPU": gpus} if gpus > 0 else {})}
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"recipe": recipe, "run_dir": str(run_dir), "cpus": cpus, "gpus": gpus,
                           "results": results, "stop": stop},
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=gpus > 0, resources_per_worker=per_worker),
        run_config=RunConfig(name=TRAIN_RUN_FOLDER, storage_path=str(run_dir),
                             failure_config=FailureConfig(max_failures=max_failures)),
    )
    outcome: dict[str, Any] = {}
    fit = threading.Thread(target=_fit, args=(trainer, outcome), daemon=True)
    fit.start()
    final, user_error, relay = None, None, EpochRelay(report, history)
    try:
        while fit.is_alive() or not results.empty():
            for kind, payload in _drain(results):
                if kind == EPOCH:
                    relay.forward(payload)
                elif kind == USER_ERROR:
                    user_error = payload
                else:
                    final = payload
        fit.join()
    except BaseException:  # Tune stopped the trial (its report raised) or the driver is going down
        stop.put(True)
        fit.join(STOP_WAIT_S)
        raise
    finally:
        results.shutdown()
        stop.shutdown()
    if user_error is not None:
        raise UserError(user_error)
    if "error" in outcome:
        raise outcome["error"]
    if final is None:
        raise RuntimeError(f"the {workers} Ray Train workers finished without final metrics")
    return final


class EpochRelay:
    """Passes rank 0's epoch rows on to `report` once each, with none missing.

    Rank 0 writes an epoch's checkpoint before it sends the epoch, so a worker group that Ray Train restarts
    between the two resumes at the next epoch, and the one in between would never reach Tune: ASHA would judge
    that rung without it. The run folder's history holds it, so an epoch that arrives after a gap brings the
    missing ones first. Epochs the folder held when the workers started went out already (trainable.py).
    """

    def __init__(self, report: Callable[[dict[str, Any]], None], history: Callable[[], list[dict[str, Any]]]):
        self.report, self.history = report, history
        self.sent = {int(row["epoch"]) for row in history()}

    def forward(self, row: dict[str, Any]) -> None:
        epoch = int(row["epoch"])
        if any(earlier not in self.sent for earlier in range(1, epoch)):
            for earlier in self.history():
                if int(earlier["epoch"]) < epoch and int(earlier["epoch"]) not in self.sent:
                    self._send(earlier)
        if epoch not in self.sent:
            self._send(row)

    def _send(self, row: dict[str, Any]) -> None:
        self.sent.add(int(row["epoch"]))
        self.report(row)


def _fit(trainer, outcome: dict[str, Any]) -> None:
    try:
        trainer.fit()
    except BaseException as exc:  # noqa: BLE001 - raised again in the driver's own thread
        outcome["error"] = exc


def _drain(results) -> list[tuple[str, dict[str, Any]]]:
    from ray.util.queue import Empty

    try:
        items = [results.get(timeout=QUEUE_POLL_S)]
    except Empty:
        return []
    while not results.empty():
        items.append(results.get_nowait())
    return items


def _stop_check(stop):
    """Rank 0's reading of the stop queue: True once the driver asked the workers to stop, or closed its queues
    (it stopped the trial, or went down): nobody is listening, and an error raised here would count as a worker
    failure, which Ray Train answers by starting the workers again."""

    def asked_to_stop() -> bool:
        try:
            return not stop.empty()
        except Exception:  # noqa: BLE001 - the queue actor is gone (RayActorError and kin)
            return True

    return asked_to_stop


def _epoch_callback(lead: bool, results, asked_to_stop):
    """train()'s per-epoch report on a worker: rank 0 sends the row; every rank stops when rank 0 was asked to or
    cannot send (a broadcast, at the same point of every rank's train())."""
    from lightrecipe.trainers.parallel.world import World
    from lightrecipe.trainers.run.outcome import RunStopped

    def on_epoch(row: dict[str, Any]) -> None:
        stopping = False
        if lead:
            try:
                results.put((EPOCH, row))
                stopping = asked_to_stop()
            except Exception:  # noqa: BLE001 - the queue actors are gone: see _stop_check
                stopping = True
        if World.current().from_rank0(stopping):
            raise RunStopped(f"stopped after epoch {row.get('epoch')}")

    return on_epoch


def _worker_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: train() inside the process group Ray Train set up; rank 0 sends the results."""
    import ray.train
    import ray.train.torch
    import torch

    from lightrecipe.search.tune.devices import check_cuda, node_label
    from lightrecipe.trainers.parallel.world import World
    from lightrecipe.trainers.recipe import Recipe
    from lightrecipe.trainers.run.outcome import RunStopped
    from lightrecipe.trainers.run.train import train

    check_cuda(config["gpus"])
    torch.set_num_threads(max(1, int(round(config["cpus"]))))
    lead = ray.train.get_context().get_world_rank() == 0
    results = config["results"]
    device = ray.train.torch.get_device() if config["gpus"] > 0 else torch.device("cpu")
    recipe = Recipe.from_dict(config["recipe"], source="trial recipe")
    asked_to_stop = _stop_check(config["stop"])  # every rank passes it to train(); only rank 0's is asked
    try:
        metrics = train(recipe, workdir=config["run_dir"], device=device,
                        report=_epoch_callback(lead, results, asked_to_stop), stop=asked_to_stop)
    except RunStopped:
        return
    except UserError as exc:  # raised on every rank at once (World.agree): no rank is left waiting
        if lead:
            results.put((USER_ERROR, str(exc)))
        return  # not a worker failure: restarting the group would only meet the same mistake again
    nodes = World.current().gather_objects(node_label())  # every rank's, in rank order: where the trial ran
    if lead:
        results.put((FINAL, {**metrics, WORKER_NODES: " ".join(nodes)}))
