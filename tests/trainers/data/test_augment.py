"""Batched two-view augmentation: crops against torchvision's own sampler, each op checked on its output."""

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp
from torchvision.transforms import RandomResizedCrop

from lightrecipe.trainers.data.augment import CROP_RATIO, RowShare, TwoViewAugment, crop_boxes, grayscale, rotate_hue
from lightrecipe.trainers.data.pixels import IMAGENET_MEAN, IMAGENET_STD
from lightrecipe.trainers.recipe import Recipe

OFF = dict(color_jitter_prob=0.0, grayscale_prob=0.0, blur_prob=0.0, solarize_prob=0.0, hflip_prob=0.0)
SAMPLES = 4000
KS_P_MIN = 0.01  # seeded samples, so the verdict is fixed; 1% keeps a real mismatch (D ~ 0.05 at n = 4000) visible


def images(b=16, s=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 3, s, s), dtype=torch.uint8, generator=g)


def unnormalise(v: torch.Tensor) -> torch.Tensor:
    return v * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)


def torchvision_boxes(height, width, scale, n, seed):
    torch.manual_seed(seed)
    img = torch.zeros(3, height, width)
    return np.array([RandomResizedCrop.get_params(img, [scale, 1.0], list(CROP_RATIO)) for _ in range(n)])


@pytest.mark.parametrize("scale", [0.08, 0.2, 0.5])
@pytest.mark.parametrize("height,width", [(224, 224), (375, 500), (32, 32)])
def test_crop_area_and_ratio_match_torchvision(scale, height, width):
    """Two-sample KS test of crop area and aspect ratio against RandomResizedCrop.get_params itself."""
    reference = torchvision_boxes(height, width, scale, SAMPLES, seed=1)
    top, left, h, w = crop_boxes(torch.full((SAMPLES,), height), torch.full((SAMPLES,), width), (scale, 1.0),
                                 generator=torch.Generator().manual_seed(2))
    ours = torch.stack([top, left, h, w], dim=1).numpy()
    for name, of in (("area", lambda b: b[:, 2] * b[:, 3] / (height * width)), ("aspect", lambda b: b[:, 3] / b[:, 2])):
        result = ks_2samp(of(ours), of(reference))
        assert result.pvalue > KS_P_MIN, f"{name}: KS D={result.statistic:.3f}, p={result.pvalue:.2g}"
    # boxes lie inside the image, and where torchvision places them (uniformly; central when falling back)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= height).all() and (left + w <= width).all()
    for column in (0, 1):
        assert ks_2samp(ours[:, column], reference[:, column]).pvalue > KS_P_MIN


def test_crop_fallback_is_torchvision_central_crop():
    """No attempt fits a 1 x 40 strip: torchvision falls back to the central crop clamped to ratio 4/3."""
    top, left, h, w = crop_boxes(torch.tensor([1, 40]), torch.tensor([40, 1]), (0.9, 1.0))
    for i, (height, width) in enumerate(((1, 40), (40, 1))):
        torch.manual_seed(0)
        expected = RandomResizedCrop.get_params(torch.zeros(3, height, width), [0.9, 1.0], list(CROP_RATIO))
        assert (int(top[i]), int(left[i]), int(h[i]), int(w[i])) == expected


def test_full_scale_crop_is_the_whole_image():
    """crop_min_scale 1: only the whole image fits, so the view is the input itself (minus normalisation)."""
    aug = TwoViewAugment(Recipe(crop_min_scale=1.0, **OFF))
    x = images().float() / 255
    view = aug.resized_crop_flip(x, torch.Generator().manual_seed(0), hflip_prob=0.0)
    torch.testing.assert_close(view, x, rtol=0, atol=1e-5)


@pytest.mark.parametrize("min_scale", [0.25, 0.5])
def test_views_show_at_least_crop_min_scale_of_the_image(min_scale):
    """An image that is its own pixel map: each output pixel says where it came from, so the view's extent
    is measured on the output. Every view covers >= min_scale of the area (minus rounding to whole pixels)."""
    size = 64
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    coords = torch.stack([xs, ys, torch.zeros_like(xs)]).float().div(size - 1)[None].expand(200, 3, size, size)
    aug = TwoViewAugment(Recipe(image_size=size, crop_min_scale=min_scale, **OFF))
    view = aug.resized_crop_flip(coords, torch.Generator().manual_seed(0), hflip_prob=0.0)
    extent_x = (view[:, 0].amax(dim=(1, 2)) - view[:, 0].amin(dim=(1, 2))) * (size - 1) + 1
    extent_y = (view[:, 1].amax(dim=(1, 2)) - view[:, 1].amin(dim=(1, 2))) * (size - 1) + 1
    area = extent_x * extent_y / size**2
    assert area.min() >= min_scale - 2.5 / size
    assert area.max() <= 1.0 + 1e-6 and area.min() < min_scale + 0.1  # the lower end is reached


