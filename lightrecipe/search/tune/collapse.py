"""Stop dead trials early: a trial whose backbone features have collapsed is pruned with reason "collapsed".

Collapse is the failure mode of contrastive training where every image maps to (nearly) the same point: the
kNN monitor falls to chance and the trial never recovers within a short schedule. It is visible in the
effective rank (Roy & Vetterli 2007: exp of the entropy of the normalised singular values) of the centred
backbone features on the kNN memory bank, which train() reports each epoch as `feature_rank`
(scoring.val_monitor): a random MobileNet-V3 on the bundled digits has about 30, a collapsed one about 1.

The rule sits in the search part, not in train(): `lightrecipe train` runs what it is told, a sweep decides what
is worth its budget. The trainable checks each epoch's row before it reports it and ends the trial as
"pruned" with error "collapsed: ..." (Optuna PRUNED, as a diverged trial is, so TPE learns to avoid the
region), at any epoch, before ASHA's first rung. `benchmarks/bench_collapse.py` measures what it saves and
whether it ever stops a trial that would have finished in the top half.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

RANK_KEY = "feature_rank"  # the per-epoch metric train() reports (scoring.val_monitor)
# Below this effective rank the features span about one direction: every image is one point up to a scale.
# A random-init backbone has ~30 on the bundled digits; 1.5 leaves a trial that is only narrowing alone.
COLLAPSED_RANK = 1.5
PREFIX = "collapsed"


class Collapsed(Exception):
    """Raised from train()'s report callback to end a trial whose features have collapsed."""


def verdict(row: Mapping[str, Any], threshold: float = COLLAPSED_RANK) -> str | None:
    """The reason a trial with this epoch's metrics should stop, or None. A row without a finite
    `feature_rank` (an older trainer, a diverged epoch) is never called collapsed."""
    rank = row.get(RANK_KEY)
    if not isinstance(rank, (int, float)) or not math.isfinite(rank) or rank >= threshold:
        return None
    return (f"{PREFIX}: effective rank of the backbone features {rank:.2f} < {threshold:g} at epoch "
            f"{int(row.get('epoch', 0))} (every image maps to about one point; val kNN {row.get('knn_top1', math.nan):.3f})")
