"""Optimisers against hand-computed updates: LARS's trust ratio (moco-v3 moco/optimizer.py), and weight decay
where the recipe puts it for SGD and AdamW."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from lightrecipe.trainers.method.optim import LARS_TRUST_COEFFICIENT, build_optimizer
from lightrecipe.trainers.recipe import Recipe

LR, WD, MOMENTUM = 0.5, 0.1, 0.9


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))  # a 2-d weight, and 1-d bias / norm weight / norm bias
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p))
    return net


def recipe(optimizer: str, decay_all: bool) -> Recipe:
    return Recipe(optimizer=optimizer, base_lr=LR, lr_scaling="none", weight_decay=WD, momentum=MOMENTUM,
                  wd_on_norm_and_bias=decay_all)


def lars_reference(w: np.ndarray, grads: list[np.ndarray], decay: bool, excluded: bool) -> np.ndarray:
    """moco-v3's LARS, written out: for a non-excluded weight, update = g + wd * w scaled by the trust ratio
    0.001 * ||w|| / ||update||; momentum buffer mu = 0.9 * mu + update; w -= lr * mu."""
    mu = np.zeros_like(w)
    for g in grads:
        update = g + (WD * w if decay else 0.0)
        if not excluded and w.ndim > 1:
            wn, un = np.linalg.norm(w), np.linalg.norm(update)
            update = update * (LARS_TRUST_COEFFICIENT * wn / un if wn > 0 and un > 0 else 1.0)
        mu = MOMENTUM * mu + update
        w = w - LR * mu
    return w


@pytest.mark.parametrize("decay_all", [False, True])
def test_lars_matches_the_trust_ratio_update(decay_all):
    net = tiny_net()
    opt = build_optimizer([net], recipe("lars", decay_all))
    start = {name: p.detach().double().numpy().copy() for name, p in net.named_parameters()}
    grads = {name: [np.random.default_rng(i).normal(size=p.shape) for i in range(3)] for name, p in net.named_parameters()}
    for step in range(3):
        for name, p in net.named_parameters():
            p.grad = torch.tensor(grads[name][step], dtype=p.dtype)
        opt.step()
    for name, p in net.named_parameters():
        is_matrix = p.ndim > 1
        expected = lars_reference(start[name], grads[name], decay=decay_all or is_matrix, excluded=not is_matrix)
        np.testing.assert_allclose(p.detach().double().numpy(), expected, rtol=1e-5, atol=1e-6, err_msg=name)
    # the trust ratio did act: the matrix moved far less than one plain SGD step (lr * g) would move it
    moved = np.abs(net[0].weight.detach().double().numpy() - start["0.weight"]).max()
    assert moved < 0.05 * LR * np.abs(grads["0.weight"][0]).max()


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
@pytest.mark.parametrize("decay_all", [False, True])
def test_weight_decay_lands_where_the_recipe_says(optimizer, decay_all):
    """With zero gradients a step is pure weight decay: w * (1 - lr * wd) for SGD's first step and for AdamW's
    decoupled decay; 1-d parameters (norms, biases) keep their values unless wd_on_norm_and_bias."""
    net = tiny_net()
    opt = build_optimizer([net], recipe(optimizer, decay_all))
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for name, p in net.named_parameters():
        decayed = decay_all or p.ndim > 1
        expected = before[name] * (1 - LR * WD) if decayed else before[name]
        torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=1e-7, msg=name)


def test_adamw_uses_recipe_momentum_as_beta1():
    opt = build_optimizer([tiny_net()], Recipe(optimizer="adamw", momentum=0.8))
    assert all(g["betas"] == (0.8, 0.999) for g in opt.param_groups)
