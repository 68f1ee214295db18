"""`lightrecipe dashboard`: optuna-dashboard over a sweep folder, on 127.0.0.1, read by its API and in Chromium."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lightrecipe import cli
from lightrecipe.search.store import records
from lightrecipe.search.store.storage import open_storage
from lightrecipe.search.store.study import create_study

from ..reports.test_browser import FLAGS, chromium
from .helpers import free_port
from .sockets import listening

pytestmark = pytest.mark.slow
WAIT_S = 60


def sweep_folder(path: Path) -> dict[str, list[dict[int, float]]]:
    """A sweep folder's trial database with two studies and per-epoch values, as a sweep writes them (the
    sweep's own `create_study`, so the objective's name is the sweep's)."""
    path.mkdir()
    storage = open_storage(records.default_storage_url(str(path)))
    planted = {}
    for arch, values in (("mobilenetv3_small_050", [0.5, 0.6]), ("resnet18", [0.3])):
        study = create_study(storage, space="tiny", arch=arch, max_epochs=2, space_spec={}, sweep={})
        planted[study.study_name] = []
        for final in values:
            trial = study.ask()
            curve = {1: round(final - 0.2, 3), 2: final}
            for step, value in curve.items():
                trial.report(value, step=step)
            study.tell(trial, final)
            planted[study.study_name].append(curve)
    return planted


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:  # a loaded machine answers the first call slowly
        return json.loads(response.read())


def test_the_dashboard_lists_studies_and_per_epoch_values_and_renders(tmp_path):
    planted = sweep_folder(tmp_path / "sweep")
    port = free_port()
    # Output to a file, not a pipe nobody reads while the test runs: a full pipe would block the server.
    # faulthandler: if the server does not stop after Ctrl-C, SIGABRT makes it print where every thread is.
    log_path = tmp_path / "dashboard.log"
    log = log_path.open("w")
    # SIGINT ignored at start, as a shell script's background job starts: Ctrl-C must still stop the server.
    server = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "lightrecipe.cli", "dashboard",
                               str(tmp_path / "sweep"), "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    log.close()  # the server holds its own copy
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                studies = get_json(f"{base}/api/studies")["study_summaries"]
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):  # not listening yet, or still starting
                assert server.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, f"the dashboard did not answer on {base} within {WAIT_S} s"
                time.sleep(0.5)
        assert {(a, p) for a, p, _ in listening({server.pid})} == {("127.0.0.1", port)}  # loopback only
        assert sorted(s["study_name"] for s in studies) == sorted(planted)
        for study in studies:
            detail = get_json(f"{base}/api/studies/{study['study_id']}")
            curves = [{v["step"]: v["value"] for v in t["intermediate_values"]} for t in detail["trials"]]
            assert curves == planted[study["study_name"]]
            assert detail["objective_names"] == [records.DEFAULT_OBJECTIVE]  # not "Objective 0"

        page = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000",
             "--dump-dom", f"{base}/dashboard/"],
            capture_output=True, text=True, timeout=120,
        )
        for name in planted:  # the page's script fetched the studies and drew them
            assert name in page.stdout, page.stdout[-2000:] + page.stderr[-2000:]
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            code = server.wait(timeout=WAIT_S)  # a loaded machine may take a while to shut the server down
        except subprocess.TimeoutExpired:
            server.send_signal(signal.SIGABRT)
            server.wait(timeout=WAIT_S)
            pytest.fail(f"the dashboard did not stop within {WAIT_S} s of Ctrl-C; its output and threads:\n"
                        f"{log_path.read_text()[-6000:]}")
    printed = log_path.read_text()
    assert code == 0, printed[-3000:]
    assert f"http://127.0.0.1:{port}/dashboard/" in printed


def test_the_dashboard_names_a_missing_source_or_a_busy_port(tmp_path, capsys):
    assert cli.main(["dashboard", str(tmp_path / "nothing")]) == 2
    assert "does not exist; give a sweep folder" in capsys.readouterr().err
    sweep_folder(tmp_path / "sweep")
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert cli.main(["dashboard", str(tmp_path / "sweep"), "--port", str(busy.getsockname()[1])]) == 2
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
