"""StudyASHA against Ray's own ASHAScheduler, the baseline it never stops, and rungs rebuilt on resume.

No Ray session: Tune's schedulers are plain objects fed (trial, result) pairs, as Tune's controller feeds them.
"""

from __future__ import annotations

import random

import optuna
import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from lightrecipe.search.tune import trainable
from lightrecipe.search.tune.scheduler import REDUCTION_FACTOR, Rungs, StudyASHA, milestones

MAX_EPOCHS, GRACE = 9, 1


def stub(number: int, baseline: bool = False) -> Trial:
    return Trial("fn", config={"number": number, trainable.CFG_BASELINE: baseline}, stub=True)


def stream(seed: int, trials: int = 14, concurrency: int = 3) -> list[tuple[int, int, float]]:
    """(trial number, epoch, knn_top1) in the order results reach the driver: `concurrency` trials at a
    time, each advancing by one epoch at random moments, values on noisy learning curves."""
    rng = random.Random(seed)
    curves = {n: [min(1.0, rng.uniform(0.1, 0.5) + e * rng.uniform(0.0, 0.06)) for e in range(1, MAX_EPOCHS + 1)]
              for n in range(trials)}
    todo, running, events = list(range(trials)), {}, []
    while todo or running:
        while todo and len(running) < concurrency:
            running[todo.pop(0)] = 0
        number = rng.choice(sorted(running))
        running[number] += 1
        events.append((number, running[number], curves[number][running[number] - 1]))
        if running[number] == MAX_EPOCHS:
            del running[number]
    return events


def play(scheduler, events, trials: dict[int, Trial], stopped: set[int], study=None) -> list[tuple]:
    """Feed results as Tune would (nothing more from a trial once it is stopped); record every result
    the scheduler sees as the searcher does (an intermediate value; a stopped trial is PRUNED)."""
    decisions = []
    for number, epoch, value in events:
        if number in stopped:
            continue
        if number not in trials:
            trials[number] = stub(number)
            scheduler.on_trial_add(None, trials[number])
        decision = scheduler.on_trial_result(None, trials[number], {"epoch": epoch, trainable.OBJECTIVE: value})
        decisions.append((number, epoch, decision))
        if study is not None:
            study.trials_by_number[number].report(value, step=epoch)
        if decision == TrialScheduler.STOP:
            stopped.add(number)
            if study is not None:
                state = optuna.trial.TrialState.COMPLETE if epoch == MAX_EPOCHS else optuna.trial.TrialState.PRUNED
                study.tell(study.trials_by_number[number], value if state.name == "COMPLETE" else None, state=state)
    return decisions


class Study:
    """An in-memory Optuna study with one asked trial per number, as the ledger leaves it."""

    def __init__(self, trials: int):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(direction="maximize")
        self.trials_by_number = {n: self.study.ask() for n in range(trials)}

    def tell(self, trial, value, state):
        self.study.tell(trial, value, state=state)


@pytest.mark.parametrize(
    "grace,epochs,expected",
    [(1, 9, [1, 3]), (1, 10, [1, 3, 9]), (2, 2, []), (1, 3, [1]), (5, 20, [5, 15]), (2, 20, [2, 6, 18])],
)
def test_milestones_are_grace_times_powers_of_three_below_the_full_schedule(grace, epochs, expected):
    assert milestones(grace, epochs) == expected


@pytest.mark.parametrize("seed", range(5))
def test_decisions_equal_ray_asha_on_the_same_results(seed):
    ray_asha = ASHAScheduler(time_attr="epoch", metric=trainable.OBJECTIVE, mode="max", max_t=MAX_EPOCHS,
                             grace_period=GRACE, reduction_factor=REDUCTION_FACTOR)
    ours = StudyASHA(Rungs(GRACE, MAX_EPOCHS), max_epochs=MAX_EPOCHS)
    events = stream(seed)
    expected = play(ray_asha, events, {}, set())
    got = play(ours, events, {}, set())
    assert got == expected
    assert sum(d == TrialScheduler.STOP for _, e, d in got if e < MAX_EPOCHS) >= 3  # the stream does prune


