"""The local launcher: run one function on N ranks of a fresh process group on this machine (`--nproc N`).

Rank 0 runs in the calling process; ranks 1.. are spawned processes that join a TCP store on loopback.
What the ranks run is the caller's business (run/launch.py runs `train()`).
"""

from __future__ import annotations

import datetime
import functools
import multiprocessing
import os
import time
from typing import Any, Callable

import torch
import torch.distributed as dist

from lightrecipe.errors import UserError

LOOPBACK = "127.0.0.1"  # `--nproc` runs on one machine; the store listens on loopback only
DEFAULT_TIMEOUT_S = 1800.0  # torch.distributed's own default for gloo and nccl collectives (30 min)
JOIN_GRACE_S = 60.0  # how long the launcher waits for a rank to exit after rank 0 finished
STARTUP_POLL_S = 0.1  # how often rank 0 looks whether the spawned ranks have started or died


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
    # Not daemons: a rank's DataLoader starts worker processes of its own (image folders), which a daemonic
    # process may not have. A rank that outlives rank 0 is terminated by _join below, so none is left behind.
    threads = _threads_per_rank(nproc)
    children = [context.Process(target=_child, args=(fn, args, rank, nproc, store.port, backend, device,
                                                     timeout_s, threads))
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
