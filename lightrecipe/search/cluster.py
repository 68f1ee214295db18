"""Ray: start a local instance or join a cluster, and check that a trial fits on it.

Nothing here schedules work; Ray does (ARCHITECTURE.md). A caller that already connected (a test session, a
notebook) keeps its connection: the sweep uses it and leaves it running.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from typing import Iterator

from lightrecipe.errors import UserError

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # an offline tool: no usage reports


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """Connected Ray for the duration of the block: `address` joins a cluster, None starts a local one."""
    import ray

    if ray.is_initialized():
        yield
        return
    kwargs = dict(
        include_dashboard=False,  # the sweep prints its own table; a dashboard costs a process and a port
        log_to_driver=False,  # trial output goes to worker logs, so it cannot break the progress table
        logging_level=logging.WARNING,
    )
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            # "local": always a new instance, never one that RAY_ADDRESS or /tmp/ray points to (--address does that)
            ray.init(address="local", **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"--address {address}" if address else "local Ray"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{where}: cannot connect: {first}; start the head with `ray start --head`") from None
    try:
        yield
    finally:
        ray.shutdown()


def trials_that_fit(cpus_per_trial: float, gpus_per_trial: float) -> int:
    """How many trials the cluster can run at once; UserError when not even one fits on any node."""
    import ray

    best_node, total = 0.0, 0
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        res = node.get("Resources", {})
        fits = _fits(res.get("CPU", 0.0), cpus_per_trial)
        if gpus_per_trial > 0:
            fits = min(fits, _fits(res.get("GPU", 0.0), gpus_per_trial))
        total += fits
        best_node = max(best_node, fits)
    if best_node < 1:
        need = f"{cpus_per_trial:g} CPU" + (f" and {gpus_per_trial:g} GPU" if gpus_per_trial > 0 else "")
        have = ", ".join(
            f"{n.get('Resources', {}).get('CPU', 0):g} CPU/{n.get('Resources', {}).get('GPU', 0):g} GPU"
            for n in ray.nodes()
            if n.get("Alive")
        )
        raise UserError(
            f"a trial needs {need} (--cpus-per-trial/--gpus-per-trial) but no Ray node has that much "
            f"(nodes: {have or 'none'}); lower the request or add nodes"
        )
    return total


def _fits(available: float, per_trial: float) -> int:
    if per_trial <= 0:
        return 1_000_000
    return int(math.floor(available / per_trial + 1e-9))
