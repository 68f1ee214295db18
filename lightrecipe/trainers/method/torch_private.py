"""The places where the method needs more of torch than its documented API, kept in one small module.

tests/trainers/method/test_torch_private.py pins each behaviour relied on, so a torch release that moves or
changes one fails a fast test instead of silently changing what MoCo computes.

1. `BatchNormBase`: `nn.modules.batchnorm._BatchNorm`, the one class every BatchNorm shares (BatchNorm1d/2d/3d,
   SyncBatchNorm, timm's BatchNormAct2d); split and synchronised BatchNorm replace exactly these layers.
2. `batch_norm_train` / `batch_norm_backward`: ATen's `native_batch_norm` and `native_batch_norm_backward`,
   which return the saved mean and inverse std that grouped BatchNorm needs for one fused backward call
   (`F.batch_norm` hides them).
3. `ema_`: `torch._foreach_mul_` / `_foreach_add_`, one fused kernel per parameter list for the key encoder's
   momentum update instead of a Python loop over ~200 tensors.
"""

from __future__ import annotations

import torch
import torch.nn as nn

BatchNormBase = nn.modules.batchnorm._BatchNorm


def batch_norm_train(x: torch.Tensor, weight, bias, running_mean, running_var, momentum: float, eps: float):
    """Training-mode BatchNorm over dim 1 of `x`: (out, save_mean, save_invstd); running stats updated in place."""
    return torch.native_batch_norm(x, weight, bias, running_mean, running_var, True, momentum, eps)


def batch_norm_backward(grad_out, x, weight, save_mean, save_invstd, eps: float, wants: list[bool]):
    """Gradients (x, weight, bias) of `batch_norm_train`, each None where `wants` says it is not needed."""
    return torch.ops.aten.native_batch_norm_backward(grad_out, x, weight, None, None, save_mean, save_invstd, True,
                                                     eps, wants)


@torch.no_grad()
def ema_(targets: list[torch.Tensor], sources: list[torch.Tensor], momentum: float) -> None:
    """targets = momentum * targets + (1 - momentum) * sources, in place, tensor by tensor."""
    torch._foreach_mul_(targets, momentum)
    torch._foreach_add_(targets, sources, alpha=1.0 - momentum)
