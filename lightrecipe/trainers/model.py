"""MoCo: a timm backbone with a projector (query encoder), its momentum copy (key encoder) and a key queue.

Schedules are computed outside and passed in (`forward(x1, x2, key_momentum=..., alpha=...)`), as in
MoCo v3's builder. The loss is the pure function from losses.py; this module owns the state around it.

BatchNorm must not let the key of an image see its query's batch statistics (the model would learn to
cheat through them). Under DDP the keys are shuffled across processes (MoCo's shuffle BN); on one device
the shuffled key batch runs through the key encoder in `bn_splits` sub-batches, each with its own
statistics (MoCo's CIFAR demo, SplitBatchNorm).
"""

from __future__ import annotations

import copy

import timm
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from lightrecipe.trainers.losses import smoothed_info_nce
from lightrecipe.trainers.recipe import Recipe


def mlp(in_dim: int, hidden_dim: int, out_dim: int, layers: int, bn: bool, last_bn: bool) -> nn.Sequential:
    """Linear (-> BN) -> ReLU blocks, then a Linear to out_dim (-> BN without affine, MoCo v3)."""
    blocks: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers - 1):
        blocks.append(nn.Linear(dim, hidden_dim, bias=not bn))
        if bn:
            blocks.append(nn.BatchNorm1d(hidden_dim))
        blocks.append(nn.ReLU(inplace=True))
        dim = hidden_dim
    blocks.append(nn.Linear(dim, out_dim, bias=not last_bn))
    if last_bn:
        blocks.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*blocks)


def backbone_dim(backbone: nn.Module) -> int:
    """Width of a timm backbone's pooled output (num_classes=0).

    timm 1.0 reports it as `head_hidden_size` where a pre-logits layer follows the last stage (MobileNet-V3:
    960 -> 1280) and as `num_features` otherwise.
    """
    return int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)


class KeyQueue(nn.Module):
    """FIFO of the last `size` keys (MoCo's dictionary); starts as random unit vectors, as MoCo does."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        size = self.keys.shape[0]
        idx = (self.ptr + torch.arange(keys.shape[0], device=keys.device)) % size
        self.keys.index_copy_(0, idx, keys.to(self.keys.dtype))
        self.ptr.copy_((self.ptr + keys.shape[0]) % size)


class MoCo(nn.Module):
    def __init__(self, recipe: Recipe):
        super().__init__()
        self.recipe = recipe
        self.backbone = timm.create_model(recipe.arch, pretrained=False, num_classes=0)
        feat_dim = backbone_dim(self.backbone)
        hidden = recipe.proj_hidden_dim or feat_dim
        self.projector = mlp(feat_dim, hidden, recipe.proj_out_dim, recipe.proj_layers, recipe.proj_bn, recipe.proj_bn)
        self.predictor = (
            mlp(recipe.proj_out_dim, recipe.predictor_hidden_dim, recipe.proj_out_dim, 2, True, False)
            if recipe.predictor_hidden_dim > 0
            else nn.Identity()
        )
        self.key_backbone = copy.deepcopy(self.backbone)
        self.key_projector = copy.deepcopy(self.projector)
        for p in self.key_parameters():
            p.requires_grad_(False)
        self.queue = KeyQueue(recipe.queue_size, recipe.proj_out_dim) if recipe.queue_size > 0 else None

    def query_parameters(self) -> list[nn.Parameter]:
        return list(self.backbone.parameters()) + list(self.projector.parameters())

    def key_parameters(self) -> list[nn.Parameter]:
        return list(self.key_backbone.parameters()) + list(self.key_projector.parameters())

    @torch.no_grad()
    def update_key_encoder(self, momentum: float) -> None:
        """key = m * key + (1 - m) * query, parameter by parameter (one fused call per list)."""
        keys, queries = self.key_parameters(), self.query_parameters()
        torch._foreach_mul_(keys, momentum)
        torch._foreach_add_(keys, queries, alpha=1.0 - momentum)

    def encode_query(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.predictor(self.projector(self.backbone(x))), dim=1)

    @torch.no_grad()
    def encode_key(self, x: torch.Tensor) -> torch.Tensor:
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            return _shuffled_across_processes(lambda b: self._key(b), x)
        perm = torch.randperm(x.shape[0], device=x.device)
        chunks = x[perm].chunk(self.recipe.bn_splits)
        keys = torch.cat([self._key(c) for c in chunks])
        return keys[torch.argsort(perm)]

    def _key(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.key_projector(self.key_backbone(x)), dim=1)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, *, key_momentum: float, alpha: float) -> torch.Tensor:
        """The MoCo loss for two views (B, 3, S, S); updates the key encoder first and the queue after."""
        self.update_key_encoder(key_momentum)
        k2 = self.encode_key(x2)
        loss = self._directional_loss(self.encode_query(x1), k2, alpha)
        keys = [k2]
        if self.recipe.symmetric:
            k1 = self.encode_key(x1)
            loss = loss + self._directional_loss(self.encode_query(x2), k1, alpha)
            keys.append(k1)
        if self.queue is not None:
            for k in keys:
                self.queue.push(k.float())
        return loss * self.recipe.loss_scale

    def _directional_loss(self, q: torch.Tensor, k: torch.Tensor, alpha: float) -> torch.Tensor:
        r = self.recipe
        if self.queue is not None:
            negatives, exclude = self.queue.keys.clone(), None
        else:  # in-batch negatives: every other key of the batch
            negatives = k
            exclude = torch.eye(len(k), dtype=torch.bool, device=k.device)
        mode = r.smoothing if r.smoothing != "none" else "topk"
        a = alpha if r.smoothing != "none" else 0.0
        return smoothed_info_nce(
            q, k, negatives.to(q.dtype), temperature=r.temperature, alpha=a, k_nn=r.smoothing_k, mode=mode,
            exclude=exclude,
        )


def _shuffled_across_processes(encode, x: torch.Tensor) -> torch.Tensor:
    """MoCo's shuffle BN under DDP: gather every process's batch, encode a random share, undo the shuffle."""
    world, rank = dist.get_world_size(), dist.get_rank()
    gathered = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(gathered, x.contiguous())
    full = torch.cat(gathered)
    perm = torch.randperm(full.shape[0], device=x.device)
    dist.broadcast(perm, src=0)  # every process applies the same permutation
    mine = full[perm].chunk(world)[rank]
    keys = encode(mine)
    all_keys = [torch.empty_like(keys) for _ in range(world)]
    dist.all_gather(all_keys, keys.contiguous())
    unshuffled = torch.cat(all_keys)[torch.argsort(perm)]
    return unshuffled.chunk(world)[rank]
