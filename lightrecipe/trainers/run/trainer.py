"""The Trainer: everything one MoCo optimisation step needs (model, optimiser, views, schedules), and its state.

train.py runs epochs of these steps; `lightrecipe bench train` times them alone. Data-parallel (parallel/world.py),
each rank holds one Trainer: it draws the global batch's views and keeps its rows, and its step's collectives
make the ranks compute what one process computes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lightrecipe.trainers.data.augment import RowShare, TwoViewAugment
from lightrecipe.trainers.method import schedules
from lightrecipe.trainers.method.model import MoCo
from lightrecipe.trainers.method.optim import build_optimizer
from lightrecipe.trainers.method.precision import autocast
from lightrecipe.trainers.parallel.world import World, local_bn_splits, wrap_for_gradients
from lightrecipe.trainers.recipe import Recipe

EPOCH_SEED_STRIDE = 100_003  # epoch seed = recipe seed * stride + epoch: shuffling and crops of one epoch


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def trains_channels_last(recipe: Recipe, world: World, device: torch.device) -> bool:
    """Whether training runs in channels_last memory: as the recipe asks, except with split BatchNorm on a GPU.

    Split BatchNorm regroups each layer's input as (N / s, C * s, H, W), a view of NCHW memory but a transpose
    copy of channels_last, forward and backward, in every BatchNorm of both encoders. Measured on an H200 (bf16,
    batch 256, 224 px, 8 splits; benchmarks/bench_gpu.py): resnet50's MoCo step took 189 ms in channels_last
    against 110 ms in NCHW, mobilenetv3_large_100 and efficientnet_b0 the same in both. On CPUs channels_last
    stays as asked (their convolutions may gain more than the copies cost). One split per device (bn_splits 1,
    or a data-parallel run with bn_splits <= ranks) keeps channels_last. Evaluation is unaffected.
    """
    split_bn = local_bn_splits(recipe.bn_splits, world) > 1
    return recipe.channels_last and not (split_bn and device.type == "cuda")


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
    channels_last: bool = False  # the memory format training runs in (trains_channels_last)

    @classmethod
    def build(cls, recipe: Recipe, device: torch.device, train_size: int, world: World | None = None) -> "Trainer":
        world = world or World.current()
        recipe.check_train_size(train_size)
        torch.manual_seed(recipe.seed)
        random.seed(recipe.seed)
        np.random.seed(recipe.seed)
        model = MoCo.from_recipe(recipe, world).to(device)
        channels_last = trains_channels_last(recipe, world, device)
        if channels_last:
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
                   wrap_for_gradients(model, world, device), channels_last=channels_last)

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
        if self.channels_last:
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
