"""How a recipe's backbone starts (residual_init) and what its loss is multiplied by (loss_scale_rule), on real
timm models."""

import pytest
import torch

from lightrecipe.trainers.method.model import MoCo, build_backbone, loss_multiplier
from lightrecipe.trainers.recipe import preset


def last_bn_weights(model):
    return [block.bn2.weight for stage in (model.layer1, model.layer2, model.layer3, model.layer4) for block in stage]


def test_torchvision_init_starts_the_last_batchnorm_of_each_block_at_one_and_draws_the_same_weights():
    torch.manual_seed(0)
    timm_init = build_backbone("resnet10t", "timm")
    torch.manual_seed(0)
    torchvision_init = build_backbone("resnet10t", "torchvision")
    assert all(torch.all(w == 0) for w in last_bn_weights(timm_init))  # timm's zero_init_last
    assert all(torch.all(w == 1) for w in last_bn_weights(torchvision_init))  # nn.BatchNorm2d's own start
    for (name, a), b in zip(timm_init.named_parameters(), torchvision_init.parameters()):
        if "conv" in name:
            assert torch.equal(a, b), name  # the switch draws no random numbers: one seed, one set of weights


def test_an_arch_without_zero_init_last_builds_alike_under_either_init():
    torch.manual_seed(0)
    a = build_backbone("mobilenetv3_small_050", "timm").state_dict()
    torch.manual_seed(0)
    b = build_backbone("mobilenetv3_small_050", "torchvision").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_mocov2_preset_builds_torchvisions_resnet():
    assert preset("resnet50-mocov2").residual_init == "torchvision" and preset("mocov3").residual_init == "timm"
    recipe = preset("resnet50-mocov2", arch="resnet10t", image_size=32, batch_size=16, bn_splits=1, queue_size=0)
    assert all(torch.all(w == 1) for w in last_bn_weights(MoCo.from_recipe(recipe).backbone))


def test_mocov3s_loss_scale_is_2t_of_the_recipes_temperature():
    assert loss_multiplier(2.0, "temperature", 0.2) == pytest.approx(0.4)
    assert loss_multiplier(2.0, "constant", 0.2) == 2.0
    assert preset("mocov3").loss_scale * preset("mocov3").temperature == 2.0  # the reference's T = 1: 2T = 2
    searched = preset("digits-small", loss_scale=2.0, loss_scale_rule="temperature", temperature=0.2)
    assert MoCo.from_recipe(searched).loss_scale == pytest.approx(0.4)
