"""The rule that fits MoCo's queue and batch to N training images (fit.py applies it to recipes; the recipe's own
size check quotes it in its suggestion). Pure arithmetic: no recipe, no data."""

from __future__ import annotations

# MoCo's CIFAR-10 demo (facebookresearch/moco colab/moco_cifar10_demo.ipynb): K = 4096 for 50 000 images, 1/12.2.
# The largest power of two <= N / 8 gives exactly 4096 for 50 000 (and for CIFAR-10's 45 000 after the val split),
# and keeps any queue between N/16 and N/8: an image's own key from the previous epoch is still in a FIFO queue
# of K keys at about (K/N)^2 / 2 of the steps, under 1% at N/8 (ImageNet's 65536 of 1.28M: 0.1%).
QUEUE_SHARE = 8
# At least 16 steps per epoch: digits-small's batch 64 on the digits' 1078 training images (~17 steps, measured
# to learn, benchmarks/learning_check.py). Half the queue's bound, so the fitted queue holds at least 2 batches.
STEPS_PER_EPOCH = 16


def largest_power_of_two(limit: float) -> int:
    """The largest power of two <= `limit` (0 when `limit` < 1)."""
    return 1 << (int(limit).bit_length() - 1) if limit >= 1 else 0


def fitted_batch(batch_size: int, train_images: int, bn_splits: int = 1) -> int:
    """The rule's batch: min(batch_size, the largest power of two <= N / 16), a multiple of `bn_splits` with at
    least 2 images per BatchNorm group (the recipe's own rule)."""
    batch = min(batch_size, largest_power_of_two(train_images / STEPS_PER_EPOCH))
    return max(batch - batch % bn_splits, 2 * bn_splits)


def fitted_queue(queue_size: int, train_images: int, batch_size: int) -> int:
    """The rule's queue: min(queue_size, the largest power of two <= N / 8), a multiple of `batch_size` and at
    least one batch; 0 (in-batch negatives) stays 0."""
    if queue_size == 0:
        return 0
    queue = min(queue_size, largest_power_of_two(train_images / QUEUE_SHARE))
    return max(queue - queue % batch_size, batch_size)
