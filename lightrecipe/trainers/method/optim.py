"""Optimisers for the recipe's `optimizer` field: SGD (MoCo v2), LARS (MoCo v3), AdamW."""

from __future__ import annotations

import torch
import torch.nn as nn

from lightrecipe.trainers.recipe import Recipe

LARS_TRUST_COEFFICIENT = 0.001  # You et al. 2017, MoCo v3's LARS


class LARS(torch.optim.Optimizer):
    """SGD with momentum whose step for each weight matrix is scaled by trust * ||w|| / ||grad + wd * w||.

    Parameter groups with `lars_exclude=True` (norms and biases, as in MoCo v3) take plain SGD steps.
    """

    def __init__(self, params, lr: float, weight_decay: float = 0.0, momentum: float = 0.9,
                 trust_coefficient: float = LARS_TRUST_COEFFICIENT):
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                        trust_coefficient=trust_coefficient, lars_exclude=False)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                update = p.grad.add(p, alpha=group["weight_decay"])
                if not group["lars_exclude"] and p.ndim > 1:
                    w_norm, u_norm = torch.norm(p), torch.norm(update)
                    trust = torch.where(
                        (w_norm > 0) & (u_norm > 0), group["trust_coefficient"] * w_norm / u_norm, torch.ones_like(w_norm)
                    )
                    update = update.mul(trust)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.mul_(group["momentum"]).add_(update)
                p.add_(buf, alpha=-group["lr"])


def parameter_groups(modules: list[nn.Module], recipe: Recipe) -> list[dict]:
    """One group, or two when norms and biases (1-d parameters) are kept out of weight decay."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    if recipe.wd_on_norm_and_bias:
        return [{"params": params, "weight_decay": recipe.weight_decay}]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    return [
        {"params": decay, "weight_decay": recipe.weight_decay},
        {"params": no_decay, "weight_decay": 0.0, "lars_exclude": True},
    ]


def build_optimizer(modules: list[nn.Module], recipe: Recipe) -> torch.optim.Optimizer:
    groups = parameter_groups(modules, recipe)
    if recipe.optimizer == "sgd":
        for g in groups:
            g.pop("lars_exclude", None)
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum)
    if recipe.optimizer == "lars":
        return LARS(groups, lr=recipe.lr, momentum=recipe.momentum)
    if recipe.optimizer == "adamw":
        for g in groups:
            g.pop("lars_exclude", None)
        return torch.optim.AdamW(groups, lr=recipe.lr, betas=(recipe.momentum, 0.999))
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}")
