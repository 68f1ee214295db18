"""The MoCo model: every preset and the five contract archs build and take one optimisation step."""

import pytest
import torch

from lightrecipe.trainers.model import KeyQueue, MoCo
from lightrecipe.trainers.optim import build_optimizer
from lightrecipe.trainers.presets import preset, preset_names
from lightrecipe.trainers.recipe import Recipe

ARCHS = ["mobilenetv3_large_100", "mobilenetv3_small_050", "efficientnet_b0", "resnet18", "resnet50"]
SMALL = dict(image_size=32, batch_size=8, queue_size=32, bn_splits=2, proj_hidden_dim=64, predictor_hidden_dim=0)


def one_step(recipe: Recipe) -> tuple[MoCo, float]:
    torch.manual_seed(0)
    model = MoCo(recipe)
    model.train()
    opt = build_optimizer([model.backbone, model.projector, model.predictor], recipe)
    x1 = torch.randn(recipe.batch_size, 3, recipe.image_size, recipe.image_size)
    x2 = x1 + 0.1 * torch.randn_like(x1)
    key_before = [p.clone() for p in model.key_parameters()]
    loss = model(x1, x2, key_momentum=0.99, alpha=recipe.smoothing_alpha)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert all(p.grad is None for p in model.key_parameters()), "the key encoder must not get gradients"
    assert any(not torch.equal(a, b) for a, b in zip(key_before, model.key_parameters())) or recipe.key_momentum == 1
    return model, loss.item()


@pytest.mark.parametrize("arch", ARCHS)
def test_arch_builds_and_steps(arch):
    model, loss = one_step(Recipe(arch=arch, **SMALL))
    assert torch.isfinite(torch.tensor(loss)) and loss > 0
    assert int(model.queue.ptr) == 8  # one batch of keys enqueued


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_steps(name):
    base = preset(name)
    small = dict(SMALL, arch="mobilenetv3_small_050", predictor_hidden_dim=base.predictor_hidden_dim and 64)
    if base.queue_size == 0:
        small["queue_size"] = 0
    _, loss = one_step(base.replace(**small))
    assert loss > 0


def test_symmetric_in_batch_topk_smoothing_steps():
    r = Recipe(arch="mobilenetv3_small_050", symmetric=True, smoothing="topk", smoothing_alpha=0.1, smoothing_k=3,
               **dict(SMALL, queue_size=0))
    model, loss = one_step(r)
    assert model.queue is None and loss > 0


def test_key_encoder_follows_query_by_ema():
    r = Recipe(arch="mobilenetv3_small_050", **SMALL)
    model = MoCo(r)
    with torch.no_grad():
        for p in model.query_parameters():
            p.add_(1.0)
    k_before = [p.clone() for p in model.key_parameters()]
    model.update_key_encoder(0.9)
    for kb, k, q in zip(k_before, model.key_parameters(), model.query_parameters()):
        torch.testing.assert_close(k, 0.9 * kb + 0.1 * q)


def test_queue_is_fifo_and_wraps():
    queue = KeyQueue(6, 2)
    for i in range(4):  # 4 pushes of 2 keys into a queue of 6: the last push overwrites slots 0-1
        queue.push(torch.full((2, 2), float(i)))
    assert queue.keys[:, 0].tolist() == [3, 3, 1, 1, 2, 2]
    assert int(queue.ptr) == 2


def test_split_bn_keys_do_not_depend_on_batch_order():
    """Keys are computed on a shuffled batch and un-shuffled: each key still belongs to its image."""
    r = Recipe(arch="resnet18", **dict(SMALL, bn_splits=1))
    model = MoCo(r).train()
    x = torch.randn(8, 3, 32, 32)
    keys = model.encode_key(x)
    perm = torch.randperm(8)
    torch.testing.assert_close(model.encode_key(x[perm]), keys[perm], rtol=1e-4, atol=1e-5)
