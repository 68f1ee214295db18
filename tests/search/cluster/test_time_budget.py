"""--time-budget on a sweep whose trial database is a journal file and whose Tune state goes to --ray-storage."""

from __future__ import annotations

import optuna
import pytest

from lightrecipe import cli
from lightrecipe.search.store import records
from tests.search.helpers import ARCH, DATA, TINY_SPACE

pytestmark = pytest.mark.slow
STUDY = records.study_name("tiny", ARCH)
BUDGET_S = "2"  # far less than one trial takes (worker start, an epoch, a linear probe: many seconds)


def test_a_time_budget_stops_with_exit_3_and_resume_ends_with_exactly_n(ray_local, tmp_path, capsys):
    journal = tmp_path / "shared" / "trials.log"
    journal.parent.mkdir()
    url = f"journal:///{journal.as_posix()}"
    out, ray_storage = tmp_path / "sweep", tmp_path / "tune-state"
    argv = ["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "2", "--epochs", "1", "--grace-epochs", "1",
            "--concurrency", "1", "--out", str(out), "--storage", url, "--ray-storage", str(ray_storage), *DATA]

    assert cli.main([*argv, "--time-budget", BUDGET_S]) == 3
    printed = capsys.readouterr().out
    assert f"{STUDY}: 0/2 trials finished" in printed and "unfinished: run the same command with --resume" in printed
    assert f"trial database: {url}" in printed
    assert "to continue: lightrecipe sweep" in printed and printed.rstrip().endswith("--resume")
    stopped = optuna.load_study(study_name=STUDY, storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))))
    assert all(t.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING) for t in stopped.trials)

    assert cli.main([*argv, "--resume"]) == 0
    assert f"{STUDY}: 2/2 trials finished (2 complete)" in capsys.readouterr().out
    trials = optuna.load_study(study_name=STUDY, storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal)))).trials
    assert [t.number for t in trials] == [0, 1]  # exactly --trials, the stopped ones run again, none repeated
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert not (out / records.DB_FILENAME).exists()  # the database is where --storage says, nothing in --out
    assert not (out / "ray").exists() and any(ray_storage.iterdir())  # Tune's state went to --ray-storage

    report = tmp_path / "report"
    assert cli.main(["report", url, "--out", str(report)]) == 0  # reports read the journal too
    assert (report / "trials.csv").read_text().count("\n") == 3  # a header and the two trials
