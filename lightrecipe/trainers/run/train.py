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
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lightrecipe.trainers.data.augment import RowShare, TwoViewAugment
from lightrecipe.trainers.data.datasets import load_dataset
from lightrecipe.trainers.data.splits import Dataset
from lightrecipe.trainers.method import schedules
from lightrecipe.trainers.method.model import MoCo, count_params
from lightrecipe.trainers.method.optim import build_optimizer
from lightrecipe.trainers.method.precision import autocast
from lightrecipe.trainers.method.split_bn import average_batch_norm_stats
from lightrecipe.trainers.parallel.world import (
    World,
    local_bn_splits,
    shard_split,
    wrap_for_gradients,
)
from lightrecipe.trainers.recipe import Recipe
from lightrecipe.trainers.run.outcome import COMPLETE, DIVERGED
from lightrecipe.trainers.run.run_files import RunFiles
from lightrecipe.trainers.run.scoring import final_scores, val_monitor

EpochCallback = Callable[[dict[str, Any]], None]
EPOCH_SEED_STRIDE = 100_003  # epoch seed = recipe seed * stride + epoch: shuffling and crops of one epoch


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def epoch_seed(recipe: Recipe, epoch: int) -> int:
    """The seed of an epoch's batch order and loader crops: a function of (seed, epoch), so resuming repeats it."""
    return recipe.seed * EPOCH_SEED_STRIDE + epoch


