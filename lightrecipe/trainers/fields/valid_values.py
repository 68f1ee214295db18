"""The values each recipe field accepts: the choices of the text fields, the numeric bounds, the types.

The Recipe checks itself against these, and search spaces check their ranges and choices against the same
tables, so a space can never propose a value that the trainer would refuse.
"""

from __future__ import annotations

import math
from typing import Any

CHOICES: dict[str, tuple[str, ...]] = {
    "dataset": ("digits", "cifar10", "cifar100", "imagefolder", "unlabeled"),
    "lr_scaling": ("linear", "none"),
    "optimizer": ("sgd", "lars", "adamw"),
    "key_momentum_schedule": ("constant", "cosine"),
    "residual_init": ("timm", "torchvision"),
    "loss_scale_rule": ("constant", "temperature"),
    "smoothing": ("none", "topk", "uniform", "graded"),
    "smoothing_schedule": ("constant", "warmup", "cosine"),
    "smoothing_schedule_unit": ("step", "epoch"),
    "probe_method": ("lbfgs", "sgd"),
    "precision": ("fp32", "bf16", "fp16"),
    "jpeg_decode": ("workers", "device"),
}

# Inclusive numeric bounds (low, high); None means unbounded on that side.
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "image_size": (8, 1024),
    "epochs": (1, None),
    "batch_size": (2, None),
    "base_lr": (0.0, None),
    "momentum": (0.0, 1.0),
    "weight_decay": (0.0, None),
    "warmup_epochs": (0.0, None),
    "temperature": (1e-4, None),
    "queue_size": (0, None),
    "key_momentum": (0.0, 1.0),
    "proj_hidden_dim": (0, None),
    "proj_out_dim": (1, None),
    "proj_layers": (1, 8),
    "predictor_hidden_dim": (0, None),
    "loss_scale": (0.0, None),
    "smoothing_alpha": (0.0, 1.0),
    "smoothing_k": (0, None),
    "aug_strength": (0.0, 4.0),
    "crop_min_scale": (0.01, 1.0),
    "color_jitter_prob": (0.0, 1.0),
    "grayscale_prob": (0.0, 1.0),
    "blur_prob": (0.0, 1.0),
    "solarize_prob": (0.0, 1.0),
    "blur_prob_view2": (-1.0, 1.0),  # -1 = as view 1; otherwise a probability (checked in _validate_combinations)
    "solarize_prob_view2": (-1.0, 1.0),
    "jitter_brightness": (0.0, 2.0),
    "jitter_contrast": (0.0, 2.0),
    "jitter_saturation": (0.0, 2.0),
    "jitter_hue": (0.0, 0.5),  # torchvision's ColorJitter: hue in [0, 0.5]
    "hflip_prob": (0.0, 1.0),
    "bn_splits": (1, None),
    "knn_k": (1, None),
    "knn_temperature": (1e-4, None),
    "probe_epochs": (1, None),
    "probe_lr": (0.0, None),
    "probe_weight_decay": (0.0, None),
    "data_fraction": (1e-4, 1.0),
    "num_workers": (0, None),
    "seed": (0, None),
}


VIEW2_AS_VIEW1 = -1.0  # value of a *_view2 probability field that means "as the first view"


TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}


def value_fits(ftype: type, value: Any) -> bool:
    """Whether `value` has the type a recipe field declared as `ftype` takes: no bool where a number is meant,
    an int fills a float field, numbers are finite. Recipes and search spaces both check values with this."""
    if ftype is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False  # Python counts a bool as an int; a recipe never takes one as a number or a string
    if ftype is int:
        return isinstance(value, int)
    if ftype is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, str)


def outside_bounds(name: str, value: Any) -> str | None:
    """The valid range of field `name` as text, e.g. '[0, 1]', when `value` lies outside it; else None."""
    if name not in BOUNDS:
        return None
    low, high = BOUNDS[name]
    if (low is not None and value < low) or (high is not None and value > high):
        return f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
    return None
