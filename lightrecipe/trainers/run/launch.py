"""`lightrecipe train --nproc N`: `train()` data-parallel on N local processes (parallel/launch.py starts them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.distributed as dist

from lightrecipe.trainers.parallel.launch import DEFAULT_TIMEOUT_S, check_devices, rank_device, run_parallel
from lightrecipe.trainers.parallel.world import check_parallel


def launch(recipe, *, workdir: str | Path, nproc: int, device: str | None = None, report=None,
           timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """`train(recipe)` data-parallel on `nproc` local processes (gloo on CPU, nccl with one GPU each)."""
    check_parallel(recipe, nproc)
    check_devices(device, nproc)
    return run_parallel(_train_rank, nproc, args=(recipe.to_dict(), str(workdir), device),
                        rank0_kwargs={"report": report}, device=device, timeout_s=timeout_s)


def _train_rank(recipe_dict: dict[str, Any], workdir: str, device: str | None, report=None) -> dict[str, Any]:
    from lightrecipe.trainers.recipe import Recipe
    from lightrecipe.trainers.run.train import train

    return train(Recipe.from_dict(recipe_dict), workdir=workdir, device=rank_device(device, dist.get_rank()),
                 report=report)
