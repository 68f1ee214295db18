"""Sweeps against a real PostgreSQL server (tests/search/postgres.py) with a password, as on a cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import optuna
import pytest

from lightrecipe import cli
from lightrecipe.reports.tables import load_trials
from lightrecipe.search.store import records
from tests.search.helpers import ARCH, DATA, TINY_SPACE, descendants, stop_pids

pytestmark = pytest.mark.slow
STUDY = records.study_name("tiny", ARCH)
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
WAIT_S = 240


def sweep_argv(url: str, out: Path, *extra: str) -> list[str]:
    return ["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "2", "--epochs", "2", "--grace-epochs", "2",
            "--concurrency", "1", "--out", str(out), "--storage", url, *DATA, *extra]


def trials_of(url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=STUDY, storage=url).trials


def test_kill_9_of_the_driver_resume_and_a_report_reading_while_the_sweep_writes(postgres_server, tmp_path):
    url = postgres_server.create_database("killed")
    out = tmp_path / "sweep"
    reads, errors, stop = [], [], threading.Event()

    def reader():  # a report on another machine, reading the database while the sweep writes it
        while not stop.is_set():
            try:
                reads.append(load_trials(url))
            except Exception as exc:  # noqa: BLE001 - any failure to read is what this test catches
                if "no study" not in str(exc) and reads:
                    errors.append(exc)
            time.sleep(1.0)  # a person refreshing a report; more often only takes CPU from the trials

    def second_trial_trained_an_epoch() -> bool:
        return bool(reads) and len(reads[-1]) == 2 and bool(
            ((reads[-1]["optuna_state"] == "RUNNING") & (reads[-1]["epochs"] >= 1)).any()
            and (reads[-1]["optuna_state"] == "COMPLETE").any())

    log = open(tmp_path / "driver.log", "w")
    driver = subprocess.Popen([sys.executable, "-m", "lightrecipe.cli", *sweep_argv(url, out)], stdout=log,
                              stderr=subprocess.STDOUT)
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    below: set[int] = set()
    try:
        deadline = time.monotonic() + WAIT_S
        # Kill in the state this test is about: trial 0 finished, trial 1 running with an epoch in its history
        # (one CPU at a time, so trial 1 has another epoch to go: it cannot finish in between).
        while not second_trial_trained_an_epoch():
            below |= descendants(driver.pid)
            assert driver.poll() is None and time.monotonic() < deadline, (tmp_path / "driver.log").read_text()[-3000:]
            time.sleep(0.3)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    finally:
        stop.set()
        thread.join()
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        log.close()
        stop_pids(below, grace_s=5.0)
    assert not errors, errors
    assert [len(frame) for frame in reads][-1] == 2  # the reports saw the sweep's trials as they came

    before = {t.number: t for t in trials_of(url)}
    assert [t.state for t in before.values()] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING]
    assert cli.main([*sweep_argv(url, out), "--resume"]) == 0  # on the test session's Ray
    after = trials_of(url)
    assert [t.number for t in after] == [0, 1] and all(t.state == optuna.trial.TrialState.COMPLETE for t in after)
    assert after[0].datetime_complete == before[0].datetime_complete  # kept as it was
    assert after[1].params == before[1].params
    assert [h["epoch"] for h in after[1].user_attrs[records.HISTORY]] == [1, 2]  # continued, not restarted


def test_the_password_is_in_no_byte_the_sweep_or_the_report_prints_or_writes(postgres_server, ray_local, tmp_path,
                                                                               capfd):
    url = postgres_server.create_database("secrets")
    secret = postgres_server.password
    forms = {secret, quote(secret, safe=""), secret[2:18]}  # raw, as in the URL, and its random core alone
    out, ray_storage, report = tmp_path / "sweep", tmp_path / "ray-storage", tmp_path / "report"
    code = cli.main([*sweep_argv(url, out, "--ray-storage", str(ray_storage)), "--trials", "1", "--epochs", "1",
                     "--grace-epochs", "1"])
    assert code == 0
    assert cli.main(["report", url, "--out", str(report)]) == 0
    printed = capfd.readouterr()
    assert f"trial database: postgresql://lightrecipe:***@127.0.0.1:{postgres_server.port}/secrets" in printed.out
    leaks = [("stdout/stderr", form) for form in forms if form in printed.out + printed.err]
    written = [p for folder in (out, ray_storage, report) for p in folder.rglob("*") if p.is_file()]
    assert any(p.name == "report.html" for p in written) and any(p.suffix == ".pkl" for p in written)
    for path in written:
        data = path.read_bytes()
        leaks += [(str(path), form) for form in forms if form.encode() in data]
    assert not leaks, leaks
