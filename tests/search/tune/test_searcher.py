"""The searcher without Ray: fake Tune results in, trial records out, in a real SQLite trial database.

Tune's side is played by hand: `suggest(trial_id)` -> config, `on_trial_result` per epoch, then
`on_trial_complete`, with results shaped by trainable.py's own functions.
"""

from __future__ import annotations

import functools
import logging
import pickle
from pathlib import Path

import optuna
import pytest
import ray.cloudpickle
from optuna.trial import TrialState

from lightrecipe.search.store import records
from lightrecipe.search.store.ledger import TrialLedger
from lightrecipe.search.store.study import create_study, enqueue_baseline, run_dir
from lightrecipe.search.tune import trainable
from lightrecipe.search.tune.searcher import StudySearcher
from lightrecipe.spaces import load_space
from tests.search.helpers import ARCH, TINY_SPACE, all_attrs_present, sqlite_storage

SPACE = load_space(TINY_SPACE)
OVERRIDES = {"dataset": "digits", "image_size": 32, "batch_size": 64, "queue_size": 256, "arch": ARCH, "epochs": 3}
NODE = "host/10.0.0.7/abcd1234"


def epoch_result(epoch: int, knn: float) -> dict:
    return {trainable.KIND: trainable.EPOCH, "epoch": epoch, "loss": 6.0 - epoch, "lr": 0.03, "knn_top1": knn,
            "images_per_s": 500.0, "epoch_seconds": 2.0, "node": NODE, "wall_seconds": 3.0 * epoch}


def history_row(epoch: int, knn: float) -> dict:
    return {k: v for k, v in epoch_result(epoch, knn).items() if k in trainable.HISTORY_KEYS}


def complete_result(knn: float, history: list[dict]) -> dict:
    final = {**history_row(3, knn), "linear_top1": 0.8, "test_knn_top1": 0.7, "test_linear_top1": 0.75,
             "params": 123_456, "state": "complete", "diverged_epoch": None, "error": "", "epochs_run": 3}
    return {**trainable.final_result(final), trainable.FULL_HISTORY: history, "node": NODE, "wall_seconds": 10.0}


def merge_row(rows: dict, number: int, row: dict) -> None:  # the progress table's update, reduced to its data
    rows[number] = {**rows.get(number, {}), **row}


class Driver:
    """A study with its searcher, as one sweep driver holds them; `stopped` plays ASHA's decisions."""

    def __init__(self, out: Path, *, orphans=None, baseline=False, cpus=2.0, db: Path | None = None):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.url = records.default_storage_url(str(db or out))
        self.storage = sqlite_storage(db or out)
        name = records.study_name(SPACE.name, ARCH)
        if name in {s.study_name for s in optuna.get_all_study_summaries(self.storage, include_best_trial=False)}:
            self.study = optuna.load_study(study_name=name, storage=self.storage)
        else:
            self.study = create_study(self.storage, space=SPACE.name, arch=ARCH, max_epochs=3,
                                      space_spec=SPACE.to_dict(), sweep={})
            if baseline:
                enqueue_baseline(self.study, SPACE.baseline_params(OVERRIDES))
        self.stopped: set[int] = set()
        self.rows: dict[int, dict] = {}
        ledger = TrialLedger(self.study, self.storage, space=SPACE, overrides=OVERRIDES, out=out,
                             params_count=1000, orphans=orphans)
        self.searcher = StudySearcher(ledger, cpus_per_trial=cpus, gpus_per_trial=0.0,
                                      stopped_by_scheduler=self.stopped.__contains__,
                                      on_update=functools.partial(merge_row, self.rows))

    def trial(self, number: int) -> optuna.trial.FrozenTrial:
        return optuna.load_study(study_name=self.study.study_name, storage=self.storage).trials[number]


