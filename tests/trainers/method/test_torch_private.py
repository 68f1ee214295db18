"""Pins what the method relies on in torch beyond its documented API (trainers/method/torch_private.py)."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import BatchNormAct2d

from lightrecipe.trainers.method.torch_private import BatchNormBase, batch_norm_backward, batch_norm_train, ema_


@pytest.mark.parametrize("layer", [nn.BatchNorm1d(4), nn.BatchNorm2d(4), nn.BatchNorm3d(4), nn.SyncBatchNorm(4),
                                   BatchNormAct2d(4)], ids=lambda m: type(m).__name__)
def test_every_batch_norm_shares_the_base_class(layer):
    assert isinstance(layer, BatchNormBase)
    assert not isinstance(nn.LayerNorm(4), BatchNormBase) and not isinstance(nn.GroupNorm(2, 4), BatchNormBase)


def test_batch_norm_train_matches_f_batch_norm_and_returns_the_saved_statistics():
    torch.manual_seed(0)
    x, weight, bias = torch.randn(8, 3, 5, 5), torch.rand(3) + 0.5, torch.randn(3)
    mean_a, var_a, mean_b, var_b = torch.zeros(3), torch.ones(3), torch.zeros(3), torch.ones(3)
    out, save_mean, save_invstd = batch_norm_train(x, weight, bias, mean_a, var_a, 0.1, 1e-5)
    expected = F.batch_norm(x, mean_b, var_b, weight, bias, training=True, momentum=0.1, eps=1e-5)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close((mean_a, var_a), (mean_b, var_b))  # running stats updated in place, alike
    torch.testing.assert_close(save_mean, x.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(save_invstd, 1 / torch.sqrt(x.var(dim=(0, 2, 3), unbiased=False) + 1e-5))


def test_batch_norm_backward_matches_autograd():
    torch.manual_seed(1)
    x = torch.randn(6, 4, 3, 3, requires_grad=True)
    weight, bias = (torch.rand(4) + 0.5).requires_grad_(), torch.randn(4, requires_grad=True)
    grad_out = torch.randn(6, 4, 3, 3)
    F.batch_norm(x, None, None, weight, bias, training=True, eps=1e-5).backward(grad_out)
    _, save_mean, save_invstd = batch_norm_train(x.detach(), weight.detach(), bias.detach(), None, None, 0.1, 1e-5)
    grads = batch_norm_backward(grad_out, x.detach(), weight.detach(), save_mean, save_invstd, 1e-5,
                                [True, True, True])
    for got, want in zip(grads, (x.grad, weight.grad, bias.grad)):
        torch.testing.assert_close(got, want)


def test_ema_is_the_momentum_update_tensor_by_tensor():
    targets, sources = [torch.ones(3), torch.full((2, 2), 2.0)], [torch.zeros(3), torch.full((2, 2), 4.0)]
    ema_(targets, sources, 0.9)
    torch.testing.assert_close(targets[0], torch.full((3,), 0.9))
    torch.testing.assert_close(targets[1], torch.full((2, 2), 0.9 * 2.0 + 0.1 * 4.0))
