"""Two-view augmentation (MoCo v2 "aug+" with strength knobs), batched on the training device.

Every op draws per-image parameters and acts on the whole batch with tensor ops, so a GPU augments its own
batches and no per-image PIL loop sits in the hot path. Order per view: random resized crop + horizontal flip
(one `grid_sample`), colour jitter (brightness, contrast, saturation, hue in a fixed order; torchvision shuffles
the order, which matters little), grayscale, Gaussian blur, solarisation, then ImageNet normalisation. Each view
has its own probabilities (`Recipe.view_probs`): MoCo v3 blurs and solarises its two views differently.

Crops are sampled exactly as torchvision's `RandomResizedCrop.get_params` (`crop_boxes`). In-memory datasets
are cropped here from the S x S image; image folders are cropped by the loader's workers at the file's own
resolution (data_formats.py, with the same `crop_boxes`), and only flip and colour run here (`from_crops`).

Under data parallelism every rank draws the parameters of the whole global batch from the same generator state
and keeps its strided rows (`RowShare`), so N processes augment each image exactly as one process does: an
N-process run is the one-process run up to float rounding, not another draw of the recipe. The draws are
per-image numbers, not pixels: drawing N times as many costs nothing next to the views themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lightrecipe.trainers.data.pixels import IMAGENET_MEAN, IMAGENET_STD
from lightrecipe.trainers.recipe import Recipe

CROP_RATIO = (3 / 4, 4 / 3)  # torchvision RandomResizedCrop default aspect-ratio range
CROP_ATTEMPTS = 10  # torchvision RandomResizedCrop.get_params: 10 tries, then a central fallback crop
BLUR_SIGMA = (0.1, 2.0)  # MoCo v2 GaussianBlur sigma range, in pixels of the view
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights, as torchvision's rgb_to_grayscale


@dataclass(frozen=True)
class RowShare:
    """The rows of the global batch this process augments: rank, rank + size, ... (the trainer's strided layout)."""

    rank: int = 0
    size: int = 1


WHOLE_BATCH = RowShare()


@dataclass(frozen=True)
class Draws:
    """Per-image uniform draws from `generator` as one process at the global batch makes them, cut to `share`."""

    generator: torch.Generator | None = None
    share: RowShare = WHOLE_BATCH

    def rand(self, shape: tuple[int, ...], *, device: torch.device, dtype: torch.dtype | None = None,
             batch_dim: int = 0) -> torch.Tensor:
        """U[0, 1) of `shape`, whose `batch_dim` counts this process's images."""
        size = self.share.size
        full = shape[:batch_dim] + (shape[batch_dim] * size,) + shape[batch_dim + 1:]
        out = torch.rand(full, device=device, dtype=dtype, generator=self.generator)
        if size == 1:
            return out
        index = (slice(None),) * batch_dim + (slice(self.share.rank, None, size),)
        return out[index]


RandomSource = torch.Generator | Draws | None  # a plain generator (or None: torch's global one) draws the whole batch


def as_draws(generator: RandomSource) -> Draws:
    return generator if isinstance(generator, Draws) else Draws(generator)


def crop_boxes(height: torch.Tensor, width: torch.Tensor, scale: tuple[float, float],
               ratio: tuple[float, float] = CROP_RATIO, generator: RandomSource = None):
    """(top, left, h, w) int64 crop boxes, one per image of size (height[n], width[n]), sampled as torchvision.

    torchvision's `RandomResizedCrop.get_params`, vectorised: up to 10 attempts of area ~ U(scale) x H x W and
    log-aspect ~ U(log ratio), sides rounded half to even; the first attempt that fits wins and is placed
    uniformly; if none fits, the central crop clamped to `ratio` (the whole image when its own ratio is inside).
    """
    dev, n, draws = height.device, height.numel(), as_draws(generator)
    H, W = height.to(torch.float64), width.to(torch.float64)
    u = draws.rand((2, n, CROP_ATTEMPTS), device=dev, dtype=torch.float64, batch_dim=1)
    area = (H * W)[:, None] * (scale[0] + (scale[1] - scale[0]) * u[0])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u[1])
    w = torch.round(torch.sqrt(area * aspect))
    h = torch.round(torch.sqrt(area / aspect))
    fits = (w > 0) & (w <= W[:, None]) & (h > 0) & (h <= H[:, None])
    first = fits.to(torch.int8).argmax(dim=1, keepdim=True)  # index of the first fitting attempt
    found = fits.any(dim=1)
    w, h = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)
    in_ratio = W / H
    fallback_w = torch.where(in_ratio > ratio[1], torch.round(H * ratio[1]), W)
    fallback_h = torch.where(in_ratio < ratio[0], torch.round(W / ratio[0]), H)
    w, h = torch.where(found, w, fallback_w), torch.where(found, h, fallback_h)
    pos = draws.rand((2, n), device=dev, dtype=torch.float64, batch_dim=1)
    top = torch.where(found, torch.floor(pos[0] * (H - h + 1)), torch.floor((H - h) / 2))
    left = torch.where(found, torch.floor(pos[1] * (W - w + 1)), torch.floor((W - w) / 2))
    return top.long(), left.long(), h.long(), w.long()


