"""Pixels: the ImageNet normalisation every backbone is fed with, and batched uint8 resizing.

Images travel as uint8 (B, 3, S, S) until they reach the training device; `normalize` turns them into the
float32 input timm backbones expect there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision / timm ImageNet statistics, RGB in [0, 1]
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_CHUNK = 1024  # images resized per interpolate call: bounds the float32 working copy


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, S, S) on any device -> float32 normalised with ImageNet mean/std, on the same device."""
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 images, got {images.dtype}")
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1) * 255
    return (images.float() - mean) / std


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, 3, size, size): bilinear (antialiased when shrinking), grey -> 3 channels."""
    n, c, h, w = images.shape
    if (h, w) != (size, size):
        out = torch.empty((n, c, size, size), dtype=torch.uint8)
        for start in range(0, n, RESIZE_CHUNK):
            chunk = images[start:start + RESIZE_CHUNK].float()
            chunk = F.interpolate(chunk, size=(size, size), mode="bilinear", align_corners=False,
                                  antialias=size < max(h, w))
            out[start:start + RESIZE_CHUNK] = chunk.round_().clamp_(0, 255).to(torch.uint8)
        images = out
    return images.expand(n, 3, size, size).contiguous() if c == 1 else images.contiguous()
