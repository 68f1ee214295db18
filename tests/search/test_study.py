"""The trial-database layer against a real SQLite file: WAL, study attributes, census, baseline, seeds."""

import sqlite3

import optuna
import pytest

from lightrecipe.errors import UserError
from lightrecipe.search import records
from lightrecipe.search.study import (
    census,
    create_study,
    enqueue_baseline,
    find_study,
    jsonable,
    run_dir,
)
from lightrecipe.search.storage import open_storage
from lightrecipe.search.sweep import default_grace, resumed_seed

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
    assert c.finished == 2 and c.running == [running._trial_id] and c.waiting == 0
    assert c.remaining(4) == 2 and c.remaining(1) == 0
    # A pruned trial keeps its last value (records.py).
    assert study.trials[1].value == pytest.approx(0.3)


def test_a_killed_drivers_running_trial_can_be_taken_over_with_its_params(tmp_path):
    storage, study = make_study(tmp_path)
    old = study.ask()
    value = old.suggest_float("temperature", 0.05, 0.5)
    # A new driver (new study object) adopts the RUNNING trial: same number, the stored value comes back.
    again = optuna.load_study(study_name=study.study_name, storage=storage)
    adopted = optuna.trial.Trial(again, census(again).running[0])
    assert adopted.number == old.number
    assert adopted.suggest_float("temperature", 0.05, 0.5) == value
    again.tell(adopted, 0.4)
    assert len(again.trials) == 1 and again.trials[0].state == optuna.trial.TrialState.COMPLETE


def test_bad_storage_urls_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not an SQLAlchemy URL"):
        open_storage(str(tmp_path / "trials.db"))
    with pytest.raises(UserError, match="does not exist"):
        open_storage(f"sqlite:///{tmp_path}/missing/trials.db")
    with pytest.raises(UserError, match="cannot open the trial database"):
        open_storage("nosuchdialect://host/db")


def test_run_dirs_are_absolute_ids(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = run_dir("sweep", "paper-efficient", "mobilenetv3_small_050", 7)
    assert path.is_absolute()
    assert path == tmp_path / "sweep" / "runs" / "paper-efficient--mobilenetv3_small_050" / "trial-0007"
    assert run_dir("sweep", "a/b.yaml", "x", 0).parent.name == "a_b.yaml--x"


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
