"""tests/slow_guard.py fails a test not marked slow that starts a process, trains or asks for Ray, and lets
the same test pass once marked; each case runs a small pytest session in this process (pytester)."""

from __future__ import annotations

import pytest

# Imported here, outside the inner sessions: pytester drops the modules a run imported first, and torch (which
# run_files imports) cannot be loaded a second time into one process.
from lightrecipe.trainers.run import run_files  # noqa: F401

HEADER = """
import os, subprocess, sys
import pytest
from lightrecipe.trainers.run import run_files

@pytest.fixture
def ray_local():
    yield "never started: the guard fails the test before this runs"
"""

CASES = {
    "starts a process": ("subprocess.run([sys.executable, '-c', 'pass'], check=True)",
                         "started a process (subprocess.Popen: "),
    "trains": ("tmp = tmp_path / 'checkpoint.pt.tmp'; tmp.write_bytes(b'');"
               " os.replace(tmp, tmp_path / run_files.CHECKPOINT_FILE)",
               "trained a model (wrote the training checkpoint "),
}


def _session(pytester, body: str, *, slow: bool, fixture: str = "tmp_path"):
    mark = "@pytest.mark.slow\n" if slow else ""
    pytester.makeini("[pytest]\nmarkers =\n    slow: end-to-end\n")
    pytester.makepyfile(test_case=HEADER + f"\n{mark}def test_case({fixture}):\n    {body}\n")
    return pytester.runpytest_inprocess("-p", "tests.slow_guard", "-p", "no:cacheprovider")


@pytest.mark.parametrize("case", list(CASES))
def test_a_fast_test_that_does_slow_work_fails_naming_it(pytester, case):
    body, says = CASES[case]
    result = _session(pytester, body, slow=False)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*test_case is not marked slow but, during call, {says}*"])


@pytest.mark.parametrize("case", list(CASES))
def test_the_same_test_marked_slow_passes(pytester, case):
    _session(pytester, CASES[case][0], slow=True).assert_outcomes(passed=1)


def test_asking_for_ray_without_the_mark_fails_before_ray_starts(pytester):
    result = _session(pytester, "pass", slow=False, fixture="ray_local")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*not marked slow but uses the fixture 'ray_local', which starts Ray*"])
    _session(pytester, "pass", slow=True, fixture="ray_local").assert_outcomes(passed=1)


def test_a_fast_test_doing_fast_work_passes(pytester):
    _session(pytester, "assert sum(range(4)) == 6", slow=False).assert_outcomes(passed=1)


SHARED_SERVER = """
import subprocess, sys
import pytest

@pytest.fixture(scope="{scope}")
def server():
    yield
    subprocess.run([sys.executable, "-c", "pass"], check=True)  # stopping a shared server starts a process

def test_first(server):
    pass

def test_last(server):
    pass
"""


@pytest.mark.parametrize("scope", ["session", "module"])
def test_a_shared_fixture_stopping_after_the_last_test_is_not_blamed_on_it(pytester, scope):
    pytester.makeini("[pytest]\nmarkers =\n    slow: end-to-end\n")
    pytester.makepyfile(test_case=SHARED_SERVER.format(scope=scope))
    pytester.runpytest_inprocess("-p", "tests.slow_guard", "-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_a_test_starting_a_process_in_its_own_teardown_is_still_caught(pytester):
    pytester.makeini("[pytest]\nmarkers =\n    slow: end-to-end\n")
    pytester.makepyfile(test_case=SHARED_SERVER.format(scope="function"))
    result = pytester.runpytest_inprocess("-p", "tests.slow_guard", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*test_first is not marked slow but, during teardown, started a process*"])
