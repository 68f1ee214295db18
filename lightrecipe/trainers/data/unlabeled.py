"""`dataset: unlabeled`: pretrain on a tree of unlabeled images, score on a small labeled folder.

`data_root` is any tree of images (tree.py: jpg, jpeg, png, webp at any depth; hidden and other files left
out) or a cache prepared from one; it is only trained on. `eval_root` is an ImageNet-layout folder (or its
cache): its train/ minus a held-out val split is the kNN memory bank and the probe's training set, the held-out
part is val (what searches optimise), its val/ is the test split, all exactly as `imagefolder` cuts them.
`data_fraction` thins the unlabeled images (a fixed, nested prefix of one fixed order).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lightrecipe.trainers.data.image_folder import CachedSplit, FileSplit, held_out_val, labeled_parts
from lightrecipe.trainers.data.splits import Dataset, subsample


def load_unlabeled(recipe) -> Dataset:
    labeled, test, classes = labeled_parts(recipe.eval_root, "eval_root", recipe)
    holdout, bank = held_out_val(labeled.labels)
    unlabeled = unlabeled_split(recipe, len(classes))
    return Dataset("unlabeled", unlabeled, labeled.split(holdout), test.split(), len(classes), labeled.split(bank))


def unlabeled_split(recipe, num_classes: int) -> FileSplit:
    """The images trained on: the tree (or its cache) thinned to `data_fraction`; labels are all 0 (unused)."""
    from lightrecipe.trainers.data.cache import TRAIN_PART, is_cache, open_cache
    from lightrecipe.trainers.data.tree import list_tree

    root = Path(recipe.data_root).expanduser()
    cache = positions = None
    if is_cache(root):
        cache = open_cache(root, "data_root", "unlabeled", recipe.image_size)
        positions = cache.part(TRAIN_PART)
        paths = cache.source_paths(positions)
    else:
        paths = list_tree(root)
    keep = subsample(np.zeros(len(paths), dtype=np.int64), recipe.data_fraction, np.arange(len(paths)))
    paths = [paths[i] for i in keep]
    labels = torch.zeros(len(paths), dtype=torch.int64)
    if cache is not None:
        return CachedSplit(paths, labels, num_classes, recipe.image_size, recipe.num_workers, cache, positions[keep])
    return FileSplit(paths, labels, num_classes, recipe.image_size, recipe.num_workers, recipe.jpeg_decode)
