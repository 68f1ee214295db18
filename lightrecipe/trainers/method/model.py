"""MoCo: a timm backbone with a projector (query encoder), its momentum copy (key encoder) and a key queue.

Schedules are computed outside and passed in (`forward(x1, x2, key_momentum=..., alpha=...)`), as in
MoCo v3's builder. The loss is the pure function from losses.py; this module owns the state around it.

BatchNorm must not let the key of an image see its query's batch statistics (the model would learn to
cheat through them). With `bn_splits > 1` every BatchNorm of both encoders normalises per group of
`batch / bn_splits` images (split_bn.py, as MoCo's CIFAR demo simulates 8 GPUs), and the keys are encoded on
a shuffled batch whose groups never equal a query group. `bn_splits: 1` normalises over the whole batch
(MoCo v3 with SyncBatchNorm).

Data-parallel (distributed.py), `bn_splits` still counts groups in the global batch: each of W ranks splits its
share into bn_splits / W groups, the key batch is gathered from all ranks and shuffled across them (MoCo v2's
shuffle BN), and `bn_splits: 1` synchronises BatchNorm over all ranks. Keys of all ranks fill the queue and
serve as in-batch negatives. With one process every gather is the identity and the code path is the same.
"""

from __future__ import annotations

import copy

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

from lightrecipe.trainers.fields.smoothing_groups import Groups, parse_groups
from lightrecipe.trainers.method.losses import smoothed_info_nce
from lightrecipe.trainers.method.split_bn import (
    convert_to_split_bn,
    convert_to_sync_bn,
    key_order,
    refuse_norms_that_mix_images,
)
from lightrecipe.trainers.method.torch_private import ema_
from lightrecipe.trainers.parallel.world import World, check_parallel, local_bn_splits
from lightrecipe.trainers.recipe import Recipe


def mlp(in_dim: int, hidden_dim: int, out_dim: int, layers: int, bn: bool, last_bn: bool) -> nn.Sequential:
    """Linear (-> BN) -> ReLU blocks, then a Linear to out_dim (-> BN without affine).

    Without BN every Linear has a bias (MoCo v2's `--mlp` head, nn.Linear's default); with BN none has one
    (moco-v3 moco/builder.py `_build_mlp`: `nn.Linear(dim1, dim2, bias=False)`, last BN `affine=False`).
    """
    blocks: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers - 1):
        blocks.append(nn.Linear(dim, hidden_dim, bias=not bn))
        if bn:
            blocks.append(nn.BatchNorm1d(hidden_dim))
        blocks.append(nn.ReLU(inplace=True))
        dim = hidden_dim
    blocks.append(nn.Linear(dim, out_dim, bias=not bn))
    if last_bn:
        blocks.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*blocks)


def backbone_dim(backbone: nn.Module) -> int:
    """Width of a timm backbone's pooled output (num_classes=0).

    timm 1.0 reports it as `head_hidden_size` where a pre-logits layer follows the last stage (MobileNet-V3:
    960 -> 1280) and as `num_features` otherwise.
    """
    return int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)


def count_params(module: nn.Module) -> int:
    """Parameters of a network, as papers count a backbone's size (buffers such as BN statistics excluded)."""
    return sum(p.numel() for p in module.parameters())


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


# timm.create_model keyword arguments per Recipe.residual_init. torchvision's ResNet starts every block's last
# BatchNorm at weight 1 (zero_init_residual=False, its default and MoCo v2's); timm's ResNet zeroes it
# (zero_init_last=True, its default, which equals MoCo v3's zero_init_residual=True). The switch draws no random
# numbers, so one seed gives the same convolution weights under either init.
RESIDUAL_INIT = {"timm": {}, "torchvision": {"zero_init_last": False}}


