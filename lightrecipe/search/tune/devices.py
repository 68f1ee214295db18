"""The devices a trial was promised: checked where the trial runs, before it trains."""

from __future__ import annotations

import os

from lightrecipe.errors import UserError


def check_cuda(gpus: float) -> None:
    """Never fall back to a CPU silently (50x slower): a GPU trial on a worker without CUDA is an error."""
    import torch

    if gpus > 0 and not torch.cuda.is_available():
        raise UserError(
            f"--gpus-per-trial {gpus:g}, but this worker sees no CUDA device (CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', '')!r}, torch {torch.__version__})"
        )
