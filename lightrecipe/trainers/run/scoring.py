"""A backbone's scores on a Dataset: the per-epoch val kNN monitor and the final probe and test kNN.

The kNN memory bank and the probe's training set are always the whole train split (`Dataset.memory`), never
the `data_fraction` subset that was trained on, so trials at different fractions are scored on one footing.
"""

from __future__ import annotations

from typing import Any

import torch

from lightrecipe.trainers.data.splits import Dataset, Split
from lightrecipe.trainers.parallel.world import World, shard_split
from lightrecipe.trainers.recipe import Recipe
from lightrecipe.trainers.run.evaluate import extract_all_features, extract_features, knn_top1, linear_probe

EVAL_BATCH = 256  # feature extraction batch: no gradients, so larger than training batches is fine


def features(backbone: torch.nn.Module, split: Split, recipe: Recipe, device: torch.device):
    """(features (N, D) float32, labels (N,)) of every readable image of `split`, in the recipe's precision.

    Data-parallel, each rank extracts its share (parallel/world.py) and rank 0 gets all of them; the other ranks
    get (None, None): scores are computed once, on rank 0, and sent to every rank. An unreadable file keeps
    its row until the shares are in place (the gather knows rows by position) and is dropped on rank 0."""
    world = World.current()
    if not world.parallel:
        return extract_features(backbone, split, device=device, batch_size=EVAL_BATCH, precision=recipe.precision,
                                channels_last=recipe.channels_last)
    feats, labels, readable = extract_all_features(backbone, shard_split(split, world), device=device,
                                                   batch_size=EVAL_BATCH, precision=recipe.precision,
                                                   channels_last=recipe.channels_last)
    feats, labels, readable = (world.rows_on_rank0(t, len(split)) for t in (feats, labels, readable.to(torch.uint8)))
    if feats is None:
        return None, None
    return feats[readable.bool()], labels[readable.bool()]


def val_knn(backbone: torch.nn.Module, data: Dataset, recipe: Recipe, device: torch.device) -> float:
    """Weighted kNN top-1 of val against the whole train split."""
    return val_monitor(backbone, data, recipe, device)["knn_top1"]


def val_monitor(backbone: torch.nn.Module, data: Dataset, recipe: Recipe, device: torch.device) -> dict[str, float]:
    """The per-epoch monitor: val kNN top-1 (as `val_knn`), `knn_chance` (the top-1 of guessing the commonest
    class), and two views of the geometry of the backbone's features on the kNN memory bank (one feature pass
    serves all): `feature_rank`, their effective rank, and `feature_spread`, how far they spread on the sphere.
    Data-parallel, rank 0 scores and every rank gets its numbers."""
    world = World.current()
    memory = features(backbone, data.memory, recipe, device)
    query = features(backbone, data.val, recipe, device)
    return world.from_rank0(_monitor(memory, query, recipe, data.num_classes) if world.rank == 0 else None)


def _monitor(memory, query, recipe: Recipe, num_classes: int) -> dict[str, float]:
    if not torch.isfinite(memory[0]).all():  # weights that overflowed in the epoch's last steps: nothing to score
        return {"knn_top1": float("nan"), "knn_chance": chance(query[1]), "feature_rank": float("nan"),
                "feature_spread": float("nan")}
    knn = knn_top1(*memory, *query, k=recipe.knn_k, temperature=recipe.knn_temperature, num_classes=num_classes)
    return {"knn_top1": knn, "knn_chance": chance(query[1]), "feature_rank": effective_rank(memory[0]),
            "feature_spread": feature_spread(memory[0])}


def chance(labels: torch.Tensor) -> float:
    """The top-1 of always answering the most common class: what a kNN over collapsed features scores."""
    return float(torch.bincount(labels.long()).max()) / len(labels) if len(labels) else float("nan")


def feature_spread(feats: torch.Tensor) -> float:
    """How far the L2-normalised features (N, D) spread on the unit sphere: sqrt(1 - |their mean|^2), the root
    mean square distance of each from their mean, in [0, 1]. 0 when every image points one way, whatever the
    scale (the effective rank, computed on centred features, calls one point plus noise full rank); it is the
    geometry the cosine kNN monitor sees."""
    x = torch.nn.functional.normalize(feats.double(), dim=1)  # as the distance, not 1 - |mean|^2: no cancellation
    return float((x - x.mean(dim=0)).pow(2).sum(dim=1).mean().sqrt())


def effective_rank(feats: torch.Tensor) -> float:
    """exp(entropy of the normalised singular values) of the centred features (N, D) (Roy & Vetterli 2007,
    "The effective rank"): about 1 when every image maps to one direction, up to min(N, D) when features
    spread evenly; 0 when every row is the same point."""
    x = feats.float() - feats.float().mean(dim=0, keepdim=True)
    s = torch.linalg.svdvals(x)
    total = s.sum()
    if not torch.isfinite(total) or total <= 0:
        return 0.0 if torch.isfinite(total) else float("nan")
    p = s[s > 0] / total
    return float(torch.exp(-(p * p.log()).sum()))


def final_scores(backbone: torch.nn.Module, data: Dataset, recipe: Recipe, device: torch.device) -> dict[str, Any]:
    """knn_top1 and linear_top1 on val, test_knn_top1 and test_linear_top1 on test, and the split sizes
    (val_images, test_images) that turn a top-1 back into the count of images it stands for: reports rank
    recipes on counts so that a tie is a tie. Data-parallel, rank 0 scores (the probe once, not once per rank)
    and every rank gets its numbers."""
    world = World.current()
    memory, val, test = (features(backbone, split, recipe, device)
                         for split in (data.memory, data.val, data.test))
    return world.from_rank0(_final(memory, val, test, recipe, data.num_classes) if world.rank == 0 else None)


def _final(memory, val, test, recipe: Recipe, num_classes: int) -> dict[str, Any]:
    probe = linear_probe(
        *memory, {"val": val, "test": test}, num_classes=num_classes, method=recipe.probe_method,
        epochs=recipe.probe_epochs, lr=recipe.probe_lr, weight_decay=recipe.probe_weight_decay, seed=recipe.seed,
    )
    knn = {name: knn_top1(*memory, *feats, k=recipe.knn_k, temperature=recipe.knn_temperature,
                          num_classes=num_classes) for name, feats in (("val", val), ("test", test))}
    return {"knn_top1": knn["val"], "linear_top1": probe["val"], "test_knn_top1": knn["test"],
            "test_linear_top1": probe["test"], "val_images": len(val[1]), "test_images": len(test[1])}
