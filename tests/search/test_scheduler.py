"""ASHA never stops the ResNet-50 baseline trial, and still stops weak searched trials."""

from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from lightrecipe.search import trainable as tr
from lightrecipe.search.sweep import BaselineKeepingASHA


def test_baseline_survives_a_rung_that_stops_an_equally_weak_searched_trial():
    scheduler = BaselineKeepingASHA(time_attr="epoch", metric=tr.OBJECTIVE, mode="max", max_t=9, grace_period=1,
                                    reduction_factor=3)
    strong = [Trial("fn", config={tr.CFG_BASELINE: False}, stub=True) for _ in range(3)]
    baseline = Trial("fn", config={tr.CFG_BASELINE: True}, stub=True)
    weak = Trial("fn", config={tr.CFG_BASELINE: False}, stub=True)
    for t in [*strong, baseline, weak]:
        scheduler.on_trial_add(None, t)
    for i, t in enumerate(strong):
        scheduler.on_trial_result(None, t, {"epoch": 1, tr.OBJECTIVE: 0.9 + i / 100})
    assert scheduler.on_trial_result(None, baseline, {"epoch": 1, tr.OBJECTIVE: 0.1}) == TrialScheduler.CONTINUE
    assert scheduler.on_trial_result(None, weak, {"epoch": 1, tr.OBJECTIVE: 0.1}) == TrialScheduler.STOP
