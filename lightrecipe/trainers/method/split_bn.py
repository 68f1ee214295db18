"""Split BatchNorm: one device normalising like several, in one BatchNorm call per layer.

MoCo v2 trains on 8 GPUs; each one normalises its own share of the batch, and the keys are shuffled across GPUs
so that a key's BatchNorm group holds other images than its query's group (shuffle BN). On one device MoCo's
CIFAR demo (facebookresearch/moco, colab/moco_cifar10_demo.ipynb, `SplitBatchNorm`) simulates that: every
BatchNorm of both encoders computes its statistics per group of `batch / splits` images. Reshaping the input
(N, C, ...) to (N / splits, C * splits, ...) puts group j (the images at positions p with p % splits == j) in
channel block j, so one `F.batch_norm` call computes every group's statistics. Running statistics stay one
set: the mean of the groups' updates. In eval mode the layers are plain BatchNorm.

The groups' running statistics are kept per group between uses and averaged when the layer is evaluated or its
state is saved (or on `sync_running_stats`): the momentum update is linear, so the mean of the per-group
averages equals averaging after every step, without a dozen small tensor ops per layer and step.

Layers are converted in place by swapping their class for a subclass that only overrides `forward`, so
parameters, buffers, `state_dict` keys and timm's norm + activation attributes stay exactly as they were.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
from timm.layers import BatchNormAct2d

from lightrecipe.errors import UserError
from lightrecipe.trainers.method.torch_private import BatchNormBase, batch_norm_backward, batch_norm_train


def split_batch_norm(bn: BatchNormBase, x: torch.Tensor, splits: int) -> torch.Tensor:
    """Training-mode BatchNorm of `x` (N, C, ...) with statistics per group {p : p % splits == j}.

    Running mean/var (when tracked) become the mean of the `splits` groups' momentum updates, as the demo's
    SplitBatchNorm does (once `sync_running_stats` has run); `num_batches_tracked` counts the call once.
    `bn` must have been converted by `convert_to_split_bn`.
    """
    n = x.shape[0]
    if n % splits or n // splits < 2:
        raise ValueError(f"split BatchNorm needs a batch divisible into {splits} groups of >= 2, got {n}")
    tracked = bn.track_running_stats and bn.running_mean is not None
    factor = _average_factor(bn) if tracked else 0.0
    mean, var = _group_running_stats(bn, splits) if tracked else (None, None)
    if torch.is_grad_enabled():
        out = _GroupedBatchNorm.apply(x, bn.weight, bn.bias, mean, var, splits, factor, bn.eps)
    else:  # the key encoder: no autograd, so the grouped result's reshaped view is fine as it is
        weight = _tile(bn.weight, splits) if bn.weight is not None else None
        bias = _tile(bn.bias, splits) if bn.bias is not None else None
        grouped = _grouped(x, splits)
        out = batch_norm_train(grouped, weight, bias, mean, var, factor, bn.eps)[0].view(x.shape)
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)
    return out


def sync_batch_norm(bn: BatchNormBase, x: torch.Tensor) -> torch.Tensor:
    """Training-mode BatchNorm of `x` (N, C, ...) with statistics over the inputs of every rank of the
    process group, as torch's SyncBatchNorm computes them (the running variance unbiased over all images)."""
    from lightrecipe.trainers.parallel.world import World

    world = World.current()
    tracked = bn.track_running_stats and bn.running_mean is not None
    factor = _average_factor(bn) if tracked else 0.0
    return _SyncBatchNorm.apply(x, bn.weight, bn.bias, bn.running_mean if tracked else None,
                                bn.running_var if tracked else None, factor, bn.eps, world)


