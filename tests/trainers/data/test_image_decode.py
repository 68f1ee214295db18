"""The loader's scalar crop boxes against the batched ones the GPU augmentation draws (augment.crop_boxes, whose
agreement with torchvision's RandomResizedCrop test_augment.py checks)."""

from __future__ import annotations

import torch

from lightrecipe.trainers.data.augment import crop_boxes
from lightrecipe.trainers.data.image_decode import pair_boxes

# (width, height, scale): photos, squares, tiny images, and shapes far outside the 3/4..4/3 ratio range, where
# every attempt can miss and the central fallback crop decides.
SHAPES = [(500, 375, (0.2, 1.0)), (375, 500, (0.08, 1.0)), (32, 32, (0.5, 1.0)), (8, 8, (0.2, 1.0)),
          (1, 40, (0.9, 1.0)), (40, 1, (0.9, 1.0)), (300, 40, (0.95, 1.0)), (40, 300, (0.95, 1.0)), (2, 3, (0.2, 1.0))]


def test_pair_boxes_are_crop_boxes_for_one_image_drawn_twice():
    for width, height, scale in SHAPES:
        for seed in range(200):
            expected = crop_boxes(torch.tensor([height, height]), torch.tensor([width, width]), scale,
                                  generator=torch.Generator().manual_seed(seed))
            got = pair_boxes(width, height, scale, torch.Generator().manual_seed(seed))
            assert got == tuple(t.tolist() for t in expected), (width, height, scale, seed)
    # the central fallback of a 1 x 40 image: 1 x round(1 / (3/4)) = 1 x 1, centred
    assert pair_boxes(1, 40, (0.9, 1.0), torch.Generator().manual_seed(0)) == ([19, 19], [0, 0], [1, 1], [1, 1])


def test_pair_boxes_leave_the_generator_where_crop_boxes_does():
    a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    pair_boxes(500, 375, (0.2, 1.0), a)
    crop_boxes(torch.tensor([375, 375]), torch.tensor([500, 500]), (0.2, 1.0), generator=b)
    assert torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b))
