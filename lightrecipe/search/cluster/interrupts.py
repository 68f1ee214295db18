"""Ctrl-C (SIGINT) and SIGTERM stop the whole sweep, and the exit codes a requeue script can rely on.

Tune's own SIGINT handler ends one `fit()` quietly and lets the next arch start, with exit code 0. Instead,
while a sweep runs, the first SIGINT or SIGTERM is only recorded: Tune stops every trial through
`SignalStopper` (they stay RUNNING in the trial database, so `--resume` runs them again from their
checkpoints), no further arch starts, and `run_sweep` raises `Interrupted`. A second signal stops at once.

Exit codes of `lightrecipe sweep`:
    0    every study has its --trials trials finished, at least one of them complete
    1    anything else (a crash, trials left unfinished for another reason, a study in which no trial completed:
         commands.no_trial_completed names its most common failure)
    2    a user error: a bad flag, file, value, address or database (cli.py)
    3    stopped early by --time-budget; `--resume` continues
    130  interrupted by SIGINT (128 + 2), 143 by SIGTERM (128 + 15); `--resume` continues
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Iterator

from ray import tune

EXIT_DONE = 0
EXIT_OTHER = 1
EXIT_TIME_BUDGET = 3
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: list[int] = []  # signals seen while `catch_signals` is active; module state, as a copy of the
#                            stopper (Tune may copy its run config) must see the same signal as the original


class Interrupted(Exception):
    """The sweep stopped on a signal; `exit_code` is the shell's 128 + signal number."""

    def __init__(self, signum: int):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


def received() -> int | None:
    """The first signal caught by `catch_signals`, or None."""
    return _received[0] if _received else None


class SignalStopper(tune.Stopper):
    """Stops the whole Tune run once a signal was received."""

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return bool(_received)


def _on_signal(signum: int, frame: object) -> None:
    if _received:  # the second signal: the user means now
        raise KeyboardInterrupt
    _received.append(signum)


@contextlib.contextmanager
def catch_signals() -> Iterator[None]:
    """Inside the block, SIGINT and SIGTERM are recorded (see the module docstring); handlers come back after.
    Enter it after `ray.init()`: Ray installs a SIGTERM handler of its own that aborts the process.

    Outside the main thread (a notebook's worker thread) signals cannot be caught; Python's defaults stay.
    """
    _received.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Tune must not swallow the signal meant for the sweep
    before = {sig: signal.signal(sig, _on_signal) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