def test_two_views_shape_and_differ():
    aug = TwoViewAugment(Recipe(image_size=24))
    v1, v2 = aug(images(), torch.Generator().manual_seed(0))
    assert v1.shape == v2.shape == (16, 3, 24, 24) and v1.dtype == torch.float32
    assert not torch.allclose(v1, v2)


def test_same_seed_same_views_other_seed_other_views():
    aug = TwoViewAugment(Recipe())
    a = aug(images(), torch.Generator().manual_seed(3))
    b = aug(images(), torch.Generator().manual_seed(3))
    c = aug(images(), torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not any(torch.equal(x, y) for x, y in zip(a, c))


def test_flip_always_mirrors():
    x = torch.zeros(1, 3, 32, 32)
    x[..., :16] = 1.0  # left half white
    aug = TwoViewAugment(Recipe(crop_min_scale=1.0, **OFF))
    flipped = aug.resized_crop_flip(x, torch.Generator().manual_seed(0), hflip_prob=1.0)
    plain = aug.resized_crop_flip(x, torch.Generator().manual_seed(0), hflip_prob=0.0)
    torch.testing.assert_close(flipped, x.flip(3), rtol=0, atol=1e-6)
    torch.testing.assert_close(plain, x, rtol=0, atol=1e-6)


def test_grayscale_and_solarize_outputs():
    gray = TwoViewAugment(Recipe(**dict(OFF, grayscale_prob=1.0)))
    v, _ = gray(images(), torch.Generator().manual_seed(0))
    raw = unnormalise(v)
    torch.testing.assert_close(raw[:, 0], raw[:, 1], atol=1e-5, rtol=0)
    sol = TwoViewAugment(Recipe(**dict(OFF, solarize_prob=1.0)))
    for value, expected in ((0.7, 0.3), (0.2, 0.2)):  # a crop of a flat image is flat; solarise inverts >= 0.5
        flat = torch.full((2, 3, 32, 32), round(value * 255), dtype=torch.uint8)
        v1, v2 = sol(flat, torch.Generator().manual_seed(0))
        for v in (v1, v2):
            torch.testing.assert_close(unnormalise(v), torch.full_like(v, round(value * 255) / 255 if expected == value
                                                                         else 1 - round(value * 255) / 255),
                                       atol=1e-5, rtol=0)


def test_per_view_probabilities():
    """MoCo v3's asymmetry: view 1 always blurred, never solarised; view 2 solarised, never blurred."""
    r = Recipe(image_size=32, crop_min_scale=1.0, **dict(OFF, blur_prob=1.0, blur_prob_view2=0.0, solarize_prob=0.0,
                                          solarize_prob_view2=1.0))
    aug = TwoViewAugment(r)
    bright = torch.full((4, 3, 32, 32), 230, dtype=torch.uint8)
    bright[..., ::2, :] = 200  # stripes: blur changes them, solarise inverts them
    v1, v2 = (unnormalise(v) for v in aug(bright, torch.Generator().manual_seed(0)))
    assert v1.min() > 0.5 and v1.std() < (bright.float() / 255).std() * 0.9  # blurred, not solarised
    torch.testing.assert_close(v2, 1 - bright.float() / 255, atol=1e-5, rtol=0)  # solarised, not blurred
    same = TwoViewAugment(Recipe(image_size=32, crop_min_scale=1.0, **dict(OFF, solarize_prob=1.0)))
    w1, w2 = (unnormalise(v) for v in same(bright, torch.Generator().manual_seed(0)))
    torch.testing.assert_close(w1, w2)  # default: view 2 as view 1


def test_blur_changes_a_32_px_view_and_keeps_its_mean():
    aug = TwoViewAugment(Recipe(image_size=32, **dict(OFF, blur_prob=1.0)))
    x = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    blurred = aug.gaussian_blur(x, torch.Generator().manual_seed(0), prob=1.0)
    ratio = blurred.std(dim=(1, 2, 3)) / x.std(dim=(1, 2, 3))
    assert ratio.mean() < 0.7  # sigma 0.1..2 px of the view: most images visibly smoother
    torch.testing.assert_close(blurred.mean(), x.mean(), atol=1e-2, rtol=0)
    untouched = aug.gaussian_blur(x, torch.Generator().manual_seed(0), prob=0.0)
    assert torch.equal(untouched, x)


def test_hue_rotation_keeps_luma_and_full_turn_is_identity():
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(2)) * 0.5 + 0.25
    turned = rotate_hue(x, torch.ones(4))
    torch.testing.assert_close(turned, x, atol=1e-5, rtol=0)
    shifted = rotate_hue(x, torch.full((4,), 0.1))
    torch.testing.assert_close(grayscale(shifted), grayscale(x), atol=2e-2, rtol=0)
    assert not torch.allclose(shifted, x, atol=1e-3)