class _SyncBatchNorm(torch.autograd.Function):
    """BatchNorm over all ranks: per-rank (count, mean, var) all-gathered and combined (Chan et al.'s
    parallel variance), and in backward the two per-channel sums of the input gradient all-reduced, as
    torch's SyncBatchNorm does. Weight and bias gradients stay per rank: DistributedDataParallel averages them.
    Statistics are computed in float32 whatever the input's precision."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps, world):
        dims = [0, *range(2, x.dim())]
        xf = x.float()
        count = torch.full((1,), x.numel() // x.shape[1], dtype=torch.float32, device=x.device)
        var, mean = torch.var_mean(xf, dim=dims, correction=0)
        stats = world.gather(torch.cat([count, mean, var]).unsqueeze(0))  # (W, 1 + 2C)
        c = x.shape[1]
        counts, means, variances = stats[:, :1], stats[:, 1:1 + c], stats[:, 1 + c:]
        total = counts.sum()
        mean = (counts * means).sum(0) / total
        var = (counts * (variances + (means - mean) ** 2)).sum(0) / total
        invstd = torch.rsqrt(var + eps)
        if running_mean is not None:
            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)
                unbiased = var * (total / (total - 1).clamp(min=1))
                running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)
        shape = [1, c] + [1] * (x.dim() - 2)
        xhat = (xf - mean.view(shape)) * invstd.view(shape)
        out = xhat
        if weight is not None:
            out = out * weight.float().view(shape)
        if bias is not None:
            out = out + bias.float().view(shape)
        ctx.save_for_backward(xhat, weight, invstd, total)
        ctx.world, ctx.dims, ctx.shape, ctx.has_bias = world, dims, shape, bias is not None
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        xhat, weight, invstd, total = ctx.saved_tensors
        dims, shape, world = ctx.dims, ctx.shape, ctx.world
        g = grad_out.float()
        sum_g, sum_g_xhat = g.sum(dims), (g * xhat).sum(dims)
        grad_w = sum_g_xhat.to(weight.dtype) if weight is not None and ctx.needs_input_grad[1] else None
        grad_b = sum_g.to(weight.dtype if weight is not None else g.dtype) if ctx.has_bias and ctx.needs_input_grad[2] else None
        grad_x = None
        if ctx.needs_input_grad[0]:
            both = world.sum(torch.cat([sum_g, sum_g_xhat]))  # sums over every rank's images
            mean_g, mean_g_xhat = (both / total).chunk(2)
            scale = invstd * (weight.float() if weight is not None else 1.0)
            grad_x = (scale.view(shape) * (g - mean_g.view(shape) - xhat * mean_g_xhat.view(shape))).to(grad_out.dtype)
        return grad_x, grad_w, grad_b, None, None, None, None, None


class _GroupedBatchNorm(torch.autograd.Function):
    """BatchNorm of x (N, C, ...) viewed as (N / s, C * s, ...): one ATen batch_norm call for all groups.

    A custom Function only so that its output is a fresh (N, C, ...) tensor rather than a reshaped view of the
    grouped result: the in-place activations that follow norms in timm models would otherwise make autograd
    route every gradient through CopySlices (a zero-fill and a full copy per layer, measured at ~6% of a step).
    Forward and backward are ATen's own batch norm kernels (torch_private.py).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, splits, momentum, eps):
        grouped = _grouped(x, splits)
        weights = _tile(weight, splits) if weight is not None else None
        biases = _tile(bias, splits) if bias is not None else None
        out, save_mean, save_invstd = batch_norm_train(grouped, weights, biases, running_mean, running_var, momentum,
                                                       eps)
        ctx.save_for_backward(grouped, weights, save_mean, save_invstd)
        ctx.splits, ctx.eps, ctx.has_bias = splits, eps, bias is not None
        return out.resize_(x.shape)  # same storage, same element order: only the shape changes

    @staticmethod
    def backward(ctx, grad_out):
        grouped, weights, save_mean, save_invstd = ctx.saved_tensors
        splits = ctx.splits
        wants = [ctx.needs_input_grad[0], weights is not None and ctx.needs_input_grad[1],
                 ctx.has_bias and ctx.needs_input_grad[2]]
        grad_x, grad_w, grad_b = batch_norm_backward(grad_out.reshape(grouped.shape), grouped, weights, save_mean,
                                                     save_invstd, ctx.eps, wants)
        c = grouped.shape[1] // splits
        return (
            grad_x.reshape(grad_out.shape) if wants[0] else None,
            grad_w.view(splits, c).sum(dim=0) if wants[1] else None,
            grad_b.view(splits, c).sum(dim=0) if wants[2] else None,
            None, None, None, None, None,
        )


