"""Decoding image files in DataLoader workers: evaluation views and the two training crops of an image.

Evaluation: the shorter side to floor(S / 0.875), then the centre S x S (timm's default crop_pct 0.875, i.e.
torchvision's Resize(256) + CenterCrop(224) at 224 px).
Training: two crop boxes drawn as torchvision's RandomResizedCrop (`augment.crop_boxes`) at the file's own
resolution, each resized to S x S with PIL's bilinear filter (antialiased when shrinking), which is what
torchvision's RandomResizedCrop does to a PIL image. Flip and colour follow on the training device.
JPEGs are decoded at the largest DCT reduction (1/2, 1/4 or 1/8, `Image.draft`) that keeps every box at least
S pixels a side, so small views of large files cost a fraction of a full decode.

Nothing here raises for a bad file: each item carries the error text ('' when fine) and zeros instead of
pixels, so one corrupt file never kills a worker; `image_folder.FileSplit` decides what to do about it.

`jpeg_decode: device` (the second half of this module): the workers only read each JPEG's bytes and the main
process decodes a batch of them in one call on the training device. On an H200, torchvision's batched nvJPEG
decode plus the two crops cut and resized on the GPU gave 5201 source images/s at 224 px against 169 for one
CPU worker of this loader (benchmarks/bench_gpu_decode.py): one GPU decodes for itself what about 31 workers
would, and a MoCo step there needs 1200 to 2400 images/s. The boxes are the workers' own (`pair_boxes` from
the item's seed), each resized to S with antialiased bilinear interpolation (the pixels differ from the workers'
by rounding and their DCT-reduced decode). Other formats are decoded by the workers as usual; a JPEG the
device's decoder refuses is decoded again by PIL, so only a file PIL cannot read either is skipped.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from lightrecipe.trainers.data.augment import CROP_ATTEMPTS, CROP_RATIO

EVAL_CROP_FRACTION = 0.875  # timm's default crop_pct; torchvision's ImageNet evaluation: 224 of 256
ITEM_SEED_STRIDE = 1_000_003  # item seed = epoch seed * stride + index: distinct per (epoch, image), any worker count


def eval_resize(size: int) -> int:
    """Shorter side before the centre crop: floor(S / 0.875) (256 at 224 px, 36 at 32 px)."""
    return math.floor(size / EVAL_CROP_FRACTION)


def decode_errors() -> tuple[type[BaseException], ...]:
    from PIL import Image

    # What PIL raises for unreadable, truncated, unsupported or oversized files.
    return (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def item_generator(seed: int, i: int) -> torch.Generator:
    """The generator of item i's two crop boxes in an epoch of seed `seed`, whoever decodes the file."""
    return torch.Generator().manual_seed((seed * ITEM_SEED_STRIDE + i) % 2**63)


class EvalImages(torch.utils.data.Dataset):
    """Index -> (uint8 (3, S, S) centre view, index, error text or '')."""

    def __init__(self, paths: list[str], size: int):
        self.paths = paths
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            view = decode_eval(self.paths[i], self.size)
            return torch.from_numpy(view).permute(2, 0, 1), i, ""
        except decode_errors() as exc:
            return torch.zeros((3, self.size, self.size), dtype=torch.uint8), i, f"'{self.paths[i]}' ({exc})"


class CropPairs(torch.utils.data.Dataset):
    """Index -> (uint8 (2, 3, S, S) two training crops, index, error text or '').

    The crops of item i are drawn from `seed * ITEM_SEED_STRIDE + i`, so an epoch is reproducible whatever the
    number of workers and whichever worker decodes the file.
    """

    def __init__(self, paths: list[str], size: int, scale: tuple[float, float], seed: int):
        self.paths = paths
        self.size = size
        self.scale = scale
        self.seed = seed

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            pair = decode_pair(self.paths[i], self.size, self.scale, item_generator(self.seed, i))
            return torch.from_numpy(pair).permute(0, 3, 1, 2), i, ""
        except decode_errors() as exc:
            return torch.zeros((2, 3, self.size, self.size), dtype=torch.uint8), i, f"'{self.paths[i]}' ({exc})"


