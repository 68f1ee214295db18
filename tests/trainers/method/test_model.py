"""The MoCo model contract, over timm backbones as timm's own contract tests do: one optimisation step
moves the key encoder by exactly the EMA and the query encoder by the gradient; every preset steps."""

import pytest
import torch
import torch.nn.functional as F

from lightrecipe.trainers.method.model import KeyQueue, MoCo, mlp
from lightrecipe.trainers.method.optim import build_optimizer
from lightrecipe.trainers.presets import list_presets
from lightrecipe.trainers.recipe import Recipe, preset

# ResNet (BatchNorm2d), MobileNet-V3 / EfficientNet / RegNet (timm's BatchNormAct2d), ConvNeXt (LayerNorm).
ARCHS = ["resnet10t", "mobilenetv3_small_050", "efficientnet_b0", "regnetx_002", "convnext_atto"]
SMALL = dict(image_size=32, batch_size=8, queue_size=32, bn_splits=2, proj_hidden_dim=64, predictor_hidden_dim=0)
MOMENTUM = 0.9


def one_step(recipe: Recipe) -> tuple[MoCo, float]:
    """One forward/backward/step that checks the EMA exactly and that the query encoder learned."""
    torch.manual_seed(0)
    model = MoCo.from_recipe(recipe).train()
    with torch.no_grad():  # a key encoder that differs from the query one, so the EMA has something to do
        for p in model.key_parameters():
            p.add_(0.01 * torch.randn_like(p))
    opt = build_optimizer([model.backbone, model.projector, model.predictor], recipe)
    x1 = torch.randn(recipe.batch_size, 3, recipe.image_size, recipe.image_size)
    x2 = x1 + 0.1 * torch.randn_like(x1)
    key_before = [p.clone() for p in model.key_parameters()]
    query_before = [p.clone() for p in model.query_parameters()]
    loss = model(x1, x2, key_momentum=MOMENTUM, alpha=recipe.smoothing_alpha)
    for k, kb, qb in zip(model.key_parameters(), key_before, query_before):
        torch.testing.assert_close(k, MOMENTUM * kb + (1 - MOMENTUM) * qb, rtol=1e-6, atol=1e-7)
        assert not torch.equal(k, kb) or torch.equal(kb, qb)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert all(p.grad is None for p in model.key_parameters()), "the key encoder must not get gradients"
    moved = {id(p) for p, qb in zip(model.query_parameters(), query_before) if not torch.equal(p, qb)}
    for p in model.query_parameters():  # (zero-init residual branches get no gradient at the first step)
        if p.grad is not None and p.grad.abs().sum() > 0:
            assert id(p) in moved, "every query parameter with a gradient moves"
    for part in (model.backbone, model.projector):
        assert any(id(p) in moved for p in part.parameters()), f"{type(part).__name__} did not learn"
    return model, loss.item()


@pytest.mark.parametrize("arch", ARCHS)
def test_arch_builds_and_steps(arch):
    model, loss = one_step(Recipe(arch=arch, **SMALL))
    assert torch.isfinite(torch.tensor(loss)) and loss > 0
    assert int(model.queue.ptr) == 8  # one batch of keys enqueued


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_steps(name):
    base = preset(name)
    small = dict(SMALL, arch="mobilenetv3_small_050", predictor_hidden_dim=base.predictor_hidden_dim and 64,
                 bn_splits=min(base.bn_splits, 2), precision="fp32")
    if base.queue_size == 0:
        small["queue_size"] = 0
    _, loss = one_step(base.replace(**small))
    assert loss > 0


def test_symmetric_in_batch_topk_smoothing_steps():
    r = Recipe(arch="mobilenetv3_small_050", symmetric=True, smoothing="topk", smoothing_alpha=0.1, smoothing_k=3,
               **dict(SMALL, queue_size=0))
    model, loss = one_step(r)
    assert model.queue is None and loss > 0


def test_graded_smoothing_reaches_the_loss_through_the_recipe():
    r = Recipe(arch="mobilenetv3_small_050", smoothing="graded", smoothing_alpha=0.2, smoothing_groups="2:1 6:1 12:1",
               **SMALL)
    model, loss = one_step(r)
    assert model.smoothing_mode == "graded" and [size for size, _ in model.smoothing_groups] == [2, 6, 12]
    assert loss > 0


def test_queue_is_fifo_and_wraps():
    queue = KeyQueue(6, 2)
    for i in range(4):  # 4 pushes of 2 keys into a queue of 6: the last push overwrites slots 0-1
        queue.push(torch.full((2, 2), float(i)))
    assert queue.keys[:, 0].tolist() == [3, 3, 1, 1, 2, 2]
    assert int(queue.ptr) == 2


def test_keys_follow_their_images_through_the_shuffle():
    """Keys are computed on a shuffled batch and un-shuffled: in eval mode (no batch statistics) each key is
    exactly its own image's, whatever the batch order."""
    r = Recipe(arch="resnet10t", **dict(SMALL, bn_splits=4))
    model = MoCo.from_recipe(r).eval()
    x = torch.randn(8, 3, 32, 32)
    expected = F.normalize(model.key_projector(model.key_backbone(x)), dim=1)
    torch.testing.assert_close(model.encode_key(x), expected, rtol=1e-4, atol=1e-5)
    perm = torch.randperm(8)
    torch.testing.assert_close(model.encode_key(x[perm]), expected[perm], rtol=1e-4, atol=1e-5)


def test_embeddings_are_float32_under_autocast():
    r = Recipe(arch="mobilenetv3_small_050", **SMALL)
    model = MoCo.from_recipe(r).train()
    x = torch.randn(8, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        q, k = model.encode_query(x), model.encode_key(x)
    assert q.dtype == k.dtype == torch.float32
    torch.testing.assert_close(q.norm(dim=1), torch.ones(8))


def test_mlp_biases_follow_the_references():
    """MoCo v2's head: Linear layers with biases; moco-v3's _build_mlp: bias=False everywhere, last BN affine=False."""
    v2 = mlp(16, 32, 8, layers=2, bn=False, last_bn=False)
    assert [type(m).__name__ for m in v2] == ["Linear", "ReLU", "Linear"]
    assert all(m.bias is not None for m in v2 if isinstance(m, torch.nn.Linear))
    predictor = mlp(8, 32, 8, layers=2, bn=True, last_bn=False)
    assert [type(m).__name__ for m in predictor] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert all(m.bias is None for m in predictor if isinstance(m, torch.nn.Linear))
    projector = mlp(16, 32, 8, layers=2, bn=True, last_bn=True)
    assert [type(m).__name__ for m in projector] == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d"]
    assert not projector[-1].affine and all(m.bias is None for m in projector if isinstance(m, torch.nn.Linear))
