"""train(recipe, *, workdir, device, report) -> metrics: one short-schedule MoCo run, resumable.

Per epoch: contrastive training on the train split, a kNN monitor on val, `report(metrics)`, history.csv and
a checkpoint. At the end: a linear probe on frozen features (val and test) and test kNN. Nothing here knows
who listens: the CLI turns `report` into a progress bar, the Ray adapter into `tune.report`.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lightrecipe.trainers import schedules
from lightrecipe.trainers.augment import TwoViewAugment
from lightrecipe.trainers.data import Dataset, load_dataset
from lightrecipe.trainers.evaluate import extract_features, knn_top1, linear_probe
from lightrecipe.trainers.model import MoCo
from lightrecipe.trainers.optim import build_optimizer
from lightrecipe.trainers.recipe import Recipe
from lightrecipe.trainers.run_files import RunFiles

Report = Callable[[dict[str, Any]], None]
EVAL_BATCH = 256  # feature extraction batch: no gradients, so larger than training batches is fine


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class Trainer:
    """Everything one optimisation step needs; shared by train() and the `bench train` command."""

    recipe: Recipe
    device: torch.device
    model: MoCo
    optimizer: torch.optim.Optimizer
    augment: TwoViewAugment
    generator: torch.Generator  # drives shuffling and augmentation, so a run is reproducible and resumable
    steps_per_epoch: int

    @classmethod
    def build(cls, recipe: Recipe, device: torch.device, train_size: int) -> "Trainer":
        torch.manual_seed(recipe.seed)
        random.seed(recipe.seed)
        np.random.seed(recipe.seed)
        model = MoCo(recipe).to(device)
        if recipe.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if recipe.compile:
            model.backbone = torch.compile(model.backbone)
            model.key_backbone = torch.compile(model.key_backbone)
        optimizer = build_optimizer([model.backbone, model.projector, model.predictor], recipe)
        generator = torch.Generator(device=device)
        generator.manual_seed(recipe.seed)
        steps = train_size // recipe.batch_size
        if steps == 0:
            from lightrecipe.errors import UserError

            raise UserError(
                f"recipe field 'batch_size' ({recipe.batch_size}) exceeds the {train_size} training images; "
                "lower batch_size or raise data_fraction"
            )
        return cls(recipe, device, model, optimizer, TwoViewAugment(recipe), generator, steps)

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
        alpha = schedules.smoothing_alpha(step, total, r.smoothing_alpha, r.smoothing_schedule, warmup)
        return momentum, alpha

    def step(self, images: torch.Tensor, step: int) -> torch.Tensor:
        """One optimisation step on a uint8 batch; returns the loss (a 0-d tensor, not synced)."""
        return self.optimize(self.views(images), step)

    def views(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Two augmented, normalised views of a uint8 batch."""
        x1, x2 = self.augment(images, self.generator)
        if self.recipe.channels_last:
            x1, x2 = x1.contiguous(memory_format=torch.channels_last), x2.contiguous(memory_format=torch.channels_last)
        return x1, x2

    def optimize(self, views: tuple[torch.Tensor, torch.Tensor], step: int) -> torch.Tensor:
        """Schedules, forward, backward and update for one pair of views."""
        momentum, alpha = self.set_schedules(step)
        x1, x2 = views
        with self.autocast():
            loss = self.model(x1, x2, key_momentum=momentum, alpha=alpha)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def autocast(self):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.recipe.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])