@dataclass
class Trainer:
    """Everything one optimisation step needs; shared by train() and the `bench train` command."""

    recipe: Recipe
    device: torch.device
    model: MoCo
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler  # fp16 only (moco-v3 main_moco.py); a no-op otherwise
    augment: TwoViewAugment
    generator: torch.Generator  # drives augmentation on the device, so a run is reproducible and resumable
    steps_per_epoch: int
    world: World = World()
    forward_model: torch.nn.Module | None = None  # what a step calls: `model`, or it wrapped for data parallelism
    skipped_steps: int = 0  # fp16 steps the scaler skipped (gradients overflowed); not a divergence

    @classmethod
    def build(cls, recipe: Recipe, device: torch.device, train_size: int, world: World | None = None) -> "Trainer":
        world = world or World.current()
        recipe.check_train_size(train_size)
        torch.manual_seed(recipe.seed)
        random.seed(recipe.seed)
        np.random.seed(recipe.seed)
        model = MoCo.from_recipe(recipe, world).to(device)
        if recipe.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if recipe.compile:
            model.backbone = torch.compile(model.backbone)
            model.key_backbone = torch.compile(model.key_backbone)
        optimizer = build_optimizer([model.backbone, model.projector, model.predictor], recipe)
        scaler = torch.amp.GradScaler(device.type, enabled=recipe.precision == "fp16")
        generator = torch.Generator(device=device)
        generator.manual_seed(recipe.seed)  # every rank draws the global batch's views and keeps its own rows
        steps = train_size // recipe.batch_size  # batch_size is the global batch
        augment = TwoViewAugment(recipe, RowShare(world.rank, world.size))
        return cls(recipe, device, model, optimizer, scaler, augment, generator, steps, world,
                   wrap_for_gradients(model, world, device))

    @property
    def local_batch(self) -> int:
        return self.recipe.batch_size // self.world.size

    @property
    def total_steps(self) -> int:
        return self.recipe.epochs * self.steps_per_epoch

    def set_schedules(self, step: int) -> tuple[float, float]:
        """Set the lr for `step`; return (key momentum, smoothing alpha) for it."""
        r, total = self.recipe, self.total_steps
        warmup = r.warmup_epochs * self.steps_per_epoch
        lr = schedules.warmup_cosine_lr(step, total, r.lr, warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        momentum = schedules.key_momentum(step, total, r.key_momentum, r.key_momentum_schedule)
        alpha_max = r.smoothing_alpha if r.smoothing != "none" else 0.0  # no smoothing: plain InfoNCE
        at = schedules.schedule_step(step, self.steps_per_epoch, r.smoothing_schedule_unit)
        alpha = schedules.smoothing_alpha(at, total, alpha_max, r.smoothing_schedule, warmup)
        return momentum, alpha

    def step(self, batch: torch.Tensor, step: int) -> torch.Tensor | None:
        """One optimisation step on a uint8 batch; the loss (0-d, not synced), or None when too few images."""
        views = self.views(batch)
        return None if views is None else self.optimize(views, step)

    def views(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Two augmented, normalised views of uint8 images (B, 3, S, S) or loader crops (B, 2, 3, S, S).

        A batch shortened by unreadable files is cut to a multiple of bn_splits; None if no group of 2 is left.
        Ranks agree on the shortest such cut, as gathering keys needs equal shares.
        """
        splits = local_bn_splits(self.recipe.bn_splits, self.world)
        usable = self.world.minimum(batch.shape[0] - batch.shape[0] % splits)
        if usable < 2 * splits:
            return None
        batch = batch[:usable]
        x1, x2 = self.augment.from_crops(batch, self.generator) if batch.dim() == 5 else self.augment(batch, self.generator)
        if self.recipe.channels_last:
            x1, x2 = x1.contiguous(memory_format=torch.channels_last), x2.contiguous(memory_format=torch.channels_last)
        return x1, x2

    def optimize(self, views: tuple[torch.Tensor, torch.Tensor], step: int) -> torch.Tensor:
        """Schedules, forward, backward and update for one pair of views; returns the loss."""
        momentum, alpha = self.set_schedules(step)
        x1, x2 = views
        with self.autocast():
            loss = (self.forward_model or self.model)(x1, x2, key_momentum=momentum, alpha=alpha)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)  # under fp16: skipped when a gradient overflowed
        if self.scaler.is_enabled():
            scale = self.scaler.get_scale()
            self.scaler.update()
            self.skipped_steps += int(self.scaler.get_scale() < scale)  # the scale only drops on a skip
        return self.world.mean(loss.detach())  # every rank sees the global batch's loss (and stops on a NaN)

    def autocast(self):
        return autocast(self.device.type, self.recipe.precision)

    def state_dict(self) -> dict[str, Any]:
        """The resumable state; data-parallel, `ranks` holds every rank's torch RNG states (a collective call).

        The augmentation generator is rank 0's alone: every rank draws the same stream (augment.RowShare)."""
        state = self._own_state()
        if self.world.parallel:
            state["ranks"] = self.world.gather_objects({k: state[k] for k in ("torch_rng", "cuda_rng")})
        return state

    def _own_state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "skipped_steps": self.skipped_steps,
            "generator": self.generator.get_state(),
            "generator_device": self.device.type,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
        }

    def load_state_dict(self, state: dict[str, Any], epoch: int) -> None:
        """Restore a checkpoint's state, also one written on another device type (CPU <-> GPU).

        Tensors come in on the CPU and are copied to this trainer's device. RNG states are restored where they
        apply: the CPU RNG always; the CUDA RNGs on a GPU; the device generator when the device type is the
        same, otherwise it is reseeded from (seed, epoch) so the resumed run stays deterministic.
        """
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])  # moves its state to each parameter's device
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.skipped_steps = int(state.get("skipped_steps", 0))
        restore_generator(self.generator, state["generator"], state.get("generator_device"),
                          reseed=epoch_seed(self.recipe, epoch))  # rank 0's on every rank: one stream of views
        ranks = state.get("ranks", [])
        if self.world.rank > 0:  # this rank's own torch RNG states when saved at this world size
            state = ranks[self.world.rank] if len(ranks) == self.world.size else {"torch_rng": torch.get_rng_state()}
        torch.set_rng_state(state["torch_rng"])
        if self.device.type == "cuda":
            for index, cuda_state in enumerate(state.get("cuda_rng", [])[: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(cuda_state, index)


def restore_generator(generator: torch.Generator, saved: torch.Tensor, saved_device: str | None, *, reseed: int):
    """Set `generator` to a saved state if it was saved on the same device type, else reseed it.

    A CPU generator's state (5056 bytes) and a CUDA one's (16 bytes) do not fit each other's generators.
    Checkpoints from before the device was recorded are recognised by the state's size.
    """
    same = saved_device == generator.device.type if saved_device else saved.numel() == generator.get_state().numel()
    if same:
        generator.set_state(saved)
    else:
        generator.manual_seed(reseed)


def train(
    recipe: Recipe,
    *,
    workdir: str | Path,
    device: str | torch.device | None = None,
    report: EpochCallback | None = None,
) -> dict[str, Any]:
    """Train `recipe` in `workdir`, resuming from its checkpoint if one is there; return the final metrics."""
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
        row, non_finite = _epoch(trainer, data, epoch)
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


def _epoch(trainer: Trainer, data: Dataset, epoch: int) -> tuple[dict[str, Any], str]:
    """Train and monitor one epoch: its history row, or what became non-finite ('' when nothing did)."""
    started, skipped_before = time.perf_counter(), trainer.skipped_steps
    loss, images_per_s = _train_epoch(trainer, data, epoch)
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


def _train_epoch(trainer: Trainer, data: Dataset, epoch: int) -> tuple[float, float]:
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
    reductions, so the result is bit-identical only at this count (recipe.CPU_THREADS: a report's best-recipe file
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
