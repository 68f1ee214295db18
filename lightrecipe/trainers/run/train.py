"""train(recipe, *, workdir, device, report) -> metrics: one short-schedule MoCo run, resumable.

Per epoch: contrastive training on the train split, a kNN monitor on val, `report(metrics)`, history.csv and
a checkpoint. At the end: a linear probe on frozen features (val and test) and test kNN. Nothing here knows
who listens: the CLI turns `report` into a progress bar, the Ray adapter into `tune.report`.

Inside a torch.distributed process group (distributed.py) the same function is one rank of a data-parallel
run: each rank reads its share of every global batch, features are extracted per rank and gathered, and
rank 0 alone writes the run folder; every rank resumes from the same checkpoint.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import torch

from lightrecipe.trainers.data.datasets import load_dataset
from lightrecipe.trainers.data.splits import Dataset
from lightrecipe.trainers.method.model import count_params
from lightrecipe.trainers.method.split_bn import average_batch_norm_stats
from lightrecipe.trainers.parallel.world import World, shard_split
from lightrecipe.trainers.recipe import Recipe
from lightrecipe.trainers.run.outcome import COMPLETE, DIVERGED, RunStopped
from lightrecipe.trainers.run.run_files import RunFiles
from lightrecipe.trainers.run.scoring import final_scores, val_monitor
from lightrecipe.trainers.run.trainer import Trainer, epoch_seed, resolve_device

EpochCallback = Callable[[dict[str, Any]], None]
StopCheck = Callable[[], bool]
STOP_POLL_STEPS = 10  # a stopped data-parallel trial ends within this many steps, not at the end of its epoch


def train(
    recipe: Recipe,
    *,
    workdir: str | Path,
    device: str | torch.device | None = None,
    report: EpochCallback | None = None,
    stop: StopCheck | None = None,
) -> dict[str, Any]:
    """Train `recipe` in `workdir`, resuming from its checkpoint if one is there; return the final metrics.

    `stop`, if given (data-parallel: on every rank), is asked every STOP_POLL_STEPS training steps on rank 0;
    when it answers True, every rank raises RunStopped at that step."""
    world = World.current()
    lead = world.rank == 0  # the one rank that writes the run folder
    files = RunFiles(workdir)
    world.agree(lambda: files.check_recipe(recipe))  # a folder of another recipe: every rank stops, none waits
    finished = world.from_rank0(files.finished_metrics() if lead else None)  # one decision for every rank
    if finished is not None:
        return finished
    dev = resolve_device(device)
    # Before anything is written: a bad data path leaves no half-made run folder. Data-parallel, a rank whose
    # node lacks the data stops every rank with its one line (World.agree) instead of leaving them waiting.
    data = world.agree(lambda: _checked_data(recipe))
    if lead:
        files.prepare(recipe)
    trainer = Trainer.build(recipe, dev, len(data.train), world)
    start_epoch, history = _resume(trainer, files, data)

    for epoch in range(start_epoch, recipe.epochs + 1):
        row, non_finite = _epoch(trainer, data, epoch, stop)
        if non_finite:
            return _diverged(files if lead else None, history, epoch, non_finite, trainer)
        history.append(world.from_rank0(row))  # one set of numbers for the run, whichever rank reports it
        state = trainer.state_dict()
        if lead:
            files.write_history(history)
            files.save_checkpoint({"recipe": recipe.to_dict(), "epoch": epoch, "history": history,
                                   "trainer": state, "skipped_files": data.skipped_files()})
        if report is not None:
            report(dict(history[-1]))
    return _finish(trainer, files if lead else None, history, data)


def _checked_data(recipe: Recipe) -> Dataset:
    data = load_dataset(recipe)
    recipe.check_train_size(len(data.train))
    return data


def _epoch(trainer: Trainer, data: Dataset, epoch: int, stop: StopCheck | None) -> tuple[dict[str, Any], str]:
    """Train and monitor one epoch: its history row, or what became non-finite ('' when nothing did)."""
    started, skipped_before = time.perf_counter(), trainer.skipped_steps
    loss, images_per_s = _train_epoch(trainer, data, epoch, stop)
    if not math.isfinite(loss):
        return {}, f"loss became {loss}"
    average_batch_norm_stats(trainer.model, trainer.world)
    monitor = val_monitor(trainer.model.backbone, data, trainer.recipe, trainer.device)  # knn_top1, feature_rank
    pool_skipped_files(data, trainer.world)
    if not math.isfinite(monitor["knn_top1"]):
        return {}, "the features became non-finite (the weights overflowed after the last finite loss)"
    return {
        "epoch": epoch,
        "loss": loss,
        "lr": trainer.optimizer.param_groups[0]["lr"],
        **monitor,
        "images_per_s": images_per_s,
        "epoch_seconds": time.perf_counter() - started,
        "skipped_steps": trainer.skipped_steps - skipped_before,
        "skipped_files": len(data.skipped_files()),
    }, ""


def _finish(trainer: Trainer, files: RunFiles | None, history: list[dict[str, Any]], data: Dataset) -> dict[str, Any]:
    """The final metrics: the last epoch's row, the final scores (kNN, probe, test) and how the run went."""
    metrics = dict(history[-1]) if history else {}
    metrics.update(final_scores(trainer.model.backbone, data, trainer.recipe, trainer.device))  # rank 0's
    pool_skipped_files(data, trainer.world)
    metrics.update(params=backbone_params(trainer), skipped_files=len(data.skipped_files()),
                   skipped_steps=trainer.skipped_steps, state=COMPLETE, diverged_epoch=None, error="",
                   epochs_run=len(history), **cpu_threads(trainer))
    if files is not None:
        files.write_metrics(metrics)
    return metrics


