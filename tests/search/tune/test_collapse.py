"""The collapse stop: the effective rank train() reports, the rule that reads it, and the trainable ending a trial
as pruned with reason "collapsed" (collapse.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lightrecipe.search.tune import collapse, trainable
from lightrecipe.trainers.run.scoring import effective_rank


def numpy_effective_rank(x: np.ndarray) -> float:
    """Roy & Vetterli's effective rank written out: exp(-sum p log p), p = singular values / their sum."""
    s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    p = s[s > 0] / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def test_effective_rank_matches_numpy_and_the_analytic_cases():
    x = np.random.default_rng(0).normal(size=(50, 12)).astype(np.float32)
    assert effective_rank(torch.from_numpy(x)) == pytest.approx(numpy_effective_rank(x), rel=1e-4)
    line = np.outer(np.arange(10.0), np.ones(6)) + 3.0  # every image on one line: rank 1
    assert effective_rank(torch.tensor(line)) == pytest.approx(1.0)
    spread = np.vstack([np.eye(4), -np.eye(4)])  # four equal directions: rank 4
    assert effective_rank(torch.tensor(spread)) == pytest.approx(4.0)
    assert effective_rank(torch.ones(5, 3)) == 0.0  # one point


def test_the_rule_stops_only_a_finite_rank_below_the_threshold():
    reason = collapse.verdict({"epoch": 2, "knn_top1": 0.1, "feature_rank": 1.02})
    assert reason.startswith("collapsed: ") and "epoch 2" in reason and "1.02" in reason
    for row in ({"epoch": 2, "feature_rank": 30.0}, {"epoch": 2}, {"epoch": 2, "feature_rank": math.nan},
                {"epoch": 2, "feature_rank": collapse.COLLAPSED_RANK}):
        assert collapse.verdict(row) is None, row


@pytest.mark.slow
def test_a_collapsed_trial_ends_after_that_epoch_as_pruned_with_the_reason(tmp_path, monkeypatch):
    from lightrecipe.trainers.recipe import preset

    torch.set_num_threads(2)
    recipe = preset("digits-small", image_size=32, batch_size=64, queue_size=128, data_fraction=0.25, epochs=3)
    monkeypatch.setattr(collapse.verdict, "__defaults__", (1e9,))  # every rank is "collapsed": stop at epoch 1
    sent, held = [], {}
    with pytest.raises(collapse.Collapsed) as stop:
        trainable._train({trainable.CFG_RECIPE: recipe.to_dict()}, tmp_path, sent.append, held)
    assert sent == [] and held["epoch"] == 1 and held["feature_rank"] > 1  # never reported as a normal epoch
    result = trainable.failed_result(str(stop.value), held, state="pruned")
    assert result["state"] == "pruned" and result["error"].startswith("collapsed: ")
    assert "epoch" not in result and result[trainable.LAST_EPOCH] == 1  # ASHA never ranks it
    assert [row["epoch"] for row in trainable.read_history(tmp_path)] == [1]  # train() stopped there
