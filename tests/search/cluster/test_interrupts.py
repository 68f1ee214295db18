"""Real signals to a real `lightrecipe sweep`: Ctrl-C and SIGTERM stop the whole sweep, resumably.

Resuming a RUNNING trial from its checkpoint to the end is test_sweep.py's kill -9 test; here the printed
`--resume` command is run as printed and picks the interrupted trial up again.

The driver runs as a user runs it: its own process group (a terminal's Ctrl-C reaches the whole group), its
own private Ray, and RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER unset, so this run also shows that the private Ray
listens on 127.0.0.1 only and that Ray's token notice stays off the terminal.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from lightrecipe.reports.tables import load_trials
from lightrecipe.search.store import records
from tests.search.helpers import ARCH, DATA, TINY_SPACE, descendants, load, stop_pids
from tests.search.sockets import is_loopback, listening

pytestmark = pytest.mark.slow
SECOND_ARCH = "mobilenetv3_small_075"
WAIT_S = 240


def argv(out: Path) -> list[str]:
    return ["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--arch", SECOND_ARCH, "--trials", "1", "--epochs", "2",
            "--grace-epochs", "2", "--concurrency", "1", "--out", str(out), *DATA]


def user_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    env.pop("RAY_AUTH_MODE", None)  # as a fresh shell has it: the sweep's Ray picks its own mode
    return env


class Driver:
    """`lightrecipe sweep` in its own process group, output to a file; the Ray processes below it are tracked."""

    def __init__(self, args: list[str], log: Path):
        self.log_path = log
        self.log = open(log, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "lightrecipe.cli", *args], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=user_env(), start_new_session=True)
        self.below: set[int] = set()
        self.sockets: set[tuple[str, int, int]] = set()

    def output(self) -> str:
        return self.log_path.read_text()

    def watch(self) -> None:
        """One look at the process tree: its processes and the sockets they listen on."""
        self.below |= descendants(self.proc.pid)
        self.sockets |= listening(self.below | {self.proc.pid})

    def wait_for(self, what: str, condition) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            assert self.proc.poll() is None, f"the sweep ended before {what}:\n{self.output()[-3000:]}"
            assert time.monotonic() < deadline, f"no {what} within {WAIT_S} s:\n{self.output()[-3000:]}"
            self.watch()
            time.sleep(0.5)

    def finish(self) -> int:
        try:
            code = self.proc.wait(timeout=WAIT_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
            stop_pids(self.below, grace_s=10.0)  # Ray's processes end with the driver; stop any that linger
        return code


def running_with_an_epoch(out: Path) -> bool:
    try:  # read-only, as a report reads
        frame = load_trials(str(out))
    except Exception:  # noqa: BLE001 - the database or the study is not there yet
        return False
    return bool(len(frame)) and bool(((frame["epochs"] >= 1) & (frame["optuna_state"] == "RUNNING")).any())


def test_ctrl_c_then_sigterm_stop_the_whole_sweep_resumably(tmp_path):
    out = tmp_path / "sweep"
    first = Driver(argv(out), tmp_path / "first.log")
    try:
        first.wait_for("running trial with a recorded epoch", lambda: running_with_an_epoch(out))
        first.watch()
        os.killpg(first.proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole process group
    finally:
        code = first.finish()
    printed = first.output()
    assert code == 130, printed[-3000:]
    assert "interrupted by SIGINT" in printed and f"lightrecipe sweep --space {TINY_SPACE}" in printed
    resume_line = next(line.strip() for line in printed.splitlines() if line.strip().startswith("lightrecipe sweep"))
    assert resume_line.endswith("--resume") and f"--arch {SECOND_ARCH}" in resume_line
    assert f"[tiny/{SECOND_ARCH}] 1 trial to run" not in printed  # no further arch started
    assert "Token authentication" not in printed  # Ray's notice stays off the terminal
    # The private Ray listened, and only on loopback, although the environment did not ask for it.
    assert len({pid for _, _, pid in first.sockets}) >= 2, first.sockets  # at least GCS and raylet seen
    assert all(is_loopback(address) for address, _, _ in first.sockets), sorted(first.sockets)

    (interrupted,) = load(out, records.study_name("tiny", ARCH)).trials
    assert interrupted.state == optuna.trial.TrialState.RUNNING  # resumable, neither failed nor pruned
    assert interrupted.user_attrs[records.HISTORY][0]["epoch"] == 1
    assert not _started(out, SECOND_ARCH)

    # The printed command is the one to run: it continues the interrupted trial.
    second = Driver(shlex.split(resume_line)[1:], tmp_path / "second.log")
    try:
        second.wait_for("resumed study", lambda: "re-running 1 interrupted" in second.output())
        second.proc.send_signal(signal.SIGTERM)  # `kill PID`, or a batch system ending the job
    finally:
        code = second.finish()
    assert code == 143, second.output()[-3000:]
    assert "interrupted by SIGTERM" in second.output() and resume_line in second.output()
    assert not _started(out, SECOND_ARCH)
    (still,) = load(out, records.study_name("tiny", ARCH)).trials
    assert still.state == optuna.trial.TrialState.RUNNING and still.params == interrupted.params


def _started(out: Path, arch: str) -> bool:
    name = records.study_name("tiny", arch)
    try:
        study = load(out, name)
    except KeyError:
        return False
    return any(t.state != optuna.trial.TrialState.WAITING for t in study.trials)
