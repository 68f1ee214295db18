"""Keeps `make test-fast` fast and honest: a test not marked `slow` fails when it starts what makes a test slow.

What counts, checked without timing anything (a loaded machine cannot make it flaky):
- starting a process: Ray's daemons, a browser, the CLI in a subprocess, DataLoader workers (Python's audit
  events `subprocess.Popen`, `os.fork`, `os.exec`, `os.posix_spawn`, `os.spawn`, `os.system`), except the
  system probes in `PROBES`;
- training: writing a run's training checkpoint, which `train()` does at the end of every epoch (the
  `os.rename` of `lightrecipe.trainers.run.run_files.CHECKPOINT_FILE` into place);
- asking for a fixture that starts Ray (`SLOW_FIXTURES`), even when an earlier slow test already did.

Such a test is reported as failed, with what it started, in the phase (setup, call, teardown) that started
it. A test marked slow may do all of this; it still runs in `make test` and `make stress`.
Loaded by tests/conftest.py (`pytest_plugins`); the audit hook is process-wide and installed once.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import pytest

SLOW_FIXTURES = ("ray_local",)  # tests/conftest.py: one local Ray for the session
_PROCESS_EVENTS = ("subprocess.Popen", "os.fork", "os.exec", "os.posix_spawn", "os.spawn", "os.system")
# Programs a library runs once to probe the system while it loads (ctypes.util.find_library runs
# `ldconfig -p`, else gcc/cc/ld, when torch is first imported; `platform` runs `uname -p`): quick, and no
# test's doing.
PROBES = ("ldconfig", "gcc", "cc", "ld", "uname")
FIX = "mark it @pytest.mark.slow (it still runs in `make test`; `make test-fast` leaves it out)"


@dataclass
class _Running:
    nodeid: str
    slow: bool
    seen: list[str] = field(default_factory=list)


# Tests in progress, innermost last: a test that runs pytest in-process (pytester) nests another session's.
_running: list[_Running] = []


def _audit(event: str, args: tuple) -> None:
    if not _running or _running[-1].slow:
        return
    if event in _PROCESS_EVENTS:
        command = _command(event, args)
        if os.path.basename(command.split(" ", 1)[0]) not in PROBES:
            _running[-1].seen.append(f"started a process ({event}: {command})")
    elif event == "os.rename" and _is_checkpoint(args[1]):
        _running[-1].seen.append(f"trained a model (wrote the training checkpoint {os.fsdecode(args[1])})")


def _command(event: str, args: tuple) -> str:
    if event == "subprocess.Popen":
        argv = args[1]
        return " ".join(map(os.fsdecode, argv)) if isinstance(argv, (list, tuple)) else os.fsdecode(argv)
    if event in ("os.exec", "os.posix_spawn"):
        return " ".join(map(os.fsdecode, args[1]))
    if event == "os.spawn":
        return " ".join(map(os.fsdecode, args[2]))
    return os.fsdecode(args[0]) if args else "fork"


def _is_checkpoint(path) -> bool:
    run_files = sys.modules.get("lightrecipe.trainers.run.run_files")  # not imported: nothing trained
    if run_files is None or not isinstance(path, (str, bytes, os.PathLike)):
        return False
    return os.path.basename(os.fsdecode(path)) == run_files.CHECKPOINT_FILE


if not getattr(sys, "_lightrecipe_slow_guard", False):  # once per process, even if this module is reloaded
    sys.addaudithook(_audit)
    sys._lightrecipe_slow_guard = True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _running.append(_Running(item.nodeid, item.get_closest_marker("slow") is not None))
    try:
        yield
    finally:
        _running.pop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    # After the last test of a module (or of the session) pytest also finalises the module- and session-scoped
    # fixtures (stopping PostgreSQL, Ray); that work belongs to the fixture, not to the test that happened to be last.
    running = _running[-1] if _running and _running[-1].nodeid == item.nodeid else None
    shared_teardown = nextitem is None or nextitem.module is not item.module
    if running is None or not shared_teardown or running.slow:
        yield
        return
    running.slow = True
    try:
        yield
    finally:
        running.slow = False


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if item.get_closest_marker("slow") is None:
        used = [name for name in SLOW_FIXTURES if name in item.fixturenames]
        if used:
            pytest.fail(f"{item.nodeid} is not marked slow but uses the fixture {used[0]!r}, which starts Ray; "
                        f"{FIX}", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    running = _running[-1] if _running and _running[-1].nodeid == item.nodeid else None
    if running is None or not running.seen:
        return
    seen, running.seen = running.seen, []
    if report.passed:  # a test failing for its own reason keeps that reason
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} is not marked slow but, during {call.when}, "
                           + "; ".join(dict.fromkeys(seen)) + f"; {FIX}")