def decode_eval(path: str, size: int) -> np.ndarray:
    """uint8 (S, S, 3): shorter side to `eval_resize(S)` (bilinear), then the centre S x S."""
    from PIL import Image

    short = eval_resize(size)
    with Image.open(path) as img:
        img.draft("RGB", (short, short))  # JPEG: decode at a reduced scale that keeps both sides >= short
        return eval_view(img.convert("RGB"), size)


def eval_view(img, size: int) -> np.ndarray:
    """uint8 (S, S, 3) of a decoded RGB PIL image: shorter side to `eval_resize(S)`, then the centre S x S."""
    from PIL import Image

    short = eval_resize(size)
    w, h = img.size
    scale = short / min(w, h)
    new_w, new_h = max(short, round(w * scale)), max(short, round(h * scale))
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.BILINEAR)
    left, top = int(round((new_w - size) / 2.0)), int(round((new_h - size) / 2.0))  # torchvision's CenterCrop rounding
    return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8).copy()


def pair_boxes(width: int, height: int, scale: tuple[float, float], generator: torch.Generator):
    """The two RandomResizedCrop boxes of an image as lists (top, left, h, w), drawn from `generator`.

    `augment.crop_boxes` for one image twice, in scalar Python: the same two draws from `generator`, the same
    float64 arithmetic (tests/trainers/data/test_image_decode.py holds them equal). Its tensor version spent
    about 280 us on two-element tensors, a fifth of a cached image's time in a loader worker.
    """
    u = torch.rand((2, 2, CROP_ATTEMPTS), dtype=torch.float64, generator=generator).tolist()
    pos = torch.rand((2, 2), dtype=torch.float64, generator=generator).tolist()
    area = float(height * width)
    log_lo, log_hi = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    boxes = []
    for v in range(2):
        for attempt in range(CROP_ATTEMPTS):
            target = area * (scale[0] + (scale[1] - scale[0]) * u[0][v][attempt])
            aspect = math.exp(log_lo + (log_hi - log_lo) * u[1][v][attempt])
            w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))  # half to even, as torch
            if 0 < w <= width and 0 < h <= height:
                top, left = math.floor(pos[0][v] * (height - h + 1)), math.floor(pos[1][v] * (width - w + 1))
                break
        else:  # the central crop, clamped to the ratio range
            in_ratio = width / height
            w = round(height * CROP_RATIO[1]) if in_ratio > CROP_RATIO[1] else width
            h = round(width / CROP_RATIO[0]) if in_ratio < CROP_RATIO[0] else height
            top, left = (height - h) // 2, (width - w) // 2
        boxes.append((top, left, h, w))
    return tuple(list(column) for column in zip(*boxes))


def resize_views(img, boxes, factor: float, size: int) -> np.ndarray:
    """uint8 (2, S, S, 3): each box of `boxes` (in the file's pixels, `factor` = decoded / file) resized to S."""
    from PIL import Image

    tops, lefts, heights, widths = boxes
    views = [
        np.asarray(img.resize((size, size), Image.BILINEAR,
                              box=(left * factor, top * factor, (left + box_w) * factor, (top + box_h) * factor)),
                   dtype=np.uint8)
        for top, left, box_h, box_w in zip(tops, lefts, heights, widths)
    ]
    return np.stack(views)


def decode_pair(path: str, size: int, scale: tuple[float, float], generator: torch.Generator) -> np.ndarray:
    """uint8 (2, S, S, 3): two RandomResizedCrop views cut at the file's resolution, each resized to S x S."""
    from PIL import Image

    with Image.open(path) as img:
        width, height = img.size  # from the header; nothing decoded yet
        boxes = pair_boxes(width, height, scale, generator)
        _, _, heights, widths = boxes
        # JPEG: the largest reduction that leaves both boxes >= size a side (draft never goes below the request).
        need = min(1.0, max(size / min(box_w, box_h) for box_w, box_h in zip(widths, heights)))
        drafted = img.draft("RGB", (math.ceil(width * need), math.ceil(height * need)))
        factor = drafted[1][2] / width if drafted else 1.0  # exactly 1/reduction (the decoded size is rounded up)
        return resize_views(img.convert("RGB"), boxes, factor, size)


