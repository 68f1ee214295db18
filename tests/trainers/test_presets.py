"""Every field of the reference presets against a table written from the reference code itself.

MoCo v2: facebookresearch/moco main_moco.py run with `--mlp --moco-t 0.2 --aug-plus --cos` (argparse defaults
and the aug+ transform list) and moco/builder.py. MoCo v3: facebookresearch/moco-v3 CONFIG.md "ResNet-50,
100-epoch pre-training" (`--moco-m-cos --crop-min=.2` on main_moco.py's defaults), moco/builder.py
`MoCo_ResNet` and moco/optimizer.py `LARS`. Fields the references do not set (data, evaluation, lightrecipe's own
knobs) are listed with the value every preset shares, so adding a field means deciding its value here.
"""

from lightrecipe.trainers.recipe import FIELD_NAMES, preset

# Not training settings of either reference: the same in both presets, so comparisons stay fair.
SHARED = dict(
    dataset="digits", data_root="", eval_root="", data_fraction=1.0, num_workers=2, seed=0,  # data is the user's choice
    lr_scaling="linear",  # both scale lr by batch / 256 (MoCo v2 states 0.03 at 256; moco-v3 multiplies)
    channels_last=False, compile=False, jpeg_decode="workers",  # speed knobs, no effect on the maths
    smoothing="none", smoothing_alpha=0.0, smoothing_k=0, smoothing_schedule="constant",  # plain InfoNCE
    smoothing_schedule_unit="step", smoothing_groups="",
    aug_strength=1.0,  # jitter strengths as written
    knn_k=20, knn_temperature=0.1,  # kNN monitor (MoCo CIFAR demo t 0.1)
    probe_method="lbfgs", probe_epochs=100, probe_lr=30.0, probe_weight_decay=0.0,  # one probe for every trial
)

MOCOV2 = dict(
    SHARED,
    arch="resnet50",  # -a default
    residual_init="torchvision",  # models.__dict__["resnet50"](): zero_init_residual False, last BNs start at 1
    image_size=224,  # RandomResizedCrop(224, scale=(0.2, 1.0))
    epochs=200,  # --epochs default
    batch_size=256,  # -b default
    base_lr=0.03,  # --lr default
    optimizer="sgd",  # torch.optim.SGD
    momentum=0.9,  # --momentum default
    weight_decay=1e-4,  # --wd default
    wd_on_norm_and_bias=True,  # SGD over model.parameters(): every parameter decays
    warmup_epochs=0.0,  # --cos: no warm-up
    precision="fp32",  # no autocast
    temperature=0.2,  # --moco-t 0.2
    queue_size=65536,  # --moco-k default
    key_momentum=0.999,  # --moco-m default
    key_momentum_schedule="constant",
    proj_hidden_dim=2048,  # --mlp: Linear(dim_mlp, dim_mlp) with dim_mlp = 2048 for ResNet-50
    proj_out_dim=128,  # --moco-dim default
    proj_layers=2,  # Linear, ReLU, Linear
    proj_bn=False,
    predictor_hidden_dim=0,  # no predictor
    symmetric=False,  # loss(q, k) only
    loss_scale=1.0, loss_scale_rule="constant",  # CrossEntropyLoss as is
    bn_splits=8,  # 8 GPUs x 32 images, shuffle BN
    jitter_brightness=0.4, jitter_contrast=0.4, jitter_saturation=0.4, jitter_hue=0.1,  # ColorJitter(0.4, 0.4, 0.4, 0.1)
    color_jitter_prob=0.8,  # RandomApply(..., p=0.8)
    grayscale_prob=0.2,  # RandomGrayscale(p=0.2)
    crop_min_scale=0.2,  # scale=(0.2, 1.0)
    blur_prob=0.5, blur_prob_view2=-1.0,  # GaussianBlur([0.1, 2.0]) p=0.5, one transform for both views
    solarize_prob=0.0, solarize_prob_view2=-1.0,  # none
    hflip_prob=0.5,  # RandomHorizontalFlip()
)

MOCOV3 = dict(
    SHARED,
    arch="resnet50",  # -a default
    residual_init="timm",  # resnet50(zero_init_residual=True) is timm's zero_init_last default
    image_size=224,  # RandomResizedCrop(224, scale=(args.crop_min, 1.))
    epochs=100,  # --epochs default, CONFIG.md 100-epoch run
    batch_size=4096,  # -b default
    base_lr=0.6,  # --lr default; args.lr * batch_size / 256
    optimizer="lars",  # --optimizer default
    momentum=0.9,  # --momentum default
    weight_decay=1e-6,  # --wd default
    wd_on_norm_and_bias=False,  # LARS: "no rate scaling or weight decay for parameters <= 1D"
    warmup_epochs=10.0,  # --warmup-epochs default
    precision="fp16",  # torch.cuda.amp.autocast(True) + GradScaler
    temperature=1.0,  # --moco-t default
    queue_size=0,  # contrastive_loss: the keys of the batch (all-gathered) are the negatives
    key_momentum=0.99,  # --moco-m default
    key_momentum_schedule="cosine",  # --moco-m-cos
    proj_hidden_dim=4096,  # --moco-mlp-dim default
    proj_out_dim=256,  # --moco-dim default
    proj_layers=2,  # MoCo_ResNet: _build_mlp(2, hidden_dim, mlp_dim, dim)
    proj_bn=True,  # _build_mlp: BatchNorm1d after each Linear, last one affine=False
    predictor_hidden_dim=4096,  # _build_mlp(2, dim, mlp_dim, dim, False)
    symmetric=True,  # contrastive_loss(q1, k2) + contrastive_loss(q2, k1)
    loss_scale=2.0, loss_scale_rule="temperature",  # CrossEntropyLoss * (2 * T), T the temperature
    bn_splits=1,  # SyncBatchNorm: statistics over the whole batch
    jitter_brightness=0.4, jitter_contrast=0.4, jitter_saturation=0.2, jitter_hue=0.1,  # ColorJitter(0.4, 0.4, 0.2, 0.1)
    color_jitter_prob=0.8,  # RandomApply(..., p=0.8), both views
    grayscale_prob=0.2,  # RandomGrayscale(p=0.2), both views
    crop_min_scale=0.2,  # CONFIG.md --crop-min=.2
    blur_prob=1.0, blur_prob_view2=0.1,  # augmentation1 GaussianBlur p=1.0, augmentation2 p=0.1
    solarize_prob=0.0, solarize_prob_view2=0.2,  # Solarize only in augmentation2, p=0.2
    hflip_prob=0.5,  # RandomHorizontalFlip()
)


def test_tables_name_every_field():
    assert set(MOCOV2) == set(FIELD_NAMES) and set(MOCOV3) == set(FIELD_NAMES)


def test_resnet50_mocov2_is_main_moco_with_mlp_aug_plus_cos():
    assert preset("resnet50-mocov2").to_dict() == MOCOV2


def test_mocov3_is_the_resnet50_config():
    recipe = preset("mocov3")
    assert recipe.to_dict() == MOCOV3
    assert recipe.lr == 0.6 * 4096 / 256
    assert recipe.view_probs(1) == {"jitter": 0.8, "grayscale": 0.2, "blur": 1.0, "solarize": 0.0, "hflip": 0.5}
    assert recipe.view_probs(2) == {"jitter": 0.8, "grayscale": 0.2, "blur": 0.1, "solarize": 0.2, "hflip": 0.5}
    assert recipe.jitter == (0.4, 0.4, 0.2, 0.1)
