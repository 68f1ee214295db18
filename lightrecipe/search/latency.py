"""Each arch's inference latency, measured once per sweep study on the driver's machine and kept as the study
attribute `records.LATENCY`, so the report can put accuracy against the time a user's server would spend.

The driver is the one machine a sweep surely has (trials may run on any node), so its numbers are comparable
across the archs of one sweep; each row names its device and thread count. CPU with 1 thread (a serving
process per core) and with every core, and the GPU when the driver has one. A few seconds per arch; a
`--resume` keeps the numbers it has.
"""

from __future__ import annotations

import os
from typing import Any

import optuna

from lightrecipe.search.store import records
from lightrecipe.search.store.study import jsonable


def settings() -> list[dict[str, Any]]:
    """The (device, threads) pairs measured on this machine."""
    import torch

    out = [{"device": "cpu", "threads": 1}]
    cores = len(os.sched_getaffinity(0))
    if cores > 1:
        out.append({"device": "cpu", "threads": cores})
    if torch.cuda.is_available():
        out.append({"device": "cuda", "threads": None})
    return out


def ensure(study: optuna.Study, arch: str, image_size: int) -> None:
    """Measure `arch` at the study's image size unless the study already holds its latency."""
    if study.user_attrs.get(records.LATENCY):
        return
    from lightrecipe.trainers.latency import measure

    rows = [measure(arch, image_size=image_size, **s) for s in settings()]
    study.set_user_attr(records.LATENCY, jsonable(rows))