def build_backbone(arch: str, residual_init: str = "timm") -> nn.Module:
    """timm's `arch` without a classifier, its residual blocks started as `residual_init` says. An arch whose
    constructor has no zero_init_last (MobileNet, ...) zeroes nothing: timm's and torchvision's init are one."""
    kwargs = RESIDUAL_INIT[residual_init]
    try:
        return timm.create_model(arch, pretrained=False, num_classes=0, **kwargs)
    except TypeError:
        if not kwargs:
            raise
        return timm.create_model(arch, pretrained=False, num_classes=0)  # refused before any weight was drawn


def loss_multiplier(loss_scale: float, rule: str, temperature: float) -> float:
    """What the loss is multiplied by: `loss_scale` ("constant"), or `loss_scale` x `temperature`
    ("temperature": MoCo v3's contrastive_loss returns CrossEntropy * 2T, so loss_scale 2 follows T)."""
    return loss_scale * temperature if rule == "temperature" else loss_scale


class MoCo(nn.Module):
    """Query and key encoders (timm backbone + projector, a predictor on the query side for MoCo v3), the
    key queue, and the loss. Built from plain settings; `MoCo.from_recipe` reads them off a Recipe, and
    nothing reads a recipe after construction."""

    def __init__(
        self,
        arch: str,
        *,
        proj_hidden_dim: int = 0,  # 0: the backbone's width
        proj_out_dim: int = 128,
        proj_layers: int = 2,
        proj_bn: bool = False,
        predictor_hidden_dim: int = 0,  # 0: no predictor (MoCo v1/v2)
        queue_size: int = 65536,  # 0: in-batch negatives (MoCo v3)
        symmetric: bool = False,
        temperature: float = 0.2,
        smoothing_mode: str = "topk",  # how smoothed InfoNCE picks its neighbours; the mass is forward's alpha
        smoothing_k: int = 0,
        smoothing_groups: Groups = (),  # graded: (size, share of alpha) per group of neighbour ranks
        loss_scale: float = 1.0,  # the loss multiplier itself (loss_multiplier turns a recipe's rule into it)
        residual_init: str = "timm",
        bn_splits: int = 1,  # BatchNorm groups in the global batch (ShuffleBN); 1: BatchNorm over the whole batch
        world: World | None = None,
    ):
        super().__init__()
        self.world = world or World()
        self.symmetric, self.temperature, self.loss_scale = symmetric, temperature, loss_scale
        self.smoothing_mode, self.smoothing_k, self.bn_splits = smoothing_mode, smoothing_k, bn_splits
        self.smoothing_groups = smoothing_groups
        self.backbone = build_backbone(arch, residual_init)
        feat_dim = backbone_dim(self.backbone)
        hidden = proj_hidden_dim or feat_dim
        self.projector = mlp(feat_dim, hidden, proj_out_dim, proj_layers, proj_bn, proj_bn)
        self.predictor = (
            mlp(proj_out_dim, predictor_hidden_dim, proj_out_dim, 2, True, False)
            if predictor_hidden_dim > 0
            else nn.Identity()
        )
        splits_here = local_bn_splits(bn_splits, self.world)
        if splits_here > 1:
            input_size = timm.data.resolve_model_data_config(self.backbone)["input_size"]
            refuse_norms_that_mix_images(self.backbone, input_size, owner=arch)
        for part in (self.backbone, self.projector, self.predictor):
            if splits_here > 1:
                convert_to_split_bn(part, splits_here, owner=arch)
            elif bn_splits == 1 and self.world.parallel:
                convert_to_sync_bn(part, owner=arch)
        self.key_backbone = copy.deepcopy(self.backbone)
        self.key_projector = copy.deepcopy(self.projector)
        for p in self.key_parameters():
            p.requires_grad_(False)
        self.queue = KeyQueue(queue_size, proj_out_dim) if queue_size > 0 else None

    @classmethod
    def from_recipe(cls, recipe: Recipe, world: World | None = None) -> "MoCo":
        """The model a recipe describes. Without smoothing the loss is plain InfoNCE: the trainer's alpha
        schedule gives 0 (trainer.Trainer.set_schedules), and the neighbour mode is then irrelevant."""
        world = world or World()
        check_parallel(recipe, world.size)
        return cls(
            recipe.arch, proj_hidden_dim=recipe.proj_hidden_dim, proj_out_dim=recipe.proj_out_dim,
            proj_layers=recipe.proj_layers, proj_bn=recipe.proj_bn, predictor_hidden_dim=recipe.predictor_hidden_dim,
            queue_size=recipe.queue_size, symmetric=recipe.symmetric, temperature=recipe.temperature,
            smoothing_mode=recipe.smoothing if recipe.smoothing != "none" else "topk",
            smoothing_k=recipe.smoothing_k, residual_init=recipe.residual_init, bn_splits=recipe.bn_splits,
            smoothing_groups=parse_groups(recipe.smoothing_groups) if recipe.smoothing == "graded" else (),
            loss_scale=loss_multiplier(recipe.loss_scale, recipe.loss_scale_rule, recipe.temperature), world=world,
        )

    def query_parameters(self) -> list[nn.Parameter]:
        return list(self.backbone.parameters()) + list(self.projector.parameters())

    def key_parameters(self) -> list[nn.Parameter]:
        return list(self.key_backbone.parameters()) + list(self.key_projector.parameters())

    @torch.no_grad()
    def update_key_encoder(self, momentum: float) -> None:
        """key = m * key + (1 - m) * query, parameter by parameter (one fused call per list)."""
        ema_(self.key_parameters(), self.query_parameters(), momentum)

    def encode_query(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised float32 query embeddings (B, D); under autocast the network runs in low precision."""
        return F.normalize(self.predictor(self.projector(self.backbone(x))).float(), dim=1)

    @torch.no_grad()
    def encode_key(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised float32 keys of the whole global batch (B, D) in global order (distributed.py), for
        this rank's images `x`; computed on a batch shuffled across BatchNorm groups (and ranks)."""
        splits, world = self.bn_splits, self.world
        if splits == 1:  # whole-batch BatchNorm: nothing to shuffle
            return world.gather(self._key(x))
        batch = world.gather(x)
        perm = world.broadcast(key_order(batch.shape[0], splits).to(x.device))  # rank 0's draw, as MoCo v2
        keys = world.gather(self._key(batch[world.shard(perm)]))
        return keys[torch.argsort(perm)]

    def _key(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.key_projector(self.key_backbone(x)).float(), dim=1)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, *, key_momentum: float, alpha: float) -> torch.Tensor:
        """The MoCo loss of this rank's two views (B, 3, S, S); updates the key encoder first and the queue
        after, with the keys of every rank."""
        self.update_key_encoder(key_momentum)
        k2 = self.encode_key(x2)
        loss = self._directional_loss(self.encode_query(x1), k2, alpha)
        keys = [k2]
        if self.symmetric:
            k1 = self.encode_key(x1)
            loss = loss + self._directional_loss(self.encode_query(x2), k1, alpha)
            keys.append(k1)
        if self.queue is not None:
            for k in keys:
                self.queue.push(k)
        return loss * self.loss_scale

    def _directional_loss(self, q: torch.Tensor, all_keys: torch.Tensor, alpha: float) -> torch.Tensor:
        """Loss of this rank's queries q (b, D) against their keys, with the queue or every rank's keys
        (`all_keys`, global order) as negatives; the smoothed loss picks its top-k among those negatives."""
        if self.queue is not None:
            negatives, exclude = self.queue.keys.clone(), None
        else:  # in-batch negatives: every other key of the global batch (moco-v3's concat_all_gather)
            negatives = all_keys
            exclude = self.world.own_positions(len(q), len(all_keys), q.device)
        return smoothed_info_nce(
            q, self.world.shard(all_keys), negatives, temperature=self.temperature, alpha=alpha,
            k_nn=self.smoothing_k, mode=self.smoothing_mode, exclude=exclude, groups=self.smoothing_groups,
        )
