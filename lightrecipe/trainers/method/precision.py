"""The recipe's `precision` setting as torch sees it: one map from its names to autocast dtypes."""

from __future__ import annotations

import contextlib

import torch

# fp32 runs without autocast; bf16 and fp16 run the network under torch.autocast (fp16 also scales the loss,
# see trainer.Trainer).
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
PRECISIONS = ("fp32", *AUTOCAST_DTYPES)


def autocast(device_type: str, precision: str):
    """torch.autocast for bf16/fp16, a no-op context for fp32."""
    dtype = AUTOCAST_DTYPES.get(precision)
    return torch.autocast(device_type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
