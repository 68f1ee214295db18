"""Stop dead trials early: a trial whose backbone features have collapsed is pruned with reason "collapsed".

Collapse is the failure mode of contrastive training where every image maps to (nearly) the same point: the kNN
monitor falls to chance and the trial never recovers within a short schedule. train() reports per epoch what it
takes to see it (scoring.val_monitor): val `knn_top1` and `knn_chance` (the top-1 of always answering the
commonest class), `feature_rank` (the effective rank of the centred features, Roy & Vetterli 2007) and
`feature_spread` (sqrt(1 - |mean of the L2-normalised features|^2): 0 when every image points one way).

Neither geometric number alone is collapse. The effective rank is scale-blind: one point plus noise scores
hundreds, and a one-dimensional embedding that separates the classes scores about 1. The spread sees the first,
but a trial can gather its features in one direction and still rank neighbours well: on the bundled digits,
digits-small with lr 5.0 and no warm-up has spread 0.003 to 0.015 for five epochs while its val kNN is 0.61 to
0.72 (README, "The collapse stop"). So a trial is collapsed only when its kNN is at chance (within NEAR_CHANCE of
guessing the commonest class) and its features are gathered (spread below GATHERED_SPREAD, or rank below
ONE_LINE_RANK): the evidence of failure and its cause together.

The rule sits in the search part, not in train(): `lightrecipe train` runs what it is told, a sweep decides what
is worth its budget. The trainable checks each epoch's row before it reports it and ends the trial as
"pruned" with error "collapsed at epoch E: ..." (Optuna PRUNED, as a diverged trial is, so TPE learns to avoid the
region), at any epoch, before ASHA's first rung. `benchmarks/bench_collapse.py` replays the rule on trained
curves: what it would stop, when, and whether it would stop a trial that finished in the top half.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

RANK_KEY = "feature_rank"  # the per-epoch metrics train() reports (scoring.val_monitor)
SPREAD_KEY = "feature_spread"
CHANCE_KEY = "knn_chance"
PREFIX = "collapsed"


@dataclass(frozen=True)
class Rule:
    # kNN top-1 at most this far above guessing the commonest class: several standard errors of a chance
    # score on a val split of a few hundred images (digits: 0.1 +- 0.016 on 360), far below any trained net
    near_chance: float = 0.05
    gathered_spread: float = 0.1  # features within about 0.1 of one direction on the unit sphere
    one_line_rank: float = 1.5  # the centred features span about one direction


RULE = Rule()


class Collapsed(Exception):
    """Raised from train()'s report callback to end a trial whose features have collapsed."""


def verdict(row: Mapping[str, Any], rule: Rule = RULE) -> str | None:
    """The reason a trial with this epoch's metrics should stop, or None. A row without a finite kNN and chance
    (an older trainer, a diverged epoch) is never called collapsed."""
    knn, chance = row.get("knn_top1"), row.get(CHANCE_KEY)
    if not (_finite(knn) and _finite(chance)) or knn > chance + rule.near_chance:
        return None
    spread, rank = row.get(SPREAD_KEY), row.get(RANK_KEY)
    if _finite(spread) and spread < rule.gathered_spread:
        how = f"feature spread {spread:.3f} < {rule.gathered_spread:g}: every image points about one way"
    elif _finite(rank) and rank < rule.one_line_rank:
        how = f"effective rank {rank:.2f} < {rule.one_line_rank:g}: the features lie on about one line"
    else:
        return None
    return (f"{PREFIX} at epoch {int(row.get('epoch', 0))}: val kNN {knn:.3f} is at chance ({chance:.3f}) and "
            f"the {how}")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