def pool_skipped_files(data: Dataset, world: World) -> None:
    """Every rank learns the files every rank skipped as unreadable, then all decide the 1% rule on the whole
    split together (the same answer on every rank: none is left waiting in a collective). The run's count of
    skipped files and its checkpoint then cover every rank's share."""
    if world.parallel:
        data.restore_skipped(sorted(set().union(*world.gather_objects(data.skipped_files()))))
    data.check_unreadable()


def _resume(trainer: Trainer, files: RunFiles, data: Dataset) -> tuple[int, list[dict[str, Any]]]:
    """The first epoch to run and the history so far: from the run folder's checkpoint, if it has one.

    Rank 0 reads it and sends it to the others: on a shared file system a rank that saw a stale file would
    start at another epoch, and the collectives would hang."""
    world = trainer.world
    checkpoint = world.from_rank0(files.load_checkpoint() if world.rank == 0 else None)
    if checkpoint is None:
        return 1, []
    start_epoch = checkpoint["epoch"] + 1
    trainer.load_state_dict(checkpoint["trainer"], start_epoch)
    data.restore_skipped(checkpoint.get("skipped_files", []))
    return start_epoch, checkpoint["history"]


def _train_epoch(trainer: Trainer, data: Dataset, epoch: int, stop: StopCheck | None = None) -> tuple[float, float]:
    """Mean loss over the global batch and training throughput (images/s of the global batch) of one epoch; the
    loss is NaN as soon as one step's is not finite on any rank (all ranks leave the loop at the same step)."""
    r, world = trainer.recipe, trainer.world
    trainer.model.train()
    total = torch.zeros((), device=trainer.device)
    steps, seen, started = 0, 0, time.perf_counter()
    shuffle = torch.Generator().manual_seed(epoch_seed(r, epoch))
    batches = shard_split(data.train, world).training_batches(
        trainer.local_batch, device=trainer.device, generator=shuffle, crop_scale=trainer.augment.crop_scale,
        seed=epoch_seed(r, epoch))
    for i, batch in enumerate(batches):
        if stop is not None and i % STOP_POLL_STEPS == 0 and world.from_rank0(world.rank == 0 and bool(stop())):
            raise RunStopped(f"stopped in epoch {epoch}, at step {i}")
        loss = trainer.step(batch, (epoch - 1) * trainer.steps_per_epoch + i)
        if loss is None:  # a batch of mostly unreadable files: nothing to learn from
            continue
        # One sync per step is cheap next to a MoCo step, and stops a NaN run at once on every rank together.
        if not world.minimum(int(bool(torch.isfinite(loss)))):
            return float("nan"), 0.0
        total += loss
        steps += 1
        seen += batch.shape[0] * world.size
    elapsed = time.perf_counter() - started
    return float(world.mean(total / max(steps, 1))), seen / max(elapsed, 1e-9)  # each rank's loss is its share's


def backbone_params(trainer: Trainer) -> int:
    return count_params(trainer.model.backbone)


def cpu_threads(trainer: Trainer) -> dict[str, int]:
    """{"cpu_threads": n} for a one-process CPU run, {} otherwise: torch's thread count sets the order of CPU
    reductions, so the result is bit-identical only at this count (recipe_text.CPU_THREADS: a report's best-recipe file
    carries it, and `lightrecipe train --recipe` trains with it). The count of the attempt that finished the run."""
    if trainer.device.type != "cpu" or trainer.world.size > 1:
        return {}
    return {"cpu_threads": torch.get_num_threads()}


def divergence_advice(recipe: Recipe) -> str:
    """What to try after a non-finite loss, with the recipe's current values, precision included."""
    tips = [f"lower base_lr (now {recipe.base_lr:g})", f"raise temperature (now {recipe.temperature:g})",
            f"warm up longer (warmup_epochs now {recipe.warmup_epochs:g})"]
    if recipe.precision == "fp16":
        tips.append("or precision bf16 or fp32 (fp16 activations overflow above 65504; steps the gradient scaler "
                    "skips are not divergence)")
    elif recipe.precision == "bf16":
        tips.append("or precision fp32")
    return ", ".join(tips) + (" (precision is fp32 already)" if recipe.precision == "fp32" else "")


def _diverged(files: RunFiles | None, history: list[dict[str, Any]], epoch: int, what: str,
              trainer: Trainer) -> dict[str, Any]:
    """End the run as diverged in `epoch`, keeping the epochs before it; `what` says what went non-finite."""
    metrics = dict(history[-1]) if history else {"epoch": epoch - 1}
    metrics.update(
        params=backbone_params(trainer),
        state=DIVERGED,
        diverged_epoch=epoch,
        error=f"{what} in epoch {epoch}; try: {divergence_advice(trainer.recipe)}",
        epochs_run=len(history),
        skipped_steps=trainer.skipped_steps,
        **cpu_threads(trainer),
    )
    if files is not None:
        files.write_metrics(metrics)
    return metrics
