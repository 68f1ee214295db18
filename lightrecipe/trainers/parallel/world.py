"""Data parallelism for one MoCo run: the process group and the collectives MoCo needs (the launcher: launch.py).

`train()` runs data-parallel whenever a torch.distributed process group is initialised around it (by
run/launch.py for `lightrecipe train --nproc N`, or by Ray Train for a sweep trial over several workers).
Nothing else about the run changes: the recipe's `batch_size` is the global batch (the lr scales with it),
and `bn_splits` the number of BatchNorm groups in the global batch.

Layout of the global batch. Global position p lives on rank p % W at local position p // W ("strided"), so
every rank reads a disjoint share of each global batch in the order one process would use, and the split
BatchNorm group p % bn_splits of a single process is local group (p // W) % (bn_splits / W) of rank p % W:
the same grouping, so a W-process run computes what one process computes at the same global batch.

MoCo under data parallelism, as the reference code (facebookresearch/moco `_batch_shuffle_ddp`,
`concat_all_gather`; moco-v3 builder) does it:
- keys: the key inputs of all ranks are gathered, shuffled by a permutation drawn on rank 0 and broadcast
  (split BN's `key_order`, so no key BatchNorm group equals a query group), each rank encodes its strided
  share, the keys are gathered again and unshuffled;
- the queue receives the keys of all ranks (identical on every rank); in-batch negatives are the keys of all
  ranks, and the smoothed loss picks its top-k among those same negatives;
- `bn_splits: 1` is BatchNorm over the whole global batch (SyncBatchNorm; split_bn.py's sync layers);
- gradients are averaged by DistributedDataParallel; BatchNorm running statistics are averaged over ranks
  before every evaluation and checkpoint (exact: each rank's are the mean of its groups' momentum updates).
"""

from __future__ import annotations

import copy
import socket
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist

from lightrecipe.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place in the process group: `rank` of `size` (size 1: no group, every call a no-op)."""

    rank: int = 0
    size: int = 1

    @classmethod
    def current(cls) -> "World":
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def parallel(self) -> bool:
        return self.size > 1

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's strided share of a tensor in global order (rows rank, rank + size, ...)."""
        return x[self.rank::self.size] if self.parallel else x

    @torch.no_grad()
    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Every rank's `x` (same shape everywhere) in global order: row l of rank r lands at l * size + r.

        No gradient flows back (the reference's `concat_all_gather`): MoCo gathers key inputs and keys only.
        """
        if not self.parallel:
            return x
        parts = [torch.empty_like(x) for _ in range(self.size)]
        dist.all_gather(parts, x.contiguous())
        return torch.stack(parts, dim=1).flatten(0, 1)

    @torch.no_grad()
    def rows_on_rank0(self, x: torch.Tensor, total: int) -> torch.Tensor | None:
        """Every rank's strided share of `total` rows (shares of unequal length), in global order, on rank 0
        alone (None on the others): what is scored once needs the whole matrix once, not on every rank
        (ImageNet's val features are gigabytes). Shares are padded to equal length for the collective."""
        if not self.parallel:
            return x
        longest = -(-total // self.size)
        padded = torch.zeros(longest, *x.shape[1:], dtype=x.dtype, device=x.device)
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in range(self.size)] if self.rank == 0 else None
        dist.gather(padded, parts, dst=0)
        return torch.stack(parts, dim=1).flatten(0, 1)[:total] if self.rank == 0 else None

    def broadcast(self, x: torch.Tensor) -> torch.Tensor:
        """Rank 0's `x` on every rank (in place)."""
        if self.parallel:
            dist.broadcast(x, src=0)
        return x

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        """The sum of `x` over ranks (a new tensor)."""
        if not self.parallel:
            return x
        x = x.clone()
        dist.all_reduce(x)
        return x

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of `x` over ranks (a new tensor)."""
        return self.sum(x) / self.size if self.parallel else x

    def minimum(self, value: int) -> int:
        if not self.parallel:
            return value
        t = torch.tensor([value], dtype=torch.int64, device=_collective_device())
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return int(t.item())

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's picklable `obj`, in rank order, on every rank."""
        if not self.parallel:
            return [obj]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def from_rank0(self, obj: Any) -> Any:
        """Rank 0's picklable `obj` on every rank."""
        if not self.parallel:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def agree(self, attempt: Callable[[], T]) -> T:
        """`attempt()` on every rank; a UserError on any rank is raised on every rank.

        Without it a rank that stops (its node lacks the data) leaves the others waiting in their next collective
        until the group times out; with it all ranks stop together with the one line the user has to act on: the
        message itself when every rank failed alike, else the first failing rank's, naming the rank and its host.
        """
        if not self.parallel:
            return attempt()
        result, problem = None, ""
        try:
            result = attempt()
        except UserError as exc:
            problem = str(exc)
        failed = [(rank, host, text) for rank, (host, text) in
                  enumerate(self.gather_objects((socket.gethostname(), problem))) if text]
        if not failed:
            return result
        if len(failed) == self.size and len({text for _, _, text in failed}) == 1:
            raise UserError(failed[0][2])
        rank, host, text = failed[0]
        raise UserError(f"rank {rank} of {self.size} (on {host}): {text}")

    def barrier(self) -> None:
        if self.parallel:
            dist.barrier()

    def own_positions(self, local: int, total: int, device: torch.device) -> torch.Tensor:
        """(local, total) bool mask: True where column j is the global position of local row n."""
        rows = torch.arange(local, device=device) * self.size + self.rank
        return rows.view(-1, 1) == torch.arange(total, device=device).view(1, -1)


def _collective_device() -> torch.device:
    """Where small collective tensors live: nccl only moves CUDA tensors, gloo CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def check_parallel(recipe, size: int) -> None:
    """The recipe rules that only exist with `size` processes; a UserError naming the field and what fits."""
    if size < 1:
        raise UserError(f"--nproc must be >= 1, got {size}")
    if size == 1:
        return
    if recipe.batch_size % size:
        raise UserError(f"recipe field 'batch_size' ({recipe.batch_size}) is the global batch and must divide "
                        f"evenly over {size} processes; valid: a multiple of {size}")
    if recipe.bn_splits > 1 and recipe.bn_splits % size:
        raise UserError(f"recipe field 'bn_splits' ({recipe.bn_splits}) counts BatchNorm groups in the global batch "
                        f"and must be 1 (BatchNorm over the whole batch) or a multiple of the {size} processes")


def local_bn_splits(bn_splits: int, world: World) -> int:
    """BatchNorm groups per rank, of `bn_splits` in the global batch (1 with `bn_splits: 1`, where BatchNorm is
    synchronised instead)."""
    return max(1, bn_splits // world.size)


def shard_split(split, world: World):
    """`split` as this rank reads it: every epoch order (training or evaluation) cut to the rank's strided share.

    Callers pass the local batch size; the whole order is drawn at `batch * size`, exactly as one process at
    the global batch draws it (the same generator state gives the same permutation), then each global batch
    is cut into strided shares. A shallow copy: images, caches and skipped-file records stay shared.
    """
    if not world.parallel:
        return split
    whole = split.epoch_order
    local = copy.copy(split)

    def epoch_order(batch_size: int, *, shuffle: bool, drop_last: bool, generator=None) -> torch.Tensor:
        global_batch = batch_size * world.size
        order = whole(global_batch, shuffle=shuffle, drop_last=drop_last, generator=generator)
        if drop_last:
            return order.view(-1, global_batch)[:, world.rank::world.size].flatten()
        return order[world.rank::world.size]

    local.epoch_order = epoch_order
    return local


def wrap_for_gradients(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """The module to call for training steps: DistributedDataParallel averaging gradients, or `model` itself.

    Buffers are not broadcast each step (`broadcast_buffers=False`): the queue is identical on every rank by
    construction and BatchNorm statistics are averaged before they are used.
    """
    if not world.parallel:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, init_sync=False, forward_sync_buffers=False)