def test_a_complete_trial_carries_every_record(tmp_path):
    d = Driver(tmp_path / "sw", baseline=True)
    config = d.searcher.suggest("t0")
    assert config[trainable.CFG_BASELINE] is True and config["number"] == 0
    assert config[trainable.CFG_RECIPE] == SPACE.baseline(OVERRIDES).to_dict()  # the ResNet-50 settings exactly
    history = [history_row(1, 0.5), history_row(2, 0.6), history_row(3, 0.7)]
    d.searcher.on_trial_result("t0", epoch_result(1, 0.5))
    d.searcher.on_trial_result("t0", epoch_result(2, 0.6))
    d.searcher.on_trial_complete("t0", complete_result(0.7, history))

    t = d.trial(0)
    assert all_attrs_present(t) == []
    assert t.state == TrialState.COMPLETE and t.value == 0.7 and t.user_attrs[records.STATE] == "complete"
    assert t.params == {"temperature": 0.2} and t.user_attrs[records.BASELINE] is True
    assert t.intermediate_values == {1: 0.5, 2: 0.6, 3: 0.7}
    assert t.user_attrs[records.HISTORY] == history
    metrics = t.user_attrs[records.METRICS]
    assert metrics["linear_top1"] == 0.8 and metrics["epoch"] == 3 and metrics["state"] == "complete"
    assert "node" not in metrics and trainable.FULL_HISTORY not in metrics  # only train()'s own keys
    assert t.user_attrs[records.PARAMS_COUNT] == 123_456  # train()'s count replaces the driver's estimate
    assert t.user_attrs[records.WALL_SECONDS] == 10.0 and t.user_attrs[records.DEVICE_SECONDS] == 20.0
    assert t.user_attrs[records.NODE] == NODE
    key = d.study.user_attrs[records.STUDY_KEY]
    assert t.user_attrs[records.RUN_DIR] == config[trainable.CFG_RUN_DIR] == str(
        run_dir(tmp_path / "sw", SPACE.name, ARCH, key, 0))
    assert d.rows[0]["state"] == "complete" and d.rows[0]["value"] == 0.7
    assert d.searcher.open_trials() == []


def test_the_baseline_and_the_trials_are_fitted_to_the_data_and_say_so(tmp_path):
    """A sweep that sets no queue or batch: the ResNet-50 baseline and the space's trials get MoCo's queue and
    batch fitted to the digits (trainers/fit.py), recorded in `fitted`; the base preset digits-small is kept."""
    from lightrecipe.trainers.fit import TrainImages

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = sqlite_storage(tmp_path / "sw")
    study = create_study(storage, space=SPACE.name, arch=ARCH, max_epochs=3, space_spec=SPACE.to_dict(), sweep={})
    overrides, fit_to = {"arch": ARCH, "epochs": 3}, TrainImages()
    enqueue_baseline(study, SPACE.baseline_params(overrides, fit_to=fit_to))
    ledger = TrialLedger(study, storage, space=SPACE, overrides=overrides, out=tmp_path / "sw", params_count=1,
                         fit_to=fit_to)
    searcher = StudySearcher(ledger, cpus_per_trial=1.0, gpus_per_trial=0.0, stopped_by_scheduler=lambda n: False,
                             on_update=lambda n, row: None)
    baseline, searched = searcher.suggest("t0"), searcher.suggest("t1")
    assert (baseline[trainable.CFG_RECIPE]["queue_size"], baseline[trainable.CFG_RECIPE]["batch_size"]) == (128, 64)
    assert baseline[trainable.CFG_RECIPE] == SPACE.baseline(overrides, fit_to=fit_to).to_dict()
    trials = optuna.load_study(study_name=study.study_name, storage=storage).trials
    assert trials[0].user_attrs[records.FITTED] == {"train_images": 1078, "changed": {"batch_size": [256, 64],
                                                                                      "queue_size": [65536, 128]}}
    assert (searched[trainable.CFG_RECIPE]["queue_size"], searched[trainable.CFG_RECIPE]["batch_size"]) == (256, 64)
    assert records.FITTED not in trials[1].user_attrs  # digits-small's own queue and batch, as written


def test_a_trial_the_scheduler_stopped_is_pruned_with_its_last_value(tmp_path):
    d = Driver(tmp_path / "sw")
    d.searcher.suggest("t0")
    d.searcher.on_trial_result("t0", epoch_result(1, 0.5))
    d.stopped.add(0)  # ASHA stops it on its epoch-2 result; Tune then calls on_trial_complete with that result
    d.searcher.on_trial_complete("t0", epoch_result(2, 0.4))
    t = d.trial(0)
    assert t.state == TrialState.PRUNED and t.user_attrs[records.STATE] == "pruned"
    assert t.intermediate_values == {1: 0.5, 2: 0.4} and t.value == 0.4
    assert t.user_attrs[records.METRICS] == history_row(2, 0.4)
    assert all_attrs_present(t) == []


