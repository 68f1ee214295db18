"""The trial-database layer against a real SQLite file: WAL, study attributes, census, baseline, seeds."""

import sqlite3

import optuna
import pytest

from lightrecipe.errors import UserError
from lightrecipe.search.planning import resumed_seed
from lightrecipe.search.settings import default_grace
from lightrecipe.search.store import records
from lightrecipe.search.store.storage import open_storage
from lightrecipe.search.store.study import (
    census,
    close_extra_running,
    create_study,
    enqueue_baseline,
    find_study,
    jsonable,
    run_dir,
    settle_stopped,
    study_key,
)

SPEC = {"name": "s", "base": "resnet50-mocov2", "fixed": {}, "params": {"temperature": {"float": [0.05, 0.5]}}}


def make_study(tmp_path, arch="mobilenetv3_small_050"):
    storage = open_storage(records.default_storage_url(str(tmp_path)))
    study = create_study(
        storage, space="s", arch=arch, max_epochs=3, space_spec=SPEC, sweep={"trials": 4, "epochs": 3}
    )
    return storage, study


def test_sqlite_storage_is_in_wal_mode_and_readable_while_a_writer_holds_it(tmp_path):
    storage, study = make_study(tmp_path)
    con = sqlite3.connect(tmp_path / records.DB_FILENAME)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.execute("BEGIN")
    con.execute("SELECT count(*) FROM trials").fetchone()  # a reader in the middle of a transaction
    trial = study.ask()  # the writer is not blocked by it
    study.tell(trial, 0.5)
    con.rollback()
    assert optuna.load_study(study_name=study.study_name, storage=storage).best_value == 0.5


def test_study_attributes_follow_records(tmp_path):
    storage, study = make_study(tmp_path)
    loaded = find_study(storage, records.study_name("s", "mobilenetv3_small_050"))
    assert loaded is not None and loaded.study_name == "s/mobilenetv3_small_050"
    attrs = loaded.user_attrs
    assert attrs[records.SPACE] == "s" and attrs[records.ARCH] == "mobilenetv3_small_050"
    assert attrs[records.OBJECTIVE] == records.DEFAULT_OBJECTIVE == "knn_top1"
    assert loaded.metric_names == ["knn_top1"]  # optuna-dashboard shows it instead of "Objective 0"
    assert attrs[records.MAX_EPOCHS] == 3
    assert attrs[records.SPACE_SPEC] == SPEC
    assert attrs[records.SWEEP] == {"trials": 4, "epochs": 3}
    assert find_study(storage, "s/other") is None


def test_census_counts_finished_running_waiting_and_the_baseline(tmp_path):
    _, study = make_study(tmp_path)
    enqueue_baseline(study, {"temperature": 0.2})
    c = census(study)
    assert (c.finished, c.running, c.waiting, c.has_baseline, c.total) == (0, [], 1, True, 1)
    first = study.ask()  # pops the enqueued baseline
    assert first.params == {} and first.user_attrs[records.BASELINE] is True
    assert first.suggest_float("temperature", 0.05, 0.5) == 0.2
    study.tell(first, 0.7)
    pruned = study.ask()
    pruned.report(0.3, step=1)
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    running = study.ask()
    c = census(study)
    assert c.finished == 2 and c.running == [running.number] and c.waiting == 0
    assert c.remaining(4) == 2 and c.remaining(1) == 0
    # A pruned trial keeps its last value (records.py).
    assert study.trials[1].value == pytest.approx(0.3)