def interrupted(events, cut: int, rebuild: bool) -> tuple[list, list]:
    """Play events[:cut], then rebuild the scheduler from the database alone (new Tune trial ids; with
    rebuild=False, empty rungs, as a resume that forgets them) and play the rest."""
    db = Study(14)
    stopped: set[int] = set()
    before = play(StudyASHA(Rungs(GRACE, MAX_EPOCHS), max_epochs=MAX_EPOCHS), events[:cut], {}, stopped, db)
    rungs = Rungs.from_study(db.study, GRACE, MAX_EPOCHS) if rebuild else Rungs(GRACE, MAX_EPOCHS)
    after = play(StudyASHA(rungs, max_epochs=MAX_EPOCHS), events[cut:], {}, stopped, db)
    return before, after


@pytest.mark.parametrize("seed", range(5))
def test_a_resumed_sweep_prunes_as_the_uninterrupted_one(seed):
    """Every decision after the interrupt matches the uninterrupted run: trials stopped before it stay
    stopped, resumed trials are not judged again at rungs they passed, new ones meet the same cutoffs."""
    events = stream(seed)
    uninterrupted = play(StudyASHA(Rungs(GRACE, MAX_EPOCHS), max_epochs=MAX_EPOCHS), events, {}, set())
    before, after = interrupted(events, len(events) // 3, rebuild=True)
    assert any(d == TrialScheduler.STOP and e < MAX_EPOCHS for _, e, d in before)  # pruned before the interrupt
    assert before + after == uninterrupted


def test_a_resume_that_forgot_the_rungs_would_prune_differently():
    """The check above can fail: without the rebuilt rungs the same results get other decisions."""
    differ = 0
    for seed in range(5):
        events = stream(seed)
        uninterrupted = play(StudyASHA(Rungs(GRACE, MAX_EPOCHS), max_epochs=MAX_EPOCHS), events, {}, set())
        before, after = interrupted(events, len(events) // 3, rebuild=False)
        differ += before + after != uninterrupted
    assert differ >= 3


def test_the_baseline_runs_on_but_counts_at_the_rung():
    scheduler = StudyASHA(Rungs(1, 9), max_epochs=9)
    for number, value in enumerate([0.9, 0.91, 0.92]):
        assert scheduler.on_trial_result(None, stub(number), {"epoch": 1, trainable.OBJECTIVE: value}) == TrialScheduler.CONTINUE
    baseline, weak = stub(3, baseline=True), stub(4)
    assert scheduler.on_trial_result(None, baseline, {"epoch": 1, trainable.OBJECTIVE: 0.1}) == TrialScheduler.CONTINUE
    assert not scheduler.was_stopped(3) and 3 in scheduler.rungs.recorded[1]
    assert scheduler.on_trial_result(None, weak, {"epoch": 1, trainable.OBJECTIVE: 0.1}) == TrialScheduler.STOP
    assert scheduler.was_stopped(4)


def test_results_without_an_epoch_and_nan_values_never_stop_a_trial():
    scheduler = StudyASHA(Rungs(1, 9), max_epochs=9)
    for number in range(3):
        scheduler.on_trial_result(None, stub(number), {"epoch": 1, trainable.OBJECTIVE: 0.9})
    failed = {trainable.LAST_EPOCH: 1, trainable.OBJECTIVE: float("nan")}  # a failed trial's final result names no epoch
    assert scheduler.on_trial_result(None, stub(5), failed) == TrialScheduler.CONTINUE
    assert scheduler.on_trial_result(None, stub(6), {"epoch": 1, trainable.OBJECTIVE: float("nan")}) == TrialScheduler.CONTINUE
    assert scheduler.on_trial_result(None, stub(7), {"epoch": 9, trainable.OBJECTIVE: 0.0}) == TrialScheduler.STOP
    assert not scheduler.was_stopped(7)  # finished, not pruned
