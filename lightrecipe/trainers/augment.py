"""Two-view augmentation (MoCo v2 "aug+" with strength knobs), batched on the training device.

Every op draws per-image parameters and acts on the whole batch with tensor ops, so a GPU augments its own
batches and no per-image PIL loop sits in the hot path. Order per view: random resized crop + horizontal flip
(one `grid_sample`), colour jitter (brightness, contrast, saturation, hue in a fixed order; torchvision shuffles
the order, which matters little), grayscale, Gaussian blur, solarisation, then ImageNet normalisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lightrecipe.trainers.data import IMAGENET_MEAN, IMAGENET_STD
from lightrecipe.trainers.recipe import Recipe

JITTER_BASE = (0.4, 0.4, 0.4, 0.1)  # MoCo v2 ColorJitter(brightness, contrast, saturation, hue) at strength 1
CROP_RATIO = (3 / 4, 4 / 3)  # torchvision RandomResizedCrop default aspect-ratio range
BLUR_SIGMA_224 = (0.1, 2.0)  # MoCo v2 blur sigma range at 224 px; scaled with the image size
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights, as torchvision's rgb_to_grayscale


class TwoViewAugment:
    """Callable: uint8 images (B, 3, S, S) -> two normalised float views (B, 3, size, size)."""

    def __init__(self, recipe: Recipe, size: int | None = None):
        self.size = size or recipe.image_size
        self.crop_min_scale = recipe.crop_min_scale
        self.hflip_prob = recipe.hflip_prob
        self.jitter = tuple(min(recipe.aug_strength * s, cap) for s, cap in zip(JITTER_BASE, (10, 10, 10, 0.5)))
        self.jitter_prob = recipe.color_jitter_prob
        self.grayscale_prob = recipe.grayscale_prob
        self.blur_prob = recipe.blur_prob
        self.solarize_prob = recipe.solarize_prob
        scale = self.size / 224
        self.blur_sigma = (BLUR_SIGMA_224[0] * scale, BLUR_SIGMA_224[1] * scale)
        # MoCo v2 uses a 23-px kernel at 224 px (~10% of the side); keep it odd and at least 3.
        self.blur_kernel = max(3, int(0.1 * self.size) // 2 * 2 + 1)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None):
        x = images.float().div_(255.0)
        return self.view(x, generator), self.view(x, generator)

    def view(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        x = self.resized_crop_flip(x, g)
        if self.jitter_prob > 0 and any(self.jitter):
            x = self.color_jitter(x, g)
        if self.grayscale_prob > 0:
            x = _where(_coin(x, self.grayscale_prob, g), grayscale(x).expand_as(x), x)
        if self.blur_prob > 0:
            x = self.gaussian_blur(x, g)
        if self.solarize_prob > 0:
            x = _where(_coin(x, self.solarize_prob, g), torch.where(x >= 0.5, 1.0 - x, x), x)
        return normalize_float(x)

    def resized_crop_flip(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        b = x.shape[0]
        area = _uniform(x, b, self.crop_min_scale, 1.0, g)
        log_ratio = _uniform(x, b, math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]), g)
        ratio = log_ratio.exp()
        w = (area * ratio).sqrt().clamp(max=1.0)  # crop width and height as fractions of the side
        h = (area / ratio).sqrt().clamp(max=1.0)
        cx = (1 - w) * _uniform(x, b, 0.0, 1.0, g) + w / 2
        cy = (1 - h) * _uniform(x, b, 0.0, 1.0, g) + h / 2
        flip = torch.where(_coin(x, self.hflip_prob, g).view(-1), -1.0, 1.0)
        theta = torch.zeros(b, 2, 3, device=x.device)
        theta[:, 0, 0] = w * flip
        theta[:, 0, 2] = 2 * cx - 1
        theta[:, 1, 1] = h
        theta[:, 1, 2] = 2 * cy - 1
        grid = F.affine_grid(theta, [b, 3, self.size, self.size], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def color_jitter(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        b = x.shape[0]
        bright, contrast, sat, hue = self.jitter
        out = x
        if bright > 0:
            out = (out * _factor(x, b, bright, g)).clamp(0, 1)
        if contrast > 0:
            mean = grayscale(out).mean(dim=(1, 2, 3), keepdim=True)
            out = _blend(out, mean, _factor(x, b, contrast, g))
        if sat > 0:
            out = _blend(out, grayscale(out), _factor(x, b, sat, g))
        if hue > 0:
            out = rotate_hue(out, _uniform(x, b, -hue, hue, g))
        return _where(_coin(x, self.jitter_prob, g), out, x)

    def gaussian_blur(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        b, c, hgt, wid = x.shape
        sigma = _uniform(x, b, *self.blur_sigma, g)
        half = self.blur_kernel // 2
        offsets = torch.arange(-half, half + 1, device=x.device, dtype=x.dtype)
        kernel = torch.exp(-(offsets[None, :] ** 2) / (2 * sigma[:, None] ** 2))
        kernel = kernel / kernel.sum(dim=1, keepdim=True)  # (B, ks)
        kernel = kernel.repeat_interleave(c, dim=0)  # one kernel per (image, channel) group
        flat = x.reshape(1, b * c, hgt, wid)
        flat = F.conv2d(F.pad(flat, (half, half, 0, 0), mode="reflect"), kernel[:, None, None, :], groups=b * c)
        flat = F.conv2d(F.pad(flat, (0, 0, half, half), mode="reflect"), kernel[:, None, :, None], groups=b * c)
        return _where(_coin(x, self.blur_prob, g), flat.reshape(b, c, hgt, wid), x)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 1, H, W) luma."""
    r, gch, b = x.unbind(dim=1)
    return (LUMA[0] * r + LUMA[1] * gch + LUMA[2] * b).unsqueeze(1)


def rotate_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift hue by `shift` (fraction of a turn, per image) as a rotation of the chroma plane in YIQ space.

    A batched stand-in for torchvision's HSV round trip: same intent (hue moves, luma stays), no branches.
    """
    to_yiq = x.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    from_yiq = torch.linalg.inv(to_yiq)
    angle = 2 * math.pi * shift
    cos, sin = angle.cos(), angle.sin()
    rot = torch.zeros(x.shape[0], 3, 3, device=x.device, dtype=x.dtype)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2] = cos, -sin
    rot[:, 2, 1], rot[:, 2, 2] = sin, cos
    matrix = from_yiq @ rot @ to_yiq  # (B, 3, 3)
    return torch.einsum("bij,bjhw->bihw", matrix, x).clamp(0, 1)


def normalize_float(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] float images -> ImageNet-normalised (the same constants as data.normalize)."""
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _uniform(x: torch.Tensor, n: int, low: float, high: float, g: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, device=x.device, generator=g) * (high - low) + low


def _coin(x: torch.Tensor, prob: float, g: torch.Generator | None) -> torch.Tensor:
    """(B, 1, 1, 1) boolean mask, True with probability `prob`."""
    return (torch.rand(x.shape[0], device=x.device, generator=g) < prob).view(-1, 1, 1, 1)


def _factor(x: torch.Tensor, n: int, strength: float, g: torch.Generator | None) -> torch.Tensor:
    """Per-image jitter factor in [max(0, 1 - s), 1 + s], as torchvision's ColorJitter."""
    return _uniform(x, n, max(0.0, 1 - strength), 1 + strength, g).view(-1, 1, 1, 1)


def _blend(img: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (factor * img + (1 - factor) * other).clamp(0, 1)


def _where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(mask, a, b)
