"""Split BatchNorm against plain BatchNorm per group, its coverage of timm layers, and the key shuffle.

The reference is torch's own BatchNorm run on each group {p : p % splits == j} separately (MoCo's CIFAR demo,
facebookresearch/moco colab/moco_cifar10_demo.ipynb, groups the batch this way with one reshape).
"""

import copy

import pytest
import timm
import torch
import torch.nn as nn
from timm.layers import BatchNormAct2d

from lightrecipe.errors import UserError
from lightrecipe.trainers.method.model import MoCo
from lightrecipe.trainers.method.split_bn import (
    SPLIT_CLASSES,
    convert_to_split_bn,
    key_order,
    refuse_norms_that_mix_images,
    sync_running_stats,
)
from lightrecipe.trainers.method.torch_private import BatchNormBase
from lightrecipe.trainers.recipe import Recipe

# The contract archs of test_model.py: BatchNorm2d (ResNet), timm's BatchNormAct2d (MobileNet-V3,
# EfficientNet, RegNet) and LayerNorm only (ConvNeXt: nothing to split, nothing may break).
ARCHS = ["resnet10t", "mobilenetv3_small_050", "efficientnet_b0", "regnetx_002", "convnext_atto"]


def layer(kind: str, channels: int = 5) -> nn.Module:
    torch.manual_seed(1)
    bn = {"bn1d": lambda: nn.BatchNorm1d(channels), "bn2d": lambda: nn.BatchNorm2d(channels),
          "bnact": lambda: BatchNormAct2d(channels, act_layer=nn.Hardswish)}[kind]()
    with torch.no_grad():  # affine and running stats away from their defaults, so the test sees them
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    return bn.train()