def train(
    recipe: Recipe,
    *,
    workdir: str | Path,
    device: str | torch.device | None = None,
    report: Report | None = None,
) -> dict[str, Any]:
    """Train `recipe` in `workdir`, resuming from its checkpoint if one is there; return the final metrics."""
    files = RunFiles(workdir)
    files.check_recipe(recipe)
    finished = files.finished_metrics()
    if finished is not None:
        return finished
    dev = resolve_device(device)
    data = load_dataset(recipe)  # before anything is written: a bad data path leaves no half-made run folder
    files.prepare(recipe)
    trainer = Trainer.build(recipe, dev, len(data.train))
    history: list[dict[str, Any]] = []
    start_epoch = 1
    checkpoint = files.load_checkpoint()
    if checkpoint is not None:
        trainer.load_state_dict(checkpoint["trainer"])
        history = checkpoint["history"]
        start_epoch = checkpoint["epoch"] + 1

    for epoch in range(start_epoch, recipe.epochs + 1):
        started = time.perf_counter()
        loss, images_per_s = _train_epoch(trainer, data, epoch)
        if not math.isfinite(loss):
            return _diverged(files, history, epoch, loss, backbone_params(trainer))
        row = {
            "epoch": epoch,
            "loss": loss,
            "lr": trainer.optimizer.param_groups[0]["lr"],
            "knn_top1": _knn(trainer, data, "val"),
            "images_per_s": images_per_s,
            "epoch_seconds": time.perf_counter() - started,
        }
        history.append(row)
        files.write_history(history)
        files.save_checkpoint(
            {"recipe": recipe.to_dict(), "epoch": epoch, "history": history, "trainer": trainer.state_dict()}
        )
        if report is not None:
            report(dict(row))

    metrics = dict(history[-1]) if history else {}
    metrics.update(_final_evaluation(trainer, data))
    metrics.update(state="complete", diverged_epoch=None, error="", epochs_run=len(history))
    files.write_metrics(metrics)
    return metrics


def _train_epoch(trainer: Trainer, data: Dataset, epoch: int) -> tuple[float, float]:
    """Mean loss and training throughput of one epoch; the loss is NaN as soon as one step's is not finite."""
    trainer.model.train()
    total = torch.zeros((), device=trainer.device)
    seen, started = 0, time.perf_counter()
    batches = data.train.batches(
        trainer.recipe.batch_size, shuffle=True, drop_last=True, device=trainer.device,
        generator=_cpu_generator(trainer, epoch),
    )
    for i, (images, _) in enumerate(batches):
        loss = trainer.step(images, (epoch - 1) * trainer.steps_per_epoch + i)
        if not torch.isfinite(loss):  # one sync per step is cheap next to a MoCo step, and stops a NaN run at once
            return float("nan"), 0.0
        total += loss
        seen += images.shape[0]
    elapsed = time.perf_counter() - started
    steps = max(seen // trainer.recipe.batch_size, 1)
    return float(total) / steps, seen / max(elapsed, 1e-9)


def _cpu_generator(trainer: Trainer, epoch: int) -> torch.Generator:
    """Shuffling order for an epoch: a function of (seed, epoch), so a resumed run sees the same batches."""
    g = torch.Generator()
    g.manual_seed(trainer.recipe.seed * 100_003 + epoch)
    return g


def _features(trainer: Trainer, data: Dataset, split: str):
    r = trainer.recipe
    return extract_features(
        trainer.model.backbone, getattr(data, split), device=trainer.device, batch_size=EVAL_BATCH,
        precision=r.precision, channels_last=r.channels_last,
    )


def _knn(trainer: Trainer, data: Dataset, split: str) -> float:
    memory = _features(trainer, data, "train")
    query = _features(trainer, data, split)
    r = trainer.recipe
    return knn_top1(*memory, *query, k=r.knn_k, temperature=r.knn_temperature, num_classes=data.num_classes)


def _final_evaluation(trainer: Trainer, data: Dataset) -> dict[str, Any]:
    r = trainer.recipe
    train_f = _features(trainer, data, "train")
    val_f, test_f = _features(trainer, data, "val"), _features(trainer, data, "test")
    probe = linear_probe(
        *train_f, {"val": val_f, "test": test_f}, num_classes=data.num_classes, method=r.probe_method,
        epochs=r.probe_epochs, lr=r.probe_lr, weight_decay=r.probe_weight_decay, seed=r.seed,
    )
    return {
        "linear_top1": probe["val"],
        "test_linear_top1": probe["test"],
        "test_knn_top1": knn_top1(
            *train_f, *test_f, k=r.knn_k, temperature=r.knn_temperature, num_classes=data.num_classes
        ),
        "params": backbone_params(trainer),
    }


def backbone_params(trainer: Trainer) -> int:
    return sum(p.numel() for p in trainer.model.backbone.parameters())


def _diverged(files: RunFiles, history: list[dict[str, Any]], epoch: int, loss: float, params: int) -> dict[str, Any]:
    metrics = dict(history[-1]) if history else {"epoch": epoch - 1}
    metrics.update(
        params=params,
        state="diverged",
        diverged_epoch=epoch,
        error=f"loss became {loss} in epoch {epoch}; lower base_lr or raise temperature",
        epochs_run=len(history),
    )
    files.write_metrics(metrics)
    return metrics
