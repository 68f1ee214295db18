"""One driver per study, held in the trial database, and how the CLI reports a holder.

Each lease test runs on a real SQLite file (the SQL table) and on a real Optuna journal file (lease studies);
every DriverLease opens its own storage object on the database, as another driver process would.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import optuna
import pytest

from lightrecipe import cli
from lightrecipe.errors import UserError
from lightrecipe.search.store import lease as lease_mod
from lightrecipe.search.store import records
from lightrecipe.search.store.lease import DriverLease, hold_studies
from tests.search.helpers import ARCH, DATA, TINY_SPACE, sqlite_storage

STUDY = records.study_name("tiny", ARCH)


@pytest.fixture(params=["sqlite", "journal"])
def open_db(request, tmp_path):
    """A function that opens the test's database again: each call is a new storage object on it."""
    if request.param == "sqlite":
        return lambda: sqlite_storage(tmp_path)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return lambda: JournalStorage(JournalFileBackend(str(tmp_path / "trials.log")))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_driver_is_refused_with_the_holders_host_and_pid(open_db):
    first = DriverLease(open_db(), host="node-a", pid=4242)
    first.acquire(STUDY, takeover=True)
    second = DriverLease(open_db())  # its own connection, as another process would have
    with pytest.raises(UserError, match=r"being run by another driver: host node-a, PID 4242 \(last heartbeat \d+ s"):
        second.acquire(STUDY, takeover=True)  # a live holder is never taken over, --resume or not
    first.release()
    second.acquire(STUDY, takeover=False)  # free again once released
    assert second.holder(STUDY).pid == second.pid


def test_the_sweep_command_exits_2_naming_the_driver_that_holds_the_study(tmp_path, capsys):
    out = tmp_path / "sw"
    holder = DriverLease(sqlite_storage(out), host="gpu-node-7", pid=31337)
    holder.acquire(STUDY, takeover=False)
    argv = ["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "2", "--out", str(out), *DATA]
    for extra in ([], ["--resume"]):
        assert cli.main([*argv, *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "host gpu-node-7, PID 31337" in err, err
    assert optuna.get_all_study_summaries(sqlite_storage(out), include_best_trial=False) == []  # nothing started


def test_a_stale_holder_is_taken_over_only_with_resume_and_learns_it_lost(open_db):
    now = [1000.0]
    old = DriverLease(open_db(), host="node-b", pid=77, clock=lambda: now[0])
    old.acquire(STUDY, takeover=False)
    late = lease_mod.STALE_AFTER_S + 1
    newer = DriverLease(open_db(), host="node-c", pid=88, clock=lambda: now[0] + late)
    with pytest.raises(UserError, match="stopped without releasing it: host node-b, PID 77 .*pass --resume"):
        newer.acquire(STUDY, takeover=False)
    newer.acquire(STUDY, takeover=True)
    assert newer.holder(STUDY).host == "node-c"
    assert old.beat() == [STUDY]  # the old driver, back from a network partition, finds it has lost
    assert newer.beat() == []


@pytest.mark.slow  # dead_pid() starts (and reaps) a process to get a PID that surely names none
def test_a_holder_on_this_host_whose_process_is_gone_is_stale_at_once(open_db):
    gone = DriverLease(open_db(), host=socket.gethostname(), pid=dead_pid())
    gone.acquire(STUDY, takeover=False)  # a driver killed with -9 a moment ago: fresh heartbeat, no process
    DriverLease(open_db()).acquire(STUDY, takeover=True)


def test_drivers_racing_for_a_study_get_it_exactly_once(open_db):
    open_db()  # tables exist before the race, as after any earlier sweep
    winners, refused, start = [], [], threading.Barrier(4)

    def race(i):
        lease = DriverLease(open_db(), host=f"node-{i}", pid=1000 + i)
        start.wait()
        try:
            lease.acquire(STUDY, takeover=True)
            winners.append(i)
        except UserError:
            refused.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1 and len(refused) == 3, (winners, refused)


def test_hold_studies_beats_while_held_and_releases_on_exit(open_db):
    storage = open_db()
    names = [STUDY, records.study_name("tiny", "resnet18")]
    with hold_studies(storage, names, takeover=lambda name: False) as held:
        assert sorted(held.held) == sorted(names)
        first = held.holder(STUDY).heartbeat
        assert held.beat() == [] and held.holder(STUDY).heartbeat >= first
    assert DriverLease(storage).holder(STUDY) is None
    with pytest.raises(UserError):  # a refusal on the second study gives the first one back
        other = DriverLease(storage, host="node-z", pid=5)
        other.acquire(names[1], takeover=False)
        with hold_studies(storage, names, takeover=lambda name: False):
            pass
    assert DriverLease(storage).holder(STUDY) is None
