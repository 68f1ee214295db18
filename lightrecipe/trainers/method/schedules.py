"""Pure schedule functions of training progress, evaluated per iteration.

`step` counts optimiser steps from 0, `total` is the number of steps in the run. Each function returns the
value to use at that step; none of them keep state.
"""

from __future__ import annotations

import math


def cosine(step: float, total: float, start: float, end: float) -> float:
    """Half-cosine from `start` (step 0) to `end` (step total); clamped outside [0, total]."""
    if total <= 0:
        return end
    progress = min(max(step / total, 0.0), 1.0)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine_lr(step: float, total: float, peak: float, warmup: float, final: float = 0.0) -> float:
    """Linear warm-up from 0 (step 0) towards `peak` over `warmup` steps, then cosine decay to `final`.

    As moco-v3 main_moco.py `adjust_learning_rate` (lr * epoch / warmup_epochs with a fractional epoch, then a
    half cosine over the rest): never above `peak`, also when `warmup` is a fraction of one step.
    """
    if warmup > 0 and step < warmup:
        return peak * step / warmup
    return cosine(step - warmup, total - warmup, peak, final)


def key_momentum(step: float, total: float, base: float, schedule: str) -> float:
    """EMA momentum of the key encoder: constant (MoCo v2) or cosine from `base` to 1 (MoCo v3, BYOL)."""
    if schedule == "constant":
        return base
    if schedule == "cosine":
        return cosine(step, total, base, 1.0)
    raise ValueError(f"key momentum schedule {schedule!r}; valid: constant, cosine")


def schedule_step(step: int, steps_per_epoch: int, unit: str) -> int:
    """The step a schedule is read at: `step` itself, or with unit "epoch" the first step of its epoch, so that
    the value changes once per epoch (as schedules written per epoch do)."""
    if unit == "step":
        return step
    if unit == "epoch":
        return step - step % steps_per_epoch
    raise ValueError(f"schedule unit {unit!r}; valid: step, epoch")


def smoothing_alpha(step: float, total: float, alpha_max: float, schedule: str, warmup: float = 0.0) -> float:
    """Smoothing mass: constant; `warmup`: 0 during warm-up steps, alpha_max after;
    `cosine`: alpha_max * (1 - cos(pi * step / total)) / 2, rising from 0 (docs/science.md)."""
    if schedule == "constant":
        return alpha_max
    if schedule == "warmup":
        return 0.0 if step < warmup else alpha_max
    if schedule == "cosine":
        return cosine(step, total, 0.0, alpha_max)
    raise ValueError(f"smoothing schedule {schedule!r}; valid: constant, warmup, cosine")