def _group_running_stats(bn, splits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The groups' running mean and var (C * splits,), which the BatchNorm call updates in place.

    After the layer's running statistics were averaged (or loaded), every group starts again from them.
    """
    if not bn.group_stats_pending:
        with torch.no_grad():
            bn.group_running_mean.copy_(_tile(bn.running_mean, splits))
            bn.group_running_var.copy_(_tile(bn.running_var, splits))
        bn.group_stats_pending = True
    return bn.group_running_mean, bn.group_running_var


def sync_running_stats(bn: nn.Module) -> None:
    """Average the groups' running statistics into the layer's own (a no-op when nothing is pending)."""
    if getattr(bn, "group_stats_pending", False):
        c = bn.running_mean.numel()
        with torch.no_grad():
            torch.mean(bn.group_running_mean.view(-1, c), dim=0, out=bn.running_mean)
            torch.mean(bn.group_running_var.view(-1, c), dim=0, out=bn.running_var)
        bn.group_stats_pending = False


def _grouped(x: torch.Tensor, splits: int) -> torch.Tensor:
    """(N, C, ...) -> (N / splits, C * splits, ...): group j's images land in channel block j. A view unless
    x is channels_last."""
    return x.reshape(x.shape[0] // splits, x.shape[1] * splits, *x.shape[2:])


def _tile(t: torch.Tensor, splits: int) -> torch.Tensor:
    """(C,) -> (C * splits,): `splits` copies one after the other (half the cost of Tensor.repeat here)."""
    return t.expand(splits, *t.shape).reshape(-1)


def _average_factor(bn: BatchNormBase) -> float:
    """The running-average factor of one training call, as torch's `_BatchNorm.forward` computes it."""
    if bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
    if bn.momentum is None:  # cumulative moving average
        return 1.0 / float(bn.num_batches_tracked)
    return bn.momentum


class _Split:
    """Mixin: training-mode forward through `split_batch_norm`, then what the base class does after the norm.

    Evaluating, saving (`state_dict`) and loading keep the layer's running statistics authoritative.
    """

    bn_splits: int = 1
    bn_sync: bool = False  # training mode: statistics over the whole batch of every rank (convert_to_sync_bn)
    group_stats_pending: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.bn_sync:
            return self.after_norm(sync_batch_norm(self, x))
        if self.training and self.bn_splits > 1:
            return self.after_norm(split_batch_norm(self, x, self.bn_splits))
        sync_running_stats(self)
        return super().forward(x)

    def after_norm(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        sync_running_stats(self)
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self.group_stats_pending = False  # the loaded statistics win over any pending group updates


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

    def split(layer) -> None:
        layer.bn_splits = splits
        if layer.track_running_stats and layer.running_mean is not None:  # per-group statistics; never saved
            layer.register_buffer("group_running_mean", _tile(layer.running_mean, splits).clone(), persistent=False)
            layer.register_buffer("group_running_var", _tile(layer.running_var, splits).clone(), persistent=False)

    return _convert(module, owner, "split", "set bn_splits: 1", split)


def refuse_norms_that_mix_images(backbone: nn.Module, input_size: tuple[int, ...], *, owner: str) -> None:
    """UserError when a BatchNorm1d of `backbone` normalises rows that are not one per image.

    Split BatchNorm groups the rows of a layer's input by position; that keeps images apart only when row n is
    image n. timm's LeViT normalises the flattened tokens of the whole batch (N * T rows), so there the groups
    would mix images and leak statistics between keys and queries. Found by one forward of two blank images
    (only for backbones that have a BatchNorm1d at all).
    """
    layers = [(name, layer) for name, layer in backbone.named_modules() if isinstance(layer, nn.BatchNorm1d)]
    if not layers:
        return
    rows: dict[str, int] = {}

    def count_rows(name: str):
        def hook(_, args) -> None:  # a pre-hook that returned a value would replace the layer's input
            rows.setdefault(name, args[0].shape[0])
        return hook

    hooks = [layer.register_forward_pre_hook(count_rows(name)) for name, layer in layers]
    was_training = backbone.training
    try:
        backbone.eval()
        with torch.no_grad():
            backbone(torch.zeros(2, *input_size))
    finally:
        for hook in hooks:
            hook.remove()
        backbone.train(was_training)
    mixing = [name for name, count in rows.items() if count != 2]
    if mixing:
        raise UserError(f"'{owner}' normalises {rows[mixing[0]] // 2} rows per image with BatchNorm1d (at "
                        f"'{mixing[0]}' and {len(mixing) - 1} more), so split BatchNorm would mix images between "
                        "groups; set bn_splits: 1")


def convert_to_sync_bn(module: nn.Module, *, owner: str) -> int:
    """Make every BatchNorm in `module` normalise over the whole batch of all ranks of the process group
    (SyncBatchNorm; torch's own runs on GPUs only, this one on any backend). In place; returns the count."""
    return _convert(module, owner, "synchronised", "set bn_splits to the number of processes",
                    lambda layer: setattr(layer, "bn_sync", True))


def _convert(module: nn.Module, owner: str, kind: str, remedy: str, configure) -> int:
    converted = 0
    for name, layer in module.named_modules():
        if not isinstance(layer, BatchNormBase):
            continue
        split_class = SPLIT_CLASSES.get(type(layer))
        if split_class is None and type(layer) in SPLIT_CLASSES.values():
            split_class = type(layer)  # converted before
        if split_class is None:
            raise UserError(
                f"'{owner}' has a {type(layer).__name__} at '{name}', which {kind} BatchNorm does not cover "
                f"(covered: {', '.join(c.__name__ for c in SPLIT_CLASSES)}); {remedy}"
            )
        sync_running_stats(layer)  # converted before with other splits: fold their groups in first
        layer.__class__ = split_class
        configure(layer)
        layer.group_stats_pending = False
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


__all__ = ["SPLIT_CLASSES", "convert_to_split_bn", "convert_to_sync_bn", "sync_batch_norm", "key_order", "split_batch_norm", "sync_running_stats"]


@torch.no_grad()
def average_batch_norm_stats(model: torch.nn.Module, world) -> None:
    """Make every rank's BatchNorm running statistics their mean over ranks of `world` (one all-reduce)."""
    if not world.parallel:
        return
    buffers = []
    for layer in model.modules():
        if isinstance(layer, BatchNormBase) and layer.running_mean is not None:
            sync_running_stats(layer)
            buffers += [layer.running_mean, layer.running_var]
    if not buffers:
        return
    flat = torch.cat([b.flatten() for b in buffers])
    dist.all_reduce(flat)
    flat /= world.size
    for b, part in zip(buffers, torch.split(flat, [b.numel() for b in buffers])):
        b.copy_(part.view_as(b))
