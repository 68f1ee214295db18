"""The collapse stop: the effective rank train() reports, the rule that reads it, and the trainable ending a trial
as pruned with reason "collapsed" (collapse.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lightrecipe.search.tune import collapse, trainable
from lightrecipe.trainers.run.evaluate import knn_top1
from lightrecipe.trainers.run.scoring import chance, effective_rank, feature_spread


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


def monitor_row(memory: torch.Tensor, memory_labels: torch.Tensor, query: torch.Tensor, labels: torch.Tensor) -> dict:
    """The row train() reports for these features, computed by the trainer's own monitor functions."""
    knn = knn_top1(memory, memory_labels, query, labels, k=20, temperature=0.1, num_classes=10)
    return {"epoch": 3, "knn_top1": knn, "knn_chance": chance(labels), "feature_rank": effective_rank(memory),
            "feature_spread": feature_spread(memory)}


def planted(make, n: int = 400, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    return make(labels, g), labels


def test_features_at_one_point_plus_noise_are_collapsed_though_their_rank_is_high():
    def one_point(labels, g):  # every image at one point, up to noise that knows nothing of the class
        return torch.full((len(labels), 64), 3.0) + 0.01 * torch.randn(len(labels), 64, generator=g)

    (memory, mlabels), (query, qlabels) = planted(one_point, seed=1), planted(one_point, seed=2)
    row = monitor_row(memory, mlabels, query, qlabels)
    assert row["feature_rank"] > 30 and row["feature_spread"] < 0.01  # the rank alone would let it run
    reason = collapse.verdict(row)
    assert reason.startswith("collapsed at epoch 3: val kNN") and "feature spread" in reason


def test_a_one_dimensional_embedding_that_separates_the_classes_runs_on():
    def on_a_line(labels, g):  # one direction, through the origin, the class in the coordinate
        return (labels.float() - 4.5)[:, None] * torch.ones(1, 64) + 1e-3 * torch.randn(len(labels), 64, generator=g)

    (memory, mlabels), (query, qlabels) = planted(on_a_line, seed=3), planted(on_a_line, seed=4)
    row = monitor_row(memory, mlabels, query, qlabels)
    assert row["feature_rank"] < 1.5 and row["knn_top1"] > 0.15  # the old rank-only rule stopped this
    assert collapse.verdict(row) is None


def test_gathered_features_that_still_rank_neighbours_run_on_and_missing_numbers_never_stop():
    # digits-small at lr 5.0 without warm-up, epoch 4 (README, "The collapse stop"): one direction, kNN 0.716
    assert collapse.verdict({"epoch": 4, "knn_top1": 0.716, "knn_chance": 0.11, "feature_spread": 0.013,
                             "feature_rank": 8.8}) is None
    at_chance = {"epoch": 2, "knn_top1": 0.12, "knn_chance": 0.11, "feature_spread": 0.02, "feature_rank": 40.0}
    assert collapse.verdict(at_chance).startswith("collapsed at epoch 2")
    assert collapse.verdict({**at_chance, "feature_spread": 0.5}) is None  # at chance, but not gathered: no cause
    assert collapse.verdict({**at_chance, "feature_spread": 0.5, "feature_rank": 1.2}) is not None  # on a line
    for missing in ("knn_top1", "knn_chance"):
        assert collapse.verdict({k: v for k, v in at_chance.items() if k != missing}) is None
    assert collapse.verdict({**at_chance, "knn_top1": math.nan}) is None


def test_the_spread_is_the_rms_distance_of_unit_features_from_their_mean():
    x = torch.nn.functional.normalize(torch.randn(200, 16, generator=torch.Generator().manual_seed(5)), dim=1)
    rms = float((x - x.mean(dim=0)).pow(2).sum(dim=1).mean().sqrt())
    assert feature_spread(x * 7.0) == pytest.approx(rms, rel=1e-5)  # scale-free
    assert feature_spread(torch.ones(5, 3)) == 0.0 and chance(torch.tensor([1, 1, 2, 3])) == 0.5


@pytest.mark.slow
def test_a_collapsed_trial_ends_after_that_epoch_as_pruned_with_the_reason(tmp_path, monkeypatch):
    from lightrecipe.trainers.recipe import preset

    torch.set_num_threads(2)
    recipe = preset("digits-small", image_size=32, batch_size=64, queue_size=128, data_fraction=0.25, epochs=3)
    always = collapse.Rule(near_chance=1.0, gathered_spread=2.0)  # every epoch "collapsed": stop at epoch 1
    monkeypatch.setattr(collapse.verdict, "__defaults__", (always,))
    sent, held = [], {}
    with pytest.raises(collapse.Collapsed) as stop:
        trainable._train({trainable.CFG_RECIPE: recipe.to_dict()}, tmp_path, sent.append, held)
    assert sent == [] and held["epoch"] == 1 and held["feature_rank"] > 1  # never reported as a normal epoch
    result = trainable.failed_result(str(stop.value), held, state="pruned")
    assert result["state"] == "pruned" and result["error"].startswith("collapsed at epoch 1: ")
    assert "epoch" not in result and result[trainable.LAST_EPOCH] == 1  # ASHA never ranks it
    assert [row["epoch"] for row in trainable.read_history(tmp_path)] == [1]  # train() stopped there
