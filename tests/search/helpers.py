"""Shared pieces of the end-to-end sweep tests: tiny data settings, database reads, process bookkeeping."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import optuna

from lightrecipe.search.store import records

ARCH = "mobilenetv3_small_050"  # the smallest MobileNet-V3 in timm: a CPU epoch on digits takes seconds
TINY_SPACE = str(Path(__file__).with_name("tiny.yaml"))
# Every recipe of a test trial, the ResNet-50 baseline included: digits at 32 px, small batch and queue.
SIZES = [
    "--set", "image_size=32", "--set", "batch_size=64", "--set", "queue_size=256",
    "--set", "data_fraction=0.25",  # a quarter of the train split: 4 steps an epoch
    # One linear-probe fit instead of the grid of L2 strengths, at the grid's strongest: it converges in a
    # third of the iterations of the weakest (about 1 s instead of 3 per trial); the sweep tests test the sweep.
    "--set", "probe_weight_decay=0.01",
]
DATA = ["--set", "dataset=digits", *SIZES]


def sqlite_storage(folder: Path) -> optuna.storages.RDBStorage:
    """The trial database of a sweep folder, opened as a second process would (its own connections; a
    writer's transaction is waited for, as the sweep's own storage does)."""
    folder.mkdir(parents=True, exist_ok=True)
    return optuna.storages.RDBStorage(
        records.default_storage_url(str(folder)), engine_kwargs={"connect_args": {"timeout": 60}}
    )


def load(out: Path, name: str) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=records.default_storage_url(str(out)))


def all_attrs_present(trial: optuna.trial.FrozenTrial) -> list[str]:
    """Names of records.py trial attributes missing from a finished trial."""
    keys = [records.STATE, records.ERROR, records.BASELINE, records.RECIPE, records.HISTORY, records.METRICS,
            records.PARAMS_COUNT, records.WALL_SECONDS, records.DEVICE_SECONDS, records.NODE, records.RUN_DIR]
    return [k for k in keys if k not in trial.user_attrs]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """All processes below `pid` (children, grandchildren, ...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                out.add(pid)
        except OSError:
            pass
    return out


def stop_pids(pids: set[int], *, grace_s: float = 15.0) -> set[int]:
    """Wait for processes to exit on their own, then SIGTERM and SIGKILL those left; returns those found
    still running after `grace_s` (before they were stopped)."""
    deadline = time.monotonic() + grace_s
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.5)
    lingering = alive(pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in alive(pids):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(1.0)
    return lingering


def processes_mentioning(text: str) -> set[int]:
    """PIDs whose command line contains `text` (a temp dir only this test uses)."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    out.add(int(entry))
        except OSError:
            pass
    return alive(out)


def wait_for(what: str, check, *, timeout_s: float, poll_s: float = 0.3, running=None, log: Path | None = None):
    """Poll `check()` until it returns something truthy and return that. Fails naming `what` when
    `timeout_s` passes or `running()` turns False (the process it waits on ended), with the log's tail."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        ended = running is not None and not running()
        if ended or time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
            why = "the process it waits on ended" if ended else f"not within {timeout_s:.0f} s"
            raise AssertionError(f"waited for {what}: {why}\n{tail}")
        time.sleep(poll_s)


def trial_rows(out: Path):
    """The sweep's trials as a report reads them (a snapshot, never a write); None before the database
    and its study exist."""
    from lightrecipe.reports.tables import load_trials

    try:
        frame = load_trials(str(out))
    except Exception:  # noqa: BLE001 - the database or the study is not there yet
        return None
    return frame if len(frame) else None


def worker_pids(root: int) -> set[int]:
    """Ray Tune trial workers (`ray::ImplicitFunc`) among the processes below `root`."""
    out = set()
    for pid in descendants(root):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"ImplicitFunc" in f.read():
                    out.add(pid)
        except OSError:
            pass
    return alive(out)
