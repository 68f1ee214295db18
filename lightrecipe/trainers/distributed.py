"""Data parallelism for one MoCo run: the process group, the collectives MoCo needs, and the local launcher.

`train()` runs data-parallel whenever a torch.distributed process group is initialised around it (by
`launch` below for `lightrecipe train --nproc N`, or by Ray Train for a sweep trial over several workers).
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
import functools
import datetime
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist

from lightrecipe.errors import UserError

LOOPBACK = "127.0.0.1"  # `--nproc` runs on one machine; the store listens on loopback only
DEFAULT_TIMEOUT_S = 1800.0  # torch.distributed's own default for gloo and nccl collectives (30 min)
JOIN_GRACE_S = 60.0  # how long the launcher waits for a rank to exit after rank 0 finished
STARTUP_POLL_S = 0.1  # how often rank 0 looks whether the spawned ranks have started or died
RANK_SEED_STRIDE = 7_919  # augmentation generator seed = recipe seed + stride * rank (rank 0: the recipe seed)


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

    def gather_rows(self, x: torch.Tensor, total: int) -> torch.Tensor:
        """`gather` for shares of unequal length: the strided shares of `total` rows, padded to equal length."""
        if not self.parallel:
            return x
        longest = -(-total // self.size)
        padded = torch.zeros(longest, *x.shape[1:], dtype=x.dtype, device=x.device)
        padded[: x.shape[0]] = x
        return self.gather(padded)[:total]  # padding rows sit at positions >= total

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


@torch.no_grad()
def average_batch_norm_stats(model: torch.nn.Module, world: World) -> None:
    """Make every rank's BatchNorm running statistics their mean over ranks (one all-reduce)."""
    if not world.parallel:
        return
    from lightrecipe.trainers.split_bn import sync_running_stats

    buffers = []
    for layer in model.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm) and layer.running_mean is not None:
            sync_running_stats(layer)
            buffers += [layer.running_mean, layer.running_var]
    if not buffers:
        return
    flat = torch.cat([b.flatten() for b in buffers])
    dist.all_reduce(flat)
    flat /= world.size
    for b, part in zip(buffers, torch.split(flat, [b.numel() for b in buffers])):
        b.copy_(part.view_as(b))


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


# ----------------------------------------------------------------------------------------- local launcher


def rank_device(device: str | None, rank: int) -> torch.device:
    """cuda:<rank> for GPU runs (one GPU per process), cpu otherwise."""
    kind = torch.device(device).type if device else ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device("cuda", rank) if kind == "cuda" else torch.device("cpu")


def check_devices(device: str | None, nproc: int) -> None:
    kind = torch.device(device).type if device else ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda" and torch.cuda.device_count() < nproc:
        raise UserError(f"--nproc {nproc} needs {nproc} GPUs, {torch.cuda.device_count()} visible; "
                        f"lower --nproc or use --device cpu")


def run_parallel(fn: Callable[..., Any], nproc: int, *, args: tuple = (), rank0_kwargs: dict | None = None,
                 device: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
    """Run `fn(*args)` on `nproc` ranks of a fresh process group on this machine; return rank 0's result.

    Rank 0 runs in this process as `fn(*args, **rank0_kwargs)` (its result, callbacks and errors stay here:
    `rank0_kwargs` need not be picklable); ranks 1.. are spawned processes. The group's store listens on loopback at a port the OS picks. Every collective gives up after
    `timeout_s`; a rank that fails makes its peers' next collective fail, and the launcher then raises.
    """
    backend = "nccl" if rank_device(device, 0).type == "cuda" else "gloo"
    store = dist.TCPStore(LOOPBACK, 0, nproc, is_master=True, timeout=datetime.timedelta(seconds=timeout_s),
                          wait_for_workers=False)
    context = multiprocessing.get_context("spawn")
    threads = _threads_per_rank(nproc)
    children = [context.Process(target=_child, args=(fn, args, rank, nproc, store.port, backend, device,
                                                     timeout_s, threads), daemon=True)
                for rank in range(1, nproc)]
    for child in children:
        child.start()
    previous_threads = torch.get_num_threads()
    try:
        _await_children(store, children, timeout_s)
        result = _as_rank(functools.partial(fn, **(rank0_kwargs or {})), args, 0, nproc, store, backend, device,
                          timeout_s, threads)
    finally:
        torch.set_num_threads(previous_threads)
        failed = _join(children, JOIN_GRACE_S)
    if failed:
        raise RuntimeError(f"data-parallel run: {failed}")
    return result


def _threads_per_rank(nproc: int) -> int:
    return max(1, len(os.sched_getaffinity(0)) // nproc)


def _await_children(store, children, timeout_s: float) -> None:
    """Wait until every spawned rank has started (imported, connected to the store); fail at once, naming it,
    when one exits first, and after `timeout_s` otherwise: rank 0 would otherwise wait out the group's timeout."""
    deadline = time.monotonic() + timeout_s
    keys = [f"started/{rank}" for rank in range(1, len(children) + 1)]
    while not store.check(keys):
        for rank, child in enumerate(children, start=1):
            if not child.is_alive():
                raise RuntimeError(f"data-parallel rank {rank} exited (code {child.exitcode}) before joining the "
                                   "process group; its error is printed above")
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:.0f} s for data-parallel ranks 1..{len(children)} to start")
        time.sleep(STARTUP_POLL_S)


def _child(fn, args, rank, nproc, port, backend, device, timeout_s, threads) -> None:
    store = dist.TCPStore(LOOPBACK, port, nproc, is_master=False, timeout=datetime.timedelta(seconds=timeout_s))
    store.set(f"started/{rank}", "1")
    _as_rank(fn, args, rank, nproc, store, backend, device, timeout_s, threads)


def _as_rank(fn, args, rank, nproc, store, backend, device, timeout_s, threads) -> Any:
    torch.set_num_threads(threads)
    dev = rank_device(device, rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(backend, store=store, rank=rank, world_size=nproc,
                            timeout=datetime.timedelta(seconds=timeout_s))
    try:
        return fn(*args)
    finally:
        dist.destroy_process_group()


def _join(children, grace_s: float) -> str:
    """Wait for the spawned ranks; a description of those that failed or hung ('' when all exited 0)."""
    problems = []
    for rank, child in enumerate(children, start=1):
        child.join(grace_s)
        if child.is_alive():
            child.terminate()
            child.join(grace_s)
            problems.append(f"rank {rank} did not exit within {grace_s:.0f} s of rank 0 and was terminated")
        elif child.exitcode != 0:
            problems.append(f"rank {rank} exited with code {child.exitcode}")
    return "; ".join(problems)


def launch(recipe, *, workdir: str | Path, nproc: int, device: str | None = None, report=None,
           timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """`train(recipe)` data-parallel on `nproc` local processes (gloo on CPU, nccl with one GPU each)."""
    check_parallel(recipe, nproc)
    check_devices(device, nproc)
    return run_parallel(_train_rank, nproc, args=(recipe.to_dict(), str(workdir), device),
                        rank0_kwargs={"report": report}, device=device, timeout_s=timeout_s)


def _train_rank(recipe_dict: dict[str, Any], workdir: str, device: str | None, report=None) -> dict[str, Any]:
    from lightrecipe.trainers.recipe import Recipe
    from lightrecipe.trainers.train import train

    return train(Recipe.from_dict(recipe_dict), workdir=workdir, device=rank_device(device, dist.get_rank()),
                 report=report)
