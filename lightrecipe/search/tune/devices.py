"""The devices a trial was promised, checked where the trial runs before it trains, and the node it runs on."""

from __future__ import annotations

import os
import socket

from lightrecipe.errors import UserError


def check_cuda(gpus: float) -> None:
    """Never fall back to a CPU silently (50x slower): a GPU trial on a worker without CUDA is an error."""
    import torch

    if gpus > 0 and not torch.cuda.is_available():
        raise UserError(
            f"--gpus-per-trial {gpus:g}, but this worker sees no CUDA device (CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', '')!r}, torch {torch.__version__})"
        )


def node_label() -> str:
    """host/IP/Ray node id: two Ray nodes on one machine share host and IP, never the node id."""
    import ray

    try:
        node_id = ray.get_runtime_context().get_node_id()[:8]
        ip = ray.util.get_node_ip_address()
    except Exception:  # noqa: BLE001 - outside Ray (a direct call in a test or a script)
        node_id, ip = "local", "127.0.0.1"
    return f"{socket.gethostname()}/{ip}/{node_id}"
