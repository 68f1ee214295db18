"""Split BatchNorm: one device normalising like several, in one BatchNorm call per layer.

MoCo v2 trains on 8 GPUs; each one normalises its own share of the batch, and the keys are shuffled across GPUs
so that a key's BatchNorm group holds other images than its query's group (shuffle BN). On one device MoCo's
CIFAR demo (facebookresearch/moco, colab/moco_cifar10_demo.ipynb, `SplitBatchNorm`) simulates that: every
BatchNorm of both encoders computes its statistics per group of `batch / splits` images. Reshaping the input
(N, C, ...) to (N / splits, C * splits, ...) puts group j (the images at positions p with p % splits == j) in
channel block j, so one `F.batch_norm` call computes every group's statistics. Running statistics stay one
set: the mean of the groups' updates. In eval mode the layers are plain BatchNorm.

Layers are converted in place by swapping their class for a subclass that only overrides `forward`, so
parameters, buffers, `state_dict` keys and timm's norm + activation attributes stay exactly as they were.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import BatchNormAct2d

from lightrecipe.errors import UserError


def split_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, splits: int) -> torch.Tensor:
    """Training-mode BatchNorm of `x` (N, C, ...) with statistics per group {p : p % splits == j}.

    Running mean/var (when tracked) become the mean of the `splits` groups' momentum updates, as the demo's
    SplitBatchNorm does; `num_batches_tracked` counts the call once.
    """
    n, c = x.shape[0], x.shape[1]
    if n % splits or n // splits < 2:
        raise ValueError(f"split BatchNorm needs a batch divisible into {splits} groups of >= 2, got {n}")
    tracked = bn.track_running_stats and bn.running_mean is not None
    factor = _average_factor(bn) if tracked else 0.0
    mean = bn.running_mean.repeat(splits) if tracked else None
    var = bn.running_var.repeat(splits) if tracked else None
    weight = bn.weight.repeat(splits) if bn.weight is not None else None
    bias = bn.bias.repeat(splits) if bn.bias is not None else None
    grouped = x.reshape(n // splits, c * splits, *x.shape[2:])  # a view unless x is channels_last
    out = F.batch_norm(grouped, mean, var, weight, bias, True, factor, bn.eps).reshape(x.shape)
    if tracked:
        with torch.no_grad():
            bn.running_mean.copy_(mean.view(splits, c).mean(dim=0))
            bn.running_var.copy_(var.view(splits, c).mean(dim=0))
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)
    return out


def _average_factor(bn: nn.modules.batchnorm._BatchNorm) -> float:
    """The running-average factor of one training call, as torch's `_BatchNorm.forward` computes it."""
    if bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
    if bn.momentum is None:  # cumulative moving average
        return 1.0 / float(bn.num_batches_tracked)
    return bn.momentum


class _Split:
    """Mixin: training-mode forward through `split_batch_norm`, then what the base class does after the norm."""

    bn_splits: int = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.bn_splits > 1:
            return self.after_norm(split_batch_norm(self, x, self.bn_splits))
        return super().forward(x)

    def after_norm(self, x: torch.Tensor) -> torch.Tensor:
        return x


class SplitBatchNorm1d(_Split, nn.BatchNorm1d):
    pass


class SplitBatchNorm2d(_Split, nn.BatchNorm2d):
    pass


class SplitBatchNormAct2d(_Split, BatchNormAct2d):
    """timm's BatchNorm + activation: BatchNormAct2d.forward runs batch_norm, then `drop`, then `act`."""

    def after_norm(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(x))


SPLIT_CLASSES: dict[type, type] = {
    nn.BatchNorm1d: SplitBatchNorm1d,
    nn.BatchNorm2d: SplitBatchNorm2d,
    BatchNormAct2d: SplitBatchNormAct2d,
}


def convert_to_split_bn(module: nn.Module, splits: int, *, owner: str) -> int:
    """Make every BatchNorm in `module` a split one (in place); returns how many layers were converted.

    A BatchNorm class whose forward this module cannot reproduce (SyncBatchNorm, BatchNorm3d, a custom
    subclass) is a UserError naming it and `owner` (the arch): silently leaving it unsplit would let keys
    share statistics with their queries.
    """
    converted = 0
    for name, layer in module.named_modules():
        if not isinstance(layer, nn.modules.batchnorm._BatchNorm):
            continue
        split_class = SPLIT_CLASSES.get(type(layer))
        if split_class is None and type(layer) in SPLIT_CLASSES.values():
            split_class = type(layer)  # converted before
        if split_class is None:
            raise UserError(
                f"'{owner}' has a {type(layer).__name__} at '{name}', which split BatchNorm does not cover "
                f"(covered: {', '.join(c.__name__ for c in SPLIT_CLASSES)}); set bn_splits: 1"
            )
        layer.__class__ = split_class
        layer.bn_splits = splits
        converted += 1
    return converted


def key_order(batch: int, splits: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A permutation for the key batch such that no key BatchNorm group equals a query group.

    Query group j holds positions {p : p % splits == j}. Slot (row t, group k) of the shuffled batch takes the
    t-th member (in a random order) of query group relabel[(k + t) % splits], so every key group draws from
    min(batch / splits, splits) >= 2 different query groups whenever splits >= 2 and groups hold >= 2 images:
    image i's key group is never its query group. Returns `perm` (CPU, int64): key position q holds image perm[q].
    """
    group = batch // splits
    within = torch.argsort(torch.rand(splits, group, generator=generator), dim=1)  # random order per query group
    relabel = torch.randperm(splits, generator=generator)
    rows = torch.arange(group).view(group, 1)
    slots = torch.arange(splits).view(1, splits)
    source = relabel[(slots + rows) % splits]  # (group, splits): query group feeding each slot
    member = within[source, rows.expand(group, splits)]
    return (member * splits + source).flatten()


__all__ = ["SPLIT_CLASSES", "convert_to_split_bn", "key_order", "split_batch_norm"]