def test_a_trial_asha_stopped_before_the_driver_died_is_closed_as_pruned_not_rerun(tmp_path):
    storage, study = make_study(tmp_path)
    stopped, running = study.ask(), study.ask()
    for trial, state in ((stopped, "pruned"), (running, "running")):
        trial.report(0.3, step=1)
        trial.set_user_attr(records.STATE, state)
        trial.set_user_attr(records.HISTORY, [{"epoch": 1, "knn_top1": 0.3}, {"epoch": 2, "knn_top1": 0.25}])
    # The searcher records "pruned" before the last value; the driver died before `tell`.
    assert settle_stopped(study, storage) == [stopped.number]
    after = {t.number: t for t in study.get_trials()}
    assert after[stopped.number].state == optuna.trial.TrialState.PRUNED
    assert after[stopped.number].intermediate_values == {1: 0.3, 2: 0.25}  # the epoch it had not reported
    assert after[running.number].state == optuna.trial.TrialState.RUNNING
    assert census(study).running == [running.number]


def test_running_trials_beyond_the_trials_asked_for_are_closed_as_failed(tmp_path):
    storage, study = make_study(tmp_path)
    trials = [study.ask() for _ in range(3)]
    close_extra_running(study, storage, [trials[1].number, trials[2].number])
    states = [(t.state, t.user_attrs.get(records.STATE)) for t in study.get_trials()]
    assert states == [(optuna.trial.TrialState.RUNNING, None)] + [(optuna.trial.TrialState.FAIL, "failed")] * 2
    assert "not resumed" in study.get_trials()[2].user_attrs[records.ERROR]


def test_bad_storage_urls_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not an SQLAlchemy URL"):
        open_storage(str(tmp_path / "trials.db"))
    with pytest.raises(UserError, match="does not exist"):
        open_storage(f"sqlite:///{tmp_path}/missing/trials.db")
    with pytest.raises(UserError, match="cannot open the trial database"):
        open_storage("nosuchdialect://host/db")


def test_run_dirs_are_absolute_ids_of_the_study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = run_dir("sweep", "paper-efficient", "mobilenetv3_small_050", "0a1b2c3d4e5f", 7)
    assert path.is_absolute()
    assert path == tmp_path / "sweep" / "runs" / "paper-efficient--mobilenetv3_small_050--0a1b2c3d4e5f" / "trial-0007"
    # Two space names with one slug, or one study name in two databases: the study key keeps them apart.
    assert run_dir("sweep", "a/b.yaml", "x", "k1", 0).parent.name == "a_b.yaml--x--k1"
    assert run_dir("sweep", "a:b.yaml", "x", "k2", 0) != run_dir("sweep", "a/b.yaml", "x", "k1", 0)


def test_every_study_gets_its_own_key_even_with_the_same_name(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, first = make_study(tmp_path / "a")
    _, second = make_study(tmp_path / "b")  # the same space and arch in another database
    assert first.study_name == second.study_name
    keys = {study_key(first), study_key(second)}
    assert len(keys) == 2 and all(len(k) == 12 for k in keys)
    assert study_key(first) == first.user_attrs[records.STUDY_KEY]  # stable once drawn


def test_a_study_from_before_keys_gets_one_on_resume(tmp_path):
    storage = open_storage(records.default_storage_url(str(tmp_path)))
    old = optuna.create_study(storage=storage, study_name="s/x", direction="maximize")
    key = study_key(old)
    assert optuna.load_study(study_name="s/x", storage=storage).user_attrs[records.STUDY_KEY] == key


def test_resumed_seed_keeps_a_new_study_reproducible_and_moves_on_after_a_resume():
    assert resumed_seed(3, 0) == 3
    assert resumed_seed(3, 5) == resumed_seed(3, 5) != resumed_seed(3, 6)
    assert resumed_seed(3, 5) != 3


@pytest.mark.parametrize("epochs,grace", [(1, 1), (3, 1), (8, 2), (20, 5), (100, 25)])
def test_default_grace_is_a_quarter_of_the_schedule(epochs, grace):
    assert default_grace(epochs) == grace


def test_jsonable_makes_plain_json():
    import numpy as np

    out = jsonable({"a": np.float32(0.5), "b": (1, np.int64(2)), "c": float("nan"), "d": {"e": True}})
    assert out == {"a": 0.5, "b": [1, 2], "c": None, "d": {"e": True}}
    assert type(out["a"]) is float and type(out["b"][1]) is int