class TwoViewAugment:
    """Callable: uint8 images (B, 3, S, S) -> two normalised float views (B, 3, size, size).

    `share`: which rows of the global batch these B images are (data parallelism; see the module docstring).
    """

    def __init__(self, recipe: Recipe, share: RowShare = WHOLE_BATCH):
        self.share = share
        self.size = recipe.image_size
        self.crop_scale = (recipe.crop_min_scale, 1.0)
        self.jitter = recipe.jitter
        self.probs = (recipe.view_probs(1), recipe.view_probs(2))
        # A kernel of +-3 sigma of the largest sigma (PIL's GaussianBlur covers about as much), within the image.
        self.blur_half = max(1, min(math.ceil(3 * BLUR_SIGMA[1]), self.size - 1))

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None):
        """Crop, flip and colour both views on the device, from uint8 (B, 3, S, S) images."""
        x, draws = images.float().div_(255.0), Draws(generator, self.share)
        return tuple(self.colour(self.resized_crop_flip(x, draws, p["hflip"]), draws, p) for p in self.probs)

    def from_crops(self, pairs: torch.Tensor, generator: torch.Generator | None = None):
        """Flip and colour two views the loader already cropped: uint8 (B, 2, 3, size, size)."""
        views, draws = [], Draws(generator, self.share)
        for v, p in enumerate(self.probs):
            x = pairs[:, v].float().div_(255.0)
            views.append(self.colour(_where(_coin(x, p["hflip"], draws), x.flip(3), x), draws, p))
        return tuple(views)

    def colour(self, x: torch.Tensor, g: RandomSource, probs: dict[str, float]) -> torch.Tensor:
        """Jitter, grayscale, blur and solarise with this view's probabilities, then normalise."""
        if probs["jitter"] > 0 and any(self.jitter):
            x = self.color_jitter(x, g, probs["jitter"])
        if probs["grayscale"] > 0:
            x = _where(_coin(x, probs["grayscale"], g), grayscale(x).expand_as(x), x)
        if probs["blur"] > 0:
            x = self.gaussian_blur(x, g, probs["blur"])
        if probs["solarize"] > 0:
            x = _where(_coin(x, probs["solarize"], g), torch.where(x >= 0.5, 1.0 - x, x), x)
        return normalize_float(x)

    def resized_crop_flip(self, x: torch.Tensor, g: RandomSource, hflip_prob: float) -> torch.Tensor:
        """torchvision-sampled crop boxes of (B, 3, H, W), resized to `size` (bilinear) and flipped, in one grid_sample."""
        b, _, height, width = x.shape
        top, left, h, w = crop_boxes(torch.full((b,), height, device=x.device), torch.full((b,), width, device=x.device),
                                     self.crop_scale, generator=g)
        flip = torch.where(_coin(x, hflip_prob, g).view(-1), -1.0, 1.0)
        theta = torch.zeros(b, 2, 3, device=x.device)
        theta[:, 0, 0] = w / width * flip  # the box in normalised coordinates (pixel edges at +-1)
        theta[:, 0, 2] = (2 * left + w) / width - 1
        theta[:, 1, 1] = h / height
        theta[:, 1, 2] = (2 * top + h) / height - 1
        grid = F.affine_grid(theta, [b, 3, self.size, self.size], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def color_jitter(self, x: torch.Tensor, g: RandomSource, prob: float) -> torch.Tensor:
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
        return _where(_coin(x, prob, g), out, x)

    def gaussian_blur(self, x: torch.Tensor, g: RandomSource, prob: float) -> torch.Tensor:
        """Separable Gaussian blur, sigma ~ U(BLUR_SIGMA) pixels per image, applied with probability `prob`."""
        b, c, hgt, wid = x.shape
        sigma = _uniform(x, b, *BLUR_SIGMA, g)
        half = min(self.blur_half, hgt - 1, wid - 1)
        offsets = torch.arange(-half, half + 1, device=x.device, dtype=x.dtype)
        kernel = torch.exp(-(offsets[None, :] ** 2) / (2 * sigma[:, None] ** 2))
        kernel = kernel / kernel.sum(dim=1, keepdim=True)  # (B, ks)
        kernel = kernel.repeat_interleave(c, dim=0)  # one kernel per (image, channel) group
        flat = x.reshape(1, b * c, hgt, wid)
        flat = F.conv2d(F.pad(flat, (half, half, 0, 0), mode="reflect"), kernel[:, None, None, :], groups=b * c)
        flat = F.conv2d(F.pad(flat, (0, 0, half, half), mode="reflect"), kernel[:, None, :, None], groups=b * c)
        return _where(_coin(x, prob, g), flat.reshape(b, c, hgt, wid), x)


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


def _uniform(x: torch.Tensor, n: int, low: float, high: float, g: RandomSource) -> torch.Tensor:
    return as_draws(g).rand((n,), device=x.device) * (high - low) + low


def _coin(x: torch.Tensor, prob: float, g: RandomSource) -> torch.Tensor:
    """(B, 1, 1, 1) boolean mask, True with probability `prob`."""
    return (as_draws(g).rand((x.shape[0],), device=x.device) < prob).view(-1, 1, 1, 1)


def _factor(x: torch.Tensor, n: int, strength: float, g: RandomSource) -> torch.Tensor:
    """Per-image jitter factor in [max(0, 1 - s), 1 + s], as torchvision's ColorJitter."""
    return _uniform(x, n, max(0.0, 1 - strength), 1 + strength, g).view(-1, 1, 1, 1)


def _blend(img: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (factor * img + (1 - factor) * other).clamp(0, 1)


def _where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(mask, a, b)
