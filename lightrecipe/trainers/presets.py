"""Named recipes: the ResNet-50 (MoCo v2) settings every comparison needs, MoCo v3, and a small-data recipe.

Each preset lists only what differs from the `Recipe` field defaults, with the reason next to the value. This
module holds the values; `recipe.preset(name)` builds the Recipe (recipe.py reads presets, not the reverse).
"""

from __future__ import annotations

from typing import Any

from lightrecipe.errors import UserError, nearest

_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    # facebookresearch/moco main_moco.py with --mlp --moco-t 0.2 --aug-plus --cos: every other value is a Recipe
    # field default (SGD 0.03 at batch 256, momentum 0.9, wd 1e-4 on every parameter, K 65536, m 0.999, dim 128,
    # aug+). 8 GPUs x 32 images with shuffle BN = bn_splits 8 at batch 256 (the default). main_moco.py sets the
    # cosine lr once per epoch; the trainer evaluates the same cosine at every step. Init: torchvision's
    # models.resnet50() (main_moco.py builds it without zero_init_residual), so residual_init "torchvision".
    "resnet50-mocov2": (
        "MoCo v2 ResNet-50 settings (the field defaults, torchvision's init), 200 epochs at 224 px; the baseline "
        "of every comparison",
        dict(arch="resnet50", epochs=200, image_size=224, batch_size=256, residual_init="torchvision"),
    ),
    # facebookresearch/moco-v3 CONFIG.md "ResNet-50, 100-epoch pre-training" (`--moco-m-cos --crop-min=.2` on
    # main_moco.py's defaults) and moco/builder.py `MoCo_ResNet`. SyncBatchNorm over the whole batch = bn_splits 1.
    "mocov3": (
        "MoCo v3 ResNet-50 settings (100 epochs): LARS, in-batch negatives, symmetric loss, 2-layer BN projector + "
        "predictor, timm's init (= MoCo v3's zero_init_residual)",
        dict(
            arch="resnet50",  # main_moco.py default -a resnet50
            residual_init="timm",  # main_moco.py: resnet50(zero_init_residual=True), which is timm's zero_init_last
            epochs=100,  # main_moco.py --epochs default; CONFIG.md's 100-epoch ResNet-50 run
            image_size=224,  # RandomResizedCrop(224)
            batch_size=4096,  # main_moco.py -b default
            optimizer="lars",  # --optimizer default
            base_lr=0.6,  # --lr default, scaled by batch / 256 (lr_scaling linear)
            weight_decay=1e-6,  # --wd default
            wd_on_norm_and_bias=False,  # moco/optimizer.py LARS: no decay and no trust ratio for 1-d parameters
            warmup_epochs=10.0,  # --warmup-epochs default
            precision="fp16",  # torch.cuda.amp.autocast + GradScaler in main_moco.py
            temperature=1.0,  # --moco-t default
            loss_scale=2.0,  # builder contrastive_loss: CrossEntropy * (2 * T) ...
            loss_scale_rule="temperature",  # ... with T the temperature, so a searched T keeps the 2T scale
            symmetric=True,  # builder forward: loss(q1, k2) + loss(q2, k1)
            queue_size=0,  # in-batch negatives (all keys of the batch)
            key_momentum=0.99,  # --moco-m default
            key_momentum_schedule="cosine",  # --moco-m-cos: m rises to 1 on a half cosine
            proj_hidden_dim=4096,  # --moco-mlp-dim default
            proj_out_dim=256,  # --moco-dim default
            proj_layers=2,  # MoCo_ResNet: _build_mlp(2, ...) (3 layers is MoCo_ViT's)
            proj_bn=True,  # _build_mlp: BN after every Linear, the last one without affine
            predictor_hidden_dim=4096,  # _build_mlp(2, dim, mlp_dim, dim, False)
            bn_splits=1,  # SyncBatchNorm: statistics over the whole batch
            jitter_saturation=0.2,  # ColorJitter(0.4, 0.4, 0.2, 0.1)
            blur_prob=1.0,  # augmentation1: GaussianBlur p=1.0
            blur_prob_view2=0.1,  # augmentation2: GaussianBlur p=0.1
            solarize_prob=0.0,  # augmentation1: no Solarize
            solarize_prob_view2=0.2,  # augmentation2: Solarize p=0.2
        ),
    ),
    "digits-small": (
        "Small-data recipe for the bundled digits: mobilenetv3_small_050 at 32 px, gentle views, symmetric loss, 40 epochs "
        "(timm's init)",
        dict(
            arch="mobilenetv3_small_050",
            dataset="digits",
            image_size=32,  # 8x8 digits upsampled to CIFAR's size
            epochs=40,  # measured: val kNN 0.92 at 40 epochs vs 0.83 at random init (benchmarks/learning_check.py)
            batch_size=64,  # ~17 steps per epoch on the 1078-image train split
            warmup_epochs=5.0,  # without warm-up the features first collapse (loss -> log(K+1)) for ~10 epochs
            symmetric=True,  # measured: +3 points val kNN at 40 epochs for 1.6x the step time
            base_lr=0.06,  # MoCo CIFAR demo lr, taken as is at this small batch
            lr_scaling="none",
            weight_decay=5e-4,  # MoCo CIFAR demo
            temperature=0.1,  # MoCo CIFAR demo; Shi et al. for small nets
            queue_size=256,  # well below the 1078 train images, so an image's own stale key is rarely a negative
            key_momentum=0.99,  # MoCo CIFAR demo: short schedules need a faster key encoder
            proj_hidden_dim=0,  # backbone feature dim
            aug_strength=0.25,  # 8x8 digits: mild brightness/contrast jitter (docs/science.md, small nets)
            crop_min_scale=0.5,  # tiny images need gentler crops (docs/science.md: 0.5 to 1)
            blur_prob=0.0,  # MoCo CIFAR demo: no blur on small images
            grayscale_prob=0.0,  # digits are grey already
            hflip_prob=0.0,  # a mirrored digit is another symbol
            knn_k=20,
        ),
    ),
}


# MoCo's published ImageNet settings: their queue and batch are fitted to a smaller training set (fit.py), as the
# Recipe field defaults (MoCo v2's) are. digits-small's queue and batch were chosen for the bundled digits and are
# taken as written.
FITTED_PRESETS = ("resnet50-mocov2", "mocov3")


def list_presets() -> list[str]:
    """The preset names, as `lightrecipe presets` lists them (timm's `list_models` for recipes)."""
    return list(_PRESETS)


def preset_description(name: str) -> str:
    return _PRESETS[name][0]


def preset_fields(name: str) -> dict[str, Any]:
    """The fields preset `name` sets (a copy); a UserError naming the nearest preset for an unknown name."""
    if name not in _PRESETS:
        raise UserError(f"unknown preset '{name}'{nearest(name, _PRESETS)}; valid: {', '.join(_PRESETS)}")
    return dict(_PRESETS[name][1])