def test_a_trial_tune_stopped_for_another_reason_stays_running_for_resume(tmp_path):
    d = Driver(tmp_path / "sw")
    d.searcher.suggest("t0")
    d.searcher.on_trial_complete("t0", epoch_result(1, 0.5))  # time budget: stopped, not by ASHA
    t = d.trial(0)
    assert t.state == TrialState.RUNNING and t.user_attrs[records.STATE] == "running"
    assert t.intermediate_values == {1: 0.5} and [h["epoch"] for h in t.user_attrs[records.HISTORY]] == [1]
    assert d.searcher.open_trials() == [0]


@pytest.mark.parametrize("with_epoch", [True, False])
def test_a_diverged_trial_is_pruned_in_optuna_so_tpe_learns_from_it(tmp_path, with_epoch):
    d = Driver(tmp_path / "sw")
    d.searcher.suggest("t0")
    if with_epoch:
        d.searcher.on_trial_result("t0", epoch_result(1, 0.5))
    final = trainable.final_result({"epoch": 1 if with_epoch else 0, "params": 99, "state": "diverged",
                             "diverged_epoch": 2 if with_epoch else 1, "error": "loss became nan at epoch 2"})
    d.searcher.on_trial_complete("t0", {**final, "node": NODE, "wall_seconds": 4.0})
    t = d.trial(0)
    assert t.state == TrialState.PRUNED  # not FAIL: TPE ignores failed trials (optuna#1214)
    assert t.user_attrs[records.STATE] == "diverged" and t.user_attrs[records.ERROR] == "loss became nan at epoch 2"
    assert t.value == (0.5 if with_epoch else None)
    assert t.user_attrs[records.METRICS]["diverged_epoch"] == (2 if with_epoch else 1)
    assert d.rows[0]["state"] == "diverged"


def test_a_complete_result_without_a_finite_objective_is_diverged(tmp_path):
    d = Driver(tmp_path / "sw")
    d.searcher.suggest("t0")
    result = complete_result(0.7, [])
    result[trainable.OBJECTIVE] = float("nan")
    d.searcher.on_trial_complete("t0", result)
    t = d.trial(0)
    assert t.state == TrialState.PRUNED and t.user_attrs[records.STATE] == "diverged"
    assert t.user_attrs[records.ERROR] == "final knn_top1 is nan"


def test_a_setup_failure_on_the_worker_is_failed_with_its_reason_and_traceback(tmp_path, caplog):
    d = Driver(tmp_path / "sw")
    d.searcher.suggest("t0")
    reason = "PermissionError: [Errno 13] Permission denied: '/shared/runs' (at trainable.py:71)"
    final = {**trainable.failed_result(reason, None), trainable.TRACEBACK: "Traceback (most recent call last):\n  mkdir\n",
             trainable.FULL_HISTORY: [], "node": NODE, "wall_seconds": 0.5}
    with caplog.at_level(logging.ERROR, logger="lightrecipe.search.tune.searcher"):
        d.searcher.on_trial_complete("t0", final)
    t = d.trial(0)
    assert t.state == TrialState.FAIL and t.user_attrs[records.STATE] == "failed"
    assert t.user_attrs[records.ERROR] == reason
    assert all_attrs_present(t) == []
    assert "trial 0 failed on host/10.0.0.7/abcd1234" in caplog.text and "Traceback (most recent" in caplog.text
    assert d.rows[0]["state"] == "failed" and d.rows[0]["error"] == reason  # the progress table shows why


def test_a_worker_that_kept_dying_is_failed_with_that_reason(tmp_path):
    d = Driver(tmp_path / "sw")
    d.searcher.suggest("t0")
    d.searcher.on_trial_result("t0", epoch_result(1, 0.5))
    d.searcher.on_trial_complete("t0", error=True)
    t = d.trial(0)
    assert t.state == TrialState.FAIL and t.user_attrs[records.STATE] == "failed"
    assert "worker died and its retries ran out" in t.user_attrs[records.ERROR]
    assert t.user_attrs[records.METRICS] == history_row(1, 0.5)


