"""The training recipe: one frozen dataclass, the only object passed into training.

Every field has a default and says where the value comes from. Derived values (the effective learning
rate) are properties. `Recipe.validate()` runs in `__post_init__`, so an invalid recipe cannot exist; each
error names the field and what is valid.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from lightrecipe.errors import UserError, nearest
from lightrecipe.trainers.fields.arch_names import check_arch
from lightrecipe.trainers.fields.fit_rule import fitted_batch, fitted_queue
from lightrecipe.trainers.fields.recipe_text import CPU_THREADS, checked_cpu_threads, load_mapping, parse_assignments
from lightrecipe.trainers.fields.smoothing_groups import EXAMPLE as SMOOTHING_EXAMPLE
from lightrecipe.trainers.fields.smoothing_groups import neighbours, parse_groups
from lightrecipe.trainers.fields.valid_values import (
    BOUNDS,
    CHOICES,
    TYPE_WORDS,
    VIEW2_AS_VIEW1,
    outside_bounds,
    value_fits,
)
from lightrecipe.trainers.presets import preset_fields

# What a recipe is trained and scored on, and what it runs on, rather than how it trains: the data, its
# resolution, the evaluation protocol and the hardware settings. Two recipes being compared (a searched one and
# the ResNet-50 baseline) keep these equal, so a difference in score is the recipe's.
SHARED_FIELDS = (
    "dataset", "data_root", "eval_root", "image_size", "data_fraction", "num_workers", "jpeg_decode",
    "precision", "channels_last", "compile",
    "knn_k", "knn_temperature", "probe_method", "probe_epochs", "probe_lr", "probe_weight_decay",
)


@dataclass(frozen=True)
class Recipe:
    # --- model and data -------------------------------------------------------------------------
    arch: str = "mobilenetv3_large_100"  # any timm name; the paper's main efficient net
    dataset: str = "digits"  # scikit-learn's bundled 8x8 digits: real, offline
    data_root: str = ""  # folder (or prepared cache) for cifar10/cifar100/imagefolder/unlabeled; unused by digits
    # unlabeled: the labeled ImageNet-layout folder (or its cache) that scores the net: train/ = kNN bank and
    # probe set, val held out of it, val/ = test. Self-supervised users pretrain on their own unlabeled images.
    eval_root: str = ""
    image_size: int = 32  # digits are upsampled 8 -> 32 px (CIFAR's size); ImageNet uses 224
    epochs: int = 20  # short schedule: a search trial, not a final run
    batch_size: int = 256  # MoCo v2
    data_fraction: float = 1.0  # share of the train split used: a fidelity knob for short trials
    num_workers: int = 2  # DataLoader workers that decode imagefolder files (this machine has 2 cores)
    # Training JPEGs of a folder (imagefolder, unlabeled): decoded by the workers, or read by them and decoded in
    # batches on the training device (nvJPEG on a GPU). The device decodes between steps: on an H200 it beat 4
    # workers and lost to 12 (README, "jpeg_decode").
    jpeg_decode: str = "workers"
    # How residual blocks start (model.RESIDUAL_INIT): timm's ResNets zero the last BatchNorm of each block
    # (zero_init_last), torchvision's, which MoCo v2 builds, do not. Archs without it: both are the same init.
    residual_init: str = "timm"

    # --- optimisation ---------------------------------------------------------------------------
    base_lr: float = 0.03  # MoCo v2: lr 0.03 at batch 256
    lr_scaling: str = "linear"  # linear: lr = base_lr * batch_size / 256 (Goyal et al.); none: lr = base_lr
    optimizer: str = "sgd"  # MoCo v2: SGD
    momentum: float = 0.9  # MoCo v2 SGD momentum (beta1 for adamw)
    weight_decay: float = 1e-4  # MoCo v2
    wd_on_norm_and_bias: bool = True  # MoCo v2 decays every parameter; MoCo v3/BYOL exclude norms and biases
    warmup_epochs: float = 0.0  # MoCo v2 has no warm-up; MoCo v3 uses 10; >= epochs: the whole run warms up
    # bf16/fp16: autocast (GPUs; CPUs run it too, slowly); fp16 adds a GradScaler (moco-v3 main_moco.py).
    # The contrastive logits and the top-k choice are always computed in float32.
    precision: str = "fp32"
    channels_last: bool = False  # faster convolutions on tensor-core GPUs; NCHW where split BN is on (trainer.py)
    compile: bool = False  # torch.compile the encoders (GPU runs; costs start-up time)
    seed: int = 0

    # --- contrastive objective ------------------------------------------------------------------
    temperature: float = 0.2  # MoCo v2
    queue_size: int = 65536  # MoCo v2 K; 0 = in-batch negatives (MoCo v3)
    key_momentum: float = 0.999  # MoCo v2 key-encoder EMA momentum
    key_momentum_schedule: str = "constant"  # cosine: rises from key_momentum to 1 (MoCo v3)
    proj_hidden_dim: int = 2048  # MoCo v2 projector feature_dim -> 2048 -> 128; 0 = backbone feature dim
    proj_out_dim: int = 128  # MoCo v2
    proj_layers: int = 2  # linear layers in the projector; MoCo v2: 2, MoCo v3: 3
    proj_bn: bool = False  # BatchNorm in the projector (MoCo v3)
    predictor_hidden_dim: int = 0  # MoCo v3 predictor on the query side; 0 = no predictor (MoCo v2)
    symmetric: bool = False  # sum of both directions' losses (MoCo v3); behaves like twice the epochs
    loss_scale: float = 1.0  # the loss is multiplied by this (constant) or by this x temperature (MoCo v3: 2T)
    loss_scale_rule: str = "constant"  # temperature: the scale follows a searched temperature (model.loss_multiplier)
    # BatchNorm groups of batch_size / bn_splits images in both encoders, keys on a shuffled batch: one device
    # standing in for MoCo v2's 8 GPUs with shuffle BN (MoCo's CIFAR demo: 8). 1 = the whole batch (MoCo v3's
    # SyncBatchNorm). Must divide batch_size and leave >= 2 images per group.
    bn_splits: int = 8

    # --- smoothed InfoNCE (docs/science.md) ------------------------------------------------------------
    # topk: alpha spread over the k most similar negatives; uniform: over all; graded: over groups of neighbour
    # ranks with their own shares (smoothing_groups, the authors' other rules)
    smoothing: str = "none"
    smoothing_alpha: float = 0.0  # target mass moved off the positive; third-party notes: 0.02 to 0.2
    smoothing_k: int = 0  # neighbours that share alpha; third-party notes: about 20
    # constant: alpha throughout; cosine: ramps 0 -> alpha over the run (docs/science.md); warmup: 0 during the lr
    # warm-up (the first `warmup_epochs`), alpha after. "warmup" takes its length from warmup_epochs, as
    # docs/science.md defines it, so with warmup_epochs 0 it would silently equal "constant": that is rejected.
    smoothing_schedule: str = "constant"
    smoothing_schedule_unit: str = "step"  # step: alpha follows its schedule every step; epoch: once per epoch
    smoothing_groups: str = ""  # graded: "SIZE:WEIGHT ...", e.g. "2:1 6:1 12:1" (fields/smoothing_groups.py)

    # --- augmentation (MoCo v2 "aug+" at aug_strength 1) ----------------------------------------
    aug_strength: float = 1.0  # multiplies the four jitter strengths below (a one-knob search of colour strength)
    jitter_brightness: float = 0.4  # MoCo v2 ColorJitter(0.4, 0.4, 0.4, 0.1); MoCo v3 (0.4, 0.4, 0.2, 0.1)
    jitter_contrast: float = 0.4
    jitter_saturation: float = 0.4
    jitter_hue: float = 0.1
    crop_min_scale: float = 0.2  # RandomResizedCrop scale (0.2, 1.0), ratio (3/4, 4/3), sampled as torchvision
    color_jitter_prob: float = 0.8  # MoCo v2
    grayscale_prob: float = 0.2  # MoCo v2
    # Gaussian blur, sigma uniform in [0.1, 2.0] pixels of the view (MoCo v2 at 224 px; the same pixel sigma at
    # every size, so the blur visibly changes a 32 px view too). MoCo's CIFAR demo uses none on small images.
    blur_prob: float = 0.5
    solarize_prob: float = 0.0  # MoCo v2 has none; BYOL/MoCo v3 use 0.2 on the second view
    hflip_prob: float = 0.5  # MoCo v2
    # The second view's blur and solarize probabilities; -1 = as the first view (MoCo v2: both views alike).
    # MoCo v3 / BYOL are asymmetric: view 1 blur 1.0 solarize 0, view 2 blur 0.1 solarize 0.2.
    blur_prob_view2: float = -1.0
    solarize_prob_view2: float = -1.0

    # --- evaluation -----------------------------------------------------------------------------
    knn_k: int = 20  # kNN monitor neighbours (field habit: 20 or 200)
    knn_temperature: float = 0.1  # kNN weights exp(sim / t) (MoCo CIFAR demo: 0.1)
    probe_method: str = "lbfgs"  # lbfgs: full-batch logistic regression, deterministic; sgd: MoCo v2 protocol
    probe_epochs: int = 100  # MoCo v2 linear probe
    probe_lr: float = 30.0  # MoCo v2 linear probe lr for SGD (lbfgs ignores it)
    probe_weight_decay: float = 0.0  # MoCo v2 linear probe

    def __post_init__(self) -> None:
        self.validate()

    # --- derived values -------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        """Peak learning rate after batch-size scaling."""
        if self.lr_scaling == "linear":
            return self.base_lr * self.batch_size / 256
        return self.base_lr

    @property
    def jitter(self) -> tuple[float, float, float, float]:
        """Effective ColorJitter (brightness, contrast, saturation, hue): the strengths times aug_strength."""
        s = self.aug_strength
        hue = min(s * self.jitter_hue, BOUNDS["jitter_hue"][1])  # torchvision allows hue up to 0.5
        return (s * self.jitter_brightness, s * self.jitter_contrast, s * self.jitter_saturation, hue)

    def view_probs(self, view: int) -> dict[str, float]:
        """The augmentation probabilities of view 1 or 2 (view 2's blur/solarize default to view 1's)."""
        probs = {"jitter": self.color_jitter_prob, "grayscale": self.grayscale_prob, "blur": self.blur_prob,
                 "solarize": self.solarize_prob, "hflip": self.hflip_prob}
        if view == 2:
            for name, second in (("blur", self.blur_prob_view2), ("solarize", self.solarize_prob_view2)):
                if second != VIEW2_AS_VIEW1:
                    probs[name] = second
        return probs

    def check_train_size(self, train_size: int) -> None:
        """The rules that need the number of training images (after data_fraction); UserError if broken, with a
        value that fits from fit_rule.py."""
        if self.batch_size > train_size:
            fits = fitted_batch(self.batch_size, train_size, self.bn_splits)
            example = f" (e.g. {fits})" if fits <= train_size else ""
            raise UserError(
                f"recipe field 'batch_size' ({self.batch_size}) exceeds the {train_size} training images; "
                f"lower batch_size{example} or raise data_fraction"
            )
        if self.queue_size >= train_size:
            fits = fitted_queue(self.queue_size, train_size, self.batch_size)
            example = f"e.g. {fits}, " if fits < train_size else ""
            raise UserError(
                f"recipe field 'queue_size' ({self.queue_size}) is not smaller than the {train_size} training "
                f"images (data_fraction {self.data_fraction}), so every image's own stale key would be among its "
                f"negatives; use a multiple of batch_size well below {train_size} ({example}or 0 for in-batch "
                "negatives)"
            )

    # --- validation -----------------------------------------------------------------------------
    def validate(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            if not value_fits(hints[f.name], value):
                raise UserError(f"recipe field '{f.name}' must be {TYPE_WORDS[hints[f.name]]}, got {value!r}")
            if f.name in CHOICES and value not in CHOICES[f.name]:
                valid = ", ".join(CHOICES[f.name])
                raise UserError(f"recipe field '{f.name}' is {value!r}; valid: {valid}")
            span = outside_bounds(f.name, value)
            if span:
                raise UserError(f"recipe field '{f.name}' is {value!r}; valid range {span}")
        self._validate_combinations()
        check_arch(self.arch)

    def _validate_combinations(self) -> None:
        if self.smoothing == "topk" and self.smoothing_alpha > 0 and self.smoothing_k == 0:
            raise UserError(
                "recipe field 'smoothing_k' is 0 with smoothing_alpha > 0: top-k smoothing needs k >= 1 "
                "neighbours to share alpha (set smoothing_k, or smoothing_alpha: 0)"
            )
        if self.smoothing == "topk" and self.queue_size > 0 and self.smoothing_k > self.queue_size:
            raise UserError(
                f"recipe field 'smoothing_k' ({self.smoothing_k}) exceeds queue_size ({self.queue_size}); "
                "valid: 1..queue_size"
            )
        self._validate_smoothing_groups()
        if self.queue_size > 0 and self.queue_size % self.batch_size != 0:
            raise UserError(
                f"recipe field 'queue_size' ({self.queue_size}) must be a multiple of batch_size "
                f"({self.batch_size}), or 0 for in-batch negatives"
            )
        if self.batch_size % self.bn_splits != 0 or self.batch_size // self.bn_splits < 2:
            raise UserError(
                f"recipe field 'bn_splits' ({self.bn_splits}) must divide batch_size ({self.batch_size}) into "
                f"groups of at least 2 images (BatchNorm needs 2 per group); valid: a divisor of {self.batch_size} "
                f"up to {self.batch_size // 2}"
            )
        if self.smoothing != "none" and self.smoothing_schedule == "warmup" and self.warmup_epochs == 0:
            raise UserError(
                "recipe field 'smoothing_schedule' is 'warmup' with warmup_epochs 0: it keeps alpha at 0 during "
                "the lr warm-up, so it would equal 'constant'; set warmup_epochs > 0 or use constant or cosine"
            )
        for name in ("blur_prob_view2", "solarize_prob_view2"):
            value = getattr(self, name)
            if value != VIEW2_AS_VIEW1 and not 0.0 <= value <= 1.0:
                raise UserError(f"recipe field '{name}' is {value!r}; valid: -1 (as view 1) or a probability in [0, 1]")
        if self.dataset in ("cifar10", "cifar100", "imagefolder", "unlabeled") and not self.data_root:
            raise UserError(f"recipe field 'data_root' is empty; dataset '{self.dataset}' needs the folder it lives in")
        if self.dataset == "unlabeled" and not self.eval_root:
            raise UserError("recipe field 'eval_root' is empty; dataset 'unlabeled' needs a labeled ImageNet-layout "
                            "folder to score on (eval_root/train/<class>/*, eval_root/val/<class>/*)")
        if self.eval_root and self.dataset != "unlabeled":
            raise UserError(f"recipe field 'eval_root' is set but dataset is '{self.dataset}'; only dataset "
                            "'unlabeled' reads it (its own data is scored)")

    def _validate_smoothing_groups(self) -> None:
        if self.smoothing != "graded":
            if self.smoothing_groups:
                raise UserError(f"recipe field 'smoothing_groups' is set but smoothing is '{self.smoothing}'; only "
                                "smoothing 'graded' reads it (set smoothing: graded, or smoothing_groups: '')")
            return
        try:
            groups = parse_groups(self.smoothing_groups)
        except ValueError as exc:
            raise UserError(f"recipe field 'smoothing_groups' is {self.smoothing_groups!r}: {exc}; valid: groups of "
                            f"neighbour ranks as SIZE:WEIGHT, e.g. '{SMOOTHING_EXAMPLE}'") from None
        if self.queue_size > 0 and neighbours(groups) > self.queue_size:
            raise UserError(f"recipe field 'smoothing_groups' weighs {neighbours(groups)} neighbours, more than "
                            f"queue_size ({self.queue_size}); valid: at most queue_size in all")

    # --- serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "recipe") -> "Recipe":
        check_field_names(data, source)
        return cls(**_coerce_numbers(data))

    @classmethod
    def from_file(cls, path: str | Path) -> "Recipe":
        """A recipe from a JSON or YAML file: a full recipe, or a preset name plus overrides.

        `preset: NAME` in the file starts from that preset; the other keys override it. A `cpu_threads` key is
        not part of the recipe (CPU_THREADS; `cpu_threads_of` reads it).
        """
        data = load_mapping(path)
        checked_cpu_threads(data.pop(CPU_THREADS, None), path)
        base = data.pop("preset", None)
        if base is not None:
            return preset(str(base)).replace(source=str(path), **data)
        return cls.from_dict(data, source=str(path))

    def replace(self, *, source: str = "override", **changes: Any) -> "Recipe":
        check_field_names(changes, source)
        return dataclasses.replace(self, **_coerce_numbers(changes))

    def with_overrides(self, assignments: list[str]) -> "Recipe":
        """Apply `key=value` strings (the CLI's `--set`), each value parsed as YAML and checked."""
        return self.replace(source="--set", **parse_assignments(assignments))


def preset(name: str, **overrides: Any) -> Recipe:
    """A preset recipe (presets.py), optionally with fields replaced."""
    base = preset_fields(name)
    base.update(overrides)
    return Recipe().replace(source=f"preset '{name}'", **base) if base else Recipe()


FIELD_NAMES = tuple(f.name for f in fields(Recipe))


def check_field_names(data: Mapping[str, Any], source: str) -> None:
    """UserError naming the nearest field for the first key of `data` that is not a recipe field."""
    for key in data:
        if key not in FIELD_NAMES:
            raise UserError(f"{source}: unknown recipe field '{key}'{nearest(str(key), FIELD_NAMES)}")


def _coerce_numbers(data: Mapping[str, Any]) -> dict[str, Any]:
    """Ints where a float field is expected become floats (YAML writes 1e-4 as a string, 1 as an int)."""
    hints = typing.get_type_hints(Recipe)
    out = dict(data)
    for key, value in data.items():
        if hints.get(key) is float and isinstance(value, str):
            try:
                out[key] = float(value)
            except ValueError:
                pass  # validate() reports it with the field name
        elif hints.get(key) is float and isinstance(value, int) and not isinstance(value, bool):
            out[key] = float(value)
    return out


def field_types() -> dict[str, type]:
    """Field name -> Python type (bool, int, float, str); used by search spaces to check values."""
    return {k: v for k, v in typing.get_type_hints(Recipe).items() if k in FIELD_NAMES}


__all__ = [
    "FIELD_NAMES",
    "SHARED_FIELDS",
    "Recipe",
    "check_field_names",
    "field_types",
    "preset",
]