# --- jpeg_decode: device ---------------------------------------------------------------------------
JPEG_MAGIC = b"\xff\xd8\xff"


class JpegBytesOrPairs(torch.utils.data.Dataset):
    """Item i: ("jpeg", its bytes as uint8), or ("pair", two crops decoded here) for other formats, or
    ("error", the reason) for a file that cannot be read; with i."""

    def __init__(self, paths: list[str], size: int, scale: tuple[float, float], seed: int):
        self.paths, self.size, self.scale, self.seed = paths, size, scale, seed

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        path = self.paths[i]
        try:
            with open(path, "rb") as f:
                data = f.read()
            if data.startswith(JPEG_MAGIC):
                return "jpeg", torch.frombuffer(bytearray(data), dtype=torch.uint8), i
            pair = decode_pair(path, self.size, self.scale, item_generator(self.seed, i))
            return "pair", torch.from_numpy(pair).permute(0, 3, 1, 2), i
        except decode_errors() as exc:
            return "error", f"'{path}' ({exc})", i


def as_list(batch: list) -> list:
    """DataLoader collate: items of different kinds and sizes stay a list."""
    return batch


def decode_batch(items: list, paths: list[str], size: int, scale: tuple[float, float], seed: int,
                 device: torch.device) -> tuple[torch.Tensor, list[str]]:
    """uint8 (B, 2, 3, S, S) on `device` for a batch of JpegBytesOrPairs items, and each row's error ('' if fine;
    its row is zeros)."""
    out = torch.zeros((len(items), 2, 3, size, size), dtype=torch.uint8, device=device)
    errors = [""] * len(items)
    jpegs = [row for row, (kind, _, _) in enumerate(items) if kind == "jpeg"]
    for row, (kind, payload, _) in enumerate(items):
        if kind == "pair":
            out[row] = payload.to(device)
        elif kind == "error":
            errors[row] = payload
    images = _decode_all([items[row][1] for row in jpegs], device) if jpegs else []
    for row, image in zip(jpegs, images):
        i = items[row][2]
        if image is None:  # the device's decoder refused it (CMYK, a rare subsampling, or corrupt): PIL's turn
            try:
                pair = decode_pair(paths[i], size, scale, item_generator(seed, i))
                out[row] = torch.from_numpy(pair).permute(0, 3, 1, 2).to(device)
            except decode_errors() as exc:
                errors[row] = f"'{paths[i]}' ({exc})"
            continue
        out[row] = crop_pair(image, size, scale, item_generator(seed, i))
    return out, errors


def crop_pair(image: torch.Tensor, size: int, scale: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """uint8 (2, 3, S, S): the image's two crop boxes, each resized to S x S (antialiased bilinear)."""
    import torch.nn.functional as F

    _, height, width = image.shape
    views = []
    for top, left, h, w in zip(*pair_boxes(width, height, scale, generator)):
        crop = image[None, :, top:top + h, left:left + w].float()
        views.append(F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False))
    return torch.cat(views).round_().clamp_(0, 255).to(torch.uint8)


def _decode_all(blobs: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """uint8 (3, H, W) images on `device`, one call for the whole list; None for a file the decoder refuses."""
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its image decoders in favour of TorchCodec's; they still work, and
        # TorchCodec is not one of this project's dependencies.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return decode_jpeg(blobs, mode=ImageReadMode.RGB, device=device)
        except RuntimeError:  # one file the batched decoder refuses fails the call: decode one by one
            return [_decode_one(blob, device) for blob in blobs]


def _decode_one(blob: torch.Tensor, device: torch.device) -> torch.Tensor | None:
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        return decode_jpeg(blob, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        return None