def test_an_interrupted_trial_without_a_run_folder_reruns_from_scratch_with_its_params(tmp_path):
    """A driver killed after `ask` and before any attribute: the trial is RUNNING with its params only."""
    out = tmp_path / "sw"
    first = Driver(out)
    trial = first.study.ask()
    temperature = trial.suggest_float("temperature", 0.05, 0.5, log=True)
    assert records.RUN_DIR not in trial.user_attrs

    again = Driver(out, orphans=[trial.number])
    config = again.searcher.suggest("new-id")
    assert config["number"] == trial.number and config["params"] == {"temperature": temperature}
    assert config[trainable.CFG_RECIPE]["temperature"] == temperature
    folder = Path(config[trainable.CFG_RUN_DIR])
    assert folder == run_dir(out, SPACE.name, ARCH, first.study.user_attrs[records.STUDY_KEY], trial.number)
    assert not folder.exists()  # from scratch: nothing of another run is there
    assert again.trial(trial.number).user_attrs[records.HISTORY] == []


def test_an_interrupted_trial_continues_in_its_folder_with_the_epochs_it_had(tmp_path):
    out = tmp_path / "sw"
    first = Driver(out)
    config = first.searcher.suggest("t0")
    first.searcher.on_trial_result("t0", epoch_result(1, 0.5))  # then the driver is killed

    again = Driver(out, orphans=[0])
    resumed = again.searcher.suggest("t1")
    assert resumed[trainable.CFG_RUN_DIR] == config[trainable.CFG_RUN_DIR] and resumed["params"] == config["params"]
    # The resumed run's final result brings epoch 2, which finished while no driver was listening.
    history = [history_row(1, 0.5), history_row(2, 0.6), history_row(3, 0.7)]
    again.searcher.on_trial_complete("t1", complete_result(0.7, history))
    t = again.trial(0)
    assert t.state == TrialState.COMPLETE and t.user_attrs[records.HISTORY] == history
    assert t.intermediate_values == {1: 0.5, 2: 0.6, 3: 0.7}
    assert len(again.study.trials) == 1  # the same trial, not a new one


def test_a_sampled_recipe_the_recipe_rules_reject_fails_that_trial_only(tmp_path):
    out = tmp_path / "sw"
    d = Driver(out)
    d.searcher._ledger.overrides = {**OVERRIDES, "queue_size": 8}  # below the batch: every recipe is invalid
    config = d.searcher.suggest("t0")
    assert config[trainable.CFG_RECIPE] is None and config[trainable.CFG_RECIPE_ERROR].startswith("sampled recipe is invalid")
    assert "temperature" in d.trial(0).params  # sampled before the recipe was built


def test_a_pickled_searcher_carries_no_database(tmp_path):
    d = Driver(tmp_path / "sw")
    d.searcher.suggest("t0")
    for dumps in (pickle.dumps, ray.cloudpickle.dumps):
        blob = dumps(d.searcher)
        assert d.url.encode() not in blob and b"RDBStorage" not in blob and b"sqlalchemy" not in blob
    copy = pickle.loads(pickle.dumps(d.searcher))
    with pytest.raises(RuntimeError, match="no trial database"):
        copy.suggest("t1")
    d.searcher.on_trial_result("t0", epoch_result(1, 0.5))  # the original still works
    assert d.trial(0).intermediate_values == {1: 0.5}


def test_another_database_in_the_same_out_never_shares_a_run_folder(tmp_path):
    """Trial 0 of study tiny/<arch> in two databases, one --out: train() must not find the other's run."""
    out = tmp_path / "sw"
    first = Driver(out, db=tmp_path / "db1")
    second = Driver(out, db=tmp_path / "db2")
    assert first.study.study_name == second.study.study_name
    a, b = first.searcher.suggest("a")["run_dir"], second.searcher.suggest("b")["run_dir"]
    assert a != b and Path(a).parent.parent == Path(b).parent.parent == (out / "runs").resolve()