def test_jitter_off_at_strength_zero_and_on_above():
    """Strength 0 with jitter probability 1 gives exactly the views of no jitter at all; strength 1 does not."""
    crops = dict(crop_min_scale=1.0, **dict(OFF, color_jitter_prob=1.0))
    x = images()
    no_jitter = TwoViewAugment(Recipe(crop_min_scale=1.0, **OFF))(x, torch.Generator().manual_seed(0))
    zero = TwoViewAugment(Recipe(aug_strength=0.0, **crops))(x, torch.Generator().manual_seed(0))
    full = TwoViewAugment(Recipe(aug_strength=1.0, **crops))(x, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(zero, no_jitter))
    assert not torch.allclose(full[0], no_jitter[0], atol=1e-2)


def test_from_crops_colours_loader_views():
    """Loader-cut pairs get flip and colour only: with everything off they come back as they went in."""
    aug = TwoViewAugment(Recipe(image_size=32, **OFF))
    pairs = torch.stack([images(seed=1), images(seed=2)], dim=1)  # (B, 2, 3, S, S)
    v1, v2 = aug.from_crops(pairs, torch.Generator().manual_seed(0))
    torch.testing.assert_close(unnormalise(v1), pairs[:, 0].float() / 255, atol=1e-5, rtol=0)
    torch.testing.assert_close(unnormalise(v2), pairs[:, 1].float() / 255, atol=1e-5, rtol=0)
    flip = TwoViewAugment(Recipe(image_size=32, **dict(OFF, hflip_prob=1.0)))
    f1, _ = flip.from_crops(pairs, torch.Generator().manual_seed(0))
    torch.testing.assert_close(unnormalise(f1), pairs[:, 0].flip(3).float() / 255, atol=1e-5, rtol=0)



def images_views(aug: TwoViewAugment, x: torch.Tensor, g: torch.Generator):
    return aug(x, g)


def loader_crop_views(aug: TwoViewAugment, x: torch.Tensor, g: torch.Generator):
    return aug.from_crops(x, g)


@pytest.mark.parametrize("ranks", [2, 4])
@pytest.mark.parametrize("entry,batch", [(images_views, images(b=16, s=32, seed=3)),
                                         (loader_crop_views, images(b=32, s=24, seed=4).view(16, 2, 3, 24, 24))])
def test_ranks_augment_their_rows_of_the_global_batch_as_one_process_does(ranks, entry, batch):
    """Each rank draws with the same generator state and keeps its strided rows (rank, rank + W, ...): the
    ranks' views are one process's views of the global batch, every op on, from images and from loader crops."""
    recipe = Recipe(image_size=24, blur_prob=0.5, solarize_prob=0.5, grayscale_prob=0.5)
    one = entry(TwoViewAugment(recipe), batch, torch.Generator().manual_seed(7))
    other_draw = entry(TwoViewAugment(recipe), batch, torch.Generator().manual_seed(8))
    assert not torch.allclose(one[0], other_draw[0])  # the comparison below can tell two draws apart
    for rank in range(ranks):
        mine = entry(TwoViewAugment(recipe, RowShare(rank, ranks)), batch[rank::ranks], torch.Generator().manual_seed(7))
        for view_one, view_mine in zip(one, mine):
            torch.testing.assert_close(view_mine, view_one[rank::ranks], rtol=0, atol=1e-5)