def inputs(kind: str, n: int, channels: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    shape = (n, channels) if kind == "bn1d" else (n, channels, 3, 4)
    return torch.randn(*shape, generator=g) * 3 + torch.arange(n, dtype=torch.float32).view(n, *[1] * (len(shape) - 1))


@pytest.mark.parametrize("kind", ["bn1d", "bn2d", "bnact"])
@pytest.mark.parametrize("n,splits", [(16, 4), (12, 2), (8, 4)])
def test_split_layer_equals_plain_batchnorm_on_each_group(kind, n, splits):
    plain = layer(kind)
    split = copy.deepcopy(plain)
    convert_to_split_bn(split, splits, owner="test")
    x = inputs(kind, n).requires_grad_(True)
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    out = split(x)
    (out * upstream).sum().backward()
    expected = torch.empty_like(out)
    running_means, running_vars, weight_grads, bias_grads = [], [], [], []
    x_ref = x.detach().clone().requires_grad_(True)
    for j in range(splits):
        member = copy.deepcopy(plain)
        group = member(x_ref[j::splits])  # positions p with p % splits == j
        (group * upstream[j::splits]).sum().backward()
        expected[j::splits] = group.detach()
        running_means.append(member.running_mean)
        running_vars.append(member.running_var)
        weight_grads.append(member.weight.grad)
        bias_grads.append(member.bias.grad)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    saved = split.state_dict()  # saving brings the running statistics up to date
    torch.testing.assert_close(saved["running_mean"], torch.stack(running_means).mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(saved["running_var"], torch.stack(running_vars).mean(0), rtol=1e-5, atol=1e-6)
    assert set(saved) == set(plain.state_dict())  # the per-group statistics are never saved
    assert int(split.num_batches_tracked) == 1
    # gradients: the input's per group, the shared affine parameters' summed over the groups
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(split.weight.grad, torch.stack(weight_grads).sum(0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(split.bias.grad, torch.stack(bias_grads).sum(0), rtol=1e-4, atol=1e-5)
    # eval mode is plain BatchNorm with the running statistics
    split.eval()
    plain.eval()
    with torch.no_grad():
        plain.running_mean.copy_(split.running_mean)
        plain.running_var.copy_(split.running_var)
    torch.testing.assert_close(split(x), plain(x))


def test_running_stats_over_many_steps_equal_averaging_every_step():
    """Per-group running statistics averaged when needed equal the demo's average-after-every-step (linearity of
    the momentum update), through training, evaluation, saving and loading."""
    split = layer("bn2d")
    convert_to_split_bn(split, 4, owner="test")
    mean, var = split.running_mean.clone(), split.running_var.clone()
    for step in range(5):
        x = inputs("bn2d", 16) * (step + 1) + step
        split(x)
        groups = x.view(4, 4, *x.shape[1:]).transpose(0, 1)  # groups[j] = positions p with p % 4 == j
        mean = 0.9 * mean + 0.1 * groups.mean(dim=(1, 3, 4)).mean(0)
        var = 0.9 * var + 0.1 * groups.var(dim=(1, 3, 4), unbiased=True).mean(0)
        if step == 2:  # an evaluation in between: it must see the statistics so far
            split.eval()
            split(x)
            torch.testing.assert_close(split.running_mean, mean, rtol=1e-5, atol=1e-6)
            split.train()
    sync_running_stats(split)
    torch.testing.assert_close(split.running_mean, mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(split.running_var, var, rtol=1e-5, atol=1e-6)
    fresh = layer("bn2d")
    convert_to_split_bn(fresh, 4, owner="test")
    fresh(inputs("bn2d", 16))  # pending group statistics, then a load: the loaded ones win
    fresh.load_state_dict(split.state_dict())
    fresh.eval()
    torch.testing.assert_close(fresh.running_mean, mean, rtol=1e-5, atol=1e-6)


def test_split_batchnorm_gradients_pass_gradcheck():
    """The hand-wired backward (ATen's native_batch_norm_backward on the grouped view) against finite differences."""
    bn = nn.BatchNorm2d(3).double().train()
    convert_to_split_bn(bn, 2, owner="test")
    x = torch.randn(4, 3, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(6), requires_grad=True)
    weight = torch.rand(3, dtype=torch.float64, requires_grad=True)
    bias = torch.rand(3, dtype=torch.float64, requires_grad=True)

    def f(inp, w, b):
        return torch.func.functional_call(bn, {"weight": w, "bias": b}, (inp,))

    assert torch.autograd.gradcheck(f, (x, weight, bias))


@pytest.mark.parametrize("kind", ["bn1d", "bnact"])
def test_split_layer_without_autograd_matches(kind):
    """The key encoder runs under no_grad, through a path without the autograd Function: same numbers."""
    with_grad, without = layer(kind), layer(kind)
    for bn in (with_grad, without):
        convert_to_split_bn(bn, 4, owner="test")
    x = inputs(kind, 16)
    expected = with_grad(x)
    with torch.no_grad():
        got = without(x)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(without.state_dict()["running_var"], with_grad.state_dict()["running_var"])


def test_split_layer_output_is_not_a_view():
    """An in-place activation after the norm (timm's ReLU(inplace=True)) must not route gradients through
    CopySlices: the split output is a fresh tensor, like plain BatchNorm's."""
    split = layer("bn2d")
    convert_to_split_bn(split, 4, owner="test")
    out = split(inputs("bn2d", 16).requires_grad_(True))
    assert out._base is None
    torch.relu_(out).sum().backward()  # in place, as timm's activations; must simply work


@pytest.mark.parametrize("kind", ["bn2d", "bnact"])
def test_split_layer_keeps_channels_last(kind):
    split = layer(kind)
    convert_to_split_bn(split, 2, owner="test")
    x = inputs(kind, 8)
    expected = copy.deepcopy(split)(x)
    out = split(x.contiguous(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, expected)


def test_single_split_moco_is_plain_batchnorm():
    """bn_splits 1 converts nothing: the encoder is timm's model as is, normalising over the whole batch."""
    r = Recipe(arch="resnet10t", image_size=32, batch_size=8, queue_size=32, bn_splits=1, proj_hidden_dim=32)
    torch.manual_seed(0)
    model = MoCo.from_recipe(r).train()
    torch.manual_seed(0)
    plain = timm.create_model("resnet10t", pretrained=False, num_classes=0).train()
    assert not any(type(m) in SPLIT_CLASSES.values() for m in model.modules())
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(model.backbone(x), plain(x))


@pytest.mark.parametrize("arch", ARCHS)
def test_every_batchnorm_of_a_timm_model_is_split(arch):
    r = Recipe(arch=arch, image_size=32, batch_size=8, queue_size=32, bn_splits=2, proj_hidden_dim=32,
               proj_bn=True, predictor_hidden_dim=16)
    model = MoCo.from_recipe(r)
    plain = timm.create_model(arch, pretrained=False, num_classes=0)
    norms = [m for m in model.modules() if isinstance(m, BatchNormBase)]
    assert norms and all(type(m) in SPLIT_CLASSES.values() and m.bn_splits == 2 for m in norms)
    backbone_norms = [m for m in model.backbone.modules() if isinstance(m, BatchNormBase)]
    plain_norms = [m for m in plain.modules() if isinstance(m, BatchNormBase)]
    assert len(backbone_norms) == len(plain_norms)  # every one, none missed (ConvNeXt: 0 == 0)
    assert list(model.backbone.state_dict()) == list(plain.state_dict())  # checkpoints and export unchanged


def test_a_batchnorm_it_cannot_reproduce_is_refused():
    net = nn.Sequential(nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4))
    with pytest.raises(UserError, match="'my_arch' has a BatchNorm3d at '1'.*set bn_splits: 1"):
        convert_to_split_bn(net, 2, owner="my_arch")


@pytest.mark.parametrize("batch,splits", [(4, 2), (8, 2), (8, 4), (16, 8), (64, 8), (12, 3), (32, 16)])
def test_key_order_never_reuses_a_query_group(batch, splits):
    g = torch.Generator().manual_seed(batch * splits)
    for _ in range(50):
        perm = key_order(batch, splits, g)
        assert sorted(perm.tolist()) == list(range(batch))
        for k in range(splits):
            query_groups = {int(i) % splits for i in perm[k::splits]}  # images in key group k, by query group
            assert len(query_groups) >= 2


def _normalised_per_group(x: torch.Tensor, groups: torch.Tensor, eps: float) -> torch.Tensor:
    out = torch.empty_like(x)
    for g in groups.unique():
        part = x[groups == g]
        mean, var = part.mean(dim=(0, 2, 3), keepdim=True), part.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        out[groups == g] = (part - mean) / torch.sqrt(var + eps)
    return out


@pytest.mark.parametrize("batch,splits", [(8, 2), (16, 4)])
def test_query_and_key_groups_differ_for_every_image(batch, splits):
    """Hook the first BatchNorm of both encoders: both normalise per group of batch/splits images, in one
    forward each, and no image's key group is its query group."""
    r = Recipe(arch="resnet10t", image_size=16, batch_size=batch, queue_size=batch * 2, bn_splits=splits,
               proj_hidden_dim=32)
    model = MoCo.from_recipe(r).train()
    seen: dict[str, list] = {"query": [], "key": []}
    hooks = [
        encoder.bn1.register_forward_hook(  # clones: the in-place ReLU after bn1 overwrites its output
            lambda m, i, o, name=name: seen[name].append((i[0].detach().clone(), o.detach().clone())))
        for name, encoder in (("query", model.backbone), ("key", model.key_backbone))
    ]
    x = torch.randn(batch, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    for _ in range(5):  # the key shuffle is random: several draws
        seen["query"].clear()
        seen["key"].clear()
        model(x, x, key_momentum=1.0, alpha=0.0)  # same views, m = 1: key and query encoders stay identical
        assert len(seen["query"]) == 1 and len(seen["key"]) == 1, "one forward per encoder, not one per group"
        (q_in, q_out), (k_in, k_out) = seen["query"][0], seen["key"][0]
        positions = torch.arange(batch)
        eps = model.backbone.bn1.eps
        torch.testing.assert_close(q_out, _normalised_per_group(q_in, positions % splits, eps), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(k_out, _normalised_per_group(k_in, positions % splits, eps), rtol=1e-4, atol=1e-4)
        # which image sits at each key position: its conv output equals that image's query conv output
        image_at = torch.tensor([int((q_in - row).abs().flatten(1).amax(1).argmin()) for row in k_in])
        assert sorted(image_at.tolist()) == list(range(batch))
        for q, image in enumerate(image_at.tolist()):
            query_group = {i for i in range(batch) if i % splits == image % splits}
            key_group = {int(image_at[p]) for p in range(batch) if p % splits == q % splits}
            assert len(query_group) == len(key_group) == batch // splits
            assert query_group != key_group, f"image {image}: key and query BatchNorm groups are the same images"
    for h in hooks:
        h.remove()


def test_an_arch_whose_batch_norm_mixes_the_tokens_of_the_batch_is_refused_with_split_bn():
    # timm's LeViT runs BatchNorm1d over the flattened tokens of the whole batch: split groups would mix images
    with pytest.raises(UserError, match=r"'levit_128s' normalises 196 rows per image with BatchNorm1d .*"
                                        r"set bn_splits: 1"):
        MoCo("levit_128s", bn_splits=2)
    MoCo("levit_128s", bn_splits=1)  # BatchNorm over the whole batch is what the arch means


def test_a_conv_net_with_batch_norm_1d_heads_passes_the_mixing_check():
    refuse_norms_that_mix_images(nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.BatchNorm1d(4)), (3, 2, 2),
                                 owner="mlp")
