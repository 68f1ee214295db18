"""Sweeps on Ray clusters started with `ray start`, token authentication on, as a user meets them.

Each cluster runs in its own temp dirs and free ports, with its own HOME (so the token is written and read
in `HOME/.ray/auth_token`, never the machine's), and is stopped by PID: `ray stop` would stop every Ray
process on the machine, other tests' included.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest

from lightrecipe.search.store import records
from tests.search.helpers import ARCH, DATA, TINY_SPACE, free_port, load, processes_mentioning, stop_pids, wait_for

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent  # `ray` and `lightrecipe` of this environment
README_SECTION = "### Trying a cluster on one machine"
STUDY = records.study_name("tiny", ARCH)


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """A fresh shell's environment: no Ray settings of the test session, its own HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", RAY_USAGE_STATS_ENABLED="0", **extra)
    return env


def readme_commands() -> list[str]:
    """The command block of the README's one-machine cluster section, one command per line."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(README_SECTION):]
    lines, started = [], False
    for line in section.splitlines()[1:]:
        if line.startswith("    "):
            started = True
            lines.append(line[4:])
        elif started:
            break
    joined = "\n".join(lines).replace("\\\n", " ")  # continuation lines
    return [re.sub(r"\s+#.*$", "", command).strip() for command in joined.splitlines()]


def listens(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture
def cluster_dir():
    # Every process of a cluster names this folder on its command line; short, as Ray's socket paths must be.
    temp = Path(tempfile.mkdtemp(prefix="lr-ray-", dir="/tmp"))
    yield temp
    leftovers = processes_mentioning(str(temp))
    stop_pids(leftovers, grace_s=1.0)  # the README's nodes run until stopped: no point waiting for them
    shutil.rmtree(temp, ignore_errors=True)


def test_the_readme_two_node_cluster_runs_with_token_auth_and_refuses_a_driver_without_it(cluster_dir, tmp_path,
                                                                                         request):
    commands = readme_commands()
    assert commands[-1] == "ray stop"  # the README's last step; here the nodes are stopped by PID instead
    head_port = free_port()
    # The head's Ray client server names neither temp dir, only the head's address: stop it by that
    # (its argument ends in the port; /proc's command lines separate arguments with NUL).
    request.addfinalizer(lambda: stop_pids(processes_mentioning(f":{head_port}\0"), grace_s=1.0))
    script = "\n".join(commands[:-1])
    for old, new in [("6390", str(head_port)), ("/tmp/rh", str(cluster_dir / "h")), ("/tmp/rw", str(cluster_dir / "w")),
                     ("/tmp/two-nodes", str(tmp_path / "sweep"))] + [(str(p), str(free_port())) for p in range(52401, 52405)]:
        assert old in script, old
        script = script.replace(old, new)
    home = tmp_path / "home"
    home.mkdir()
    # A driver without the token (a fresh HOME, RAY_AUTH_MODE unset) tries the head while the README's sweep
    # runs: Ray retries a refused token for about 20 s before it gives up, time this test need not add.
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    stranger_argv = [sys.executable, "-m", "lightrecipe.cli", "sweep", "--space", TINY_SPACE, "--arch", ARCH,
                     "--trials", "1", "--epochs", "1", "--address", f"127.0.0.1:{head_port}",
                     "--out", str(tmp_path / "refused"), *DATA]
    readme_out, readme_err = tmp_path / "readme.out", tmp_path / "readme.err"
    with open(readme_out, "w") as stdout, open(readme_err, "w") as stderr:
        readme = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=user_env(home),
                                  stdout=stdout, stderr=stderr)
    refused = None
    try:
        wait_for("the README's head node to listen", lambda: listens(head_port), timeout_s=120,
                 running=lambda: readme.poll() is None, log=readme_err)
        refused = subprocess.Popen(stranger_argv, env=user_env(stranger), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        refused_out, refused_err = refused.communicate(timeout=300)
        readme.wait(timeout=600)
    finally:
        for proc in (readme, refused):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    printed = readme_out.read_text()
    assert readme.returncode == 0, printed[-3000:] + readme_err.read_text()[-3000:]
    assert "concurrency 2" in printed  # both nodes had joined when the sweep started
    assert (home / ".ray" / "auth_token").is_file()  # the token the nodes and the sweep shared

    trials = load(tmp_path / "sweep", STUDY).trials
    assert len(trials) == 2 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    nodes = {t.user_attrs[records.NODE].rsplit("/", 1)[1] for t in trials}
    assert len(nodes) == 2, [t.user_attrs[records.NODE] for t in trials]
    # The random-init floor was measured on the cluster, on a trial's resources (one node's CPU, beside the
    # first trial, so the two trials need not overlap), and stored with the device it ran on.
    study = load(tmp_path / "sweep", STUDY)
    assert [(row["seed"], row["device"]) for row in study.user_attrs[records.FLOOR]] == [(0, "cpu")]

    # The driver without the token was told what failed, in one line.
    assert refused.returncode == 2, refused_out[-2000:] + refused_err[-2000:]
    assert "the cluster refused this driver's Ray authentication token" in refused_err
    assert refused_err.count("\n") == 1, refused_err  # Ray's ~20 retry warnings stay hidden

    # A trial of two Ray Train workers, one CPU each, runs across the two 1-CPU nodes and says so.
    wide = subprocess.run([sys.executable, "-m", "lightrecipe.cli", "sweep", "--space", TINY_SPACE, "--arch", ARCH,
                           "--trials", "1", "--epochs", "1", "--workers-per-trial", "2", "--address",
                           f"127.0.0.1:{head_port}", "--out", str(tmp_path / "wide"), *DATA],
                          env=user_env(home, RAY_AUTH_MODE="token"), capture_output=True, text=True, timeout=600)
    assert wide.returncode == 0, wide.stdout[-3000:] + wide.stderr[-3000:]
    assert "concurrency 1" in wide.stdout  # two 1-CPU workers: one trial at a time on the two nodes together
    (trial,) = load(tmp_path / "wide", STUDY).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE, trial.user_attrs.get(records.ERROR)
    workers = trial.user_attrs[records.METRICS]["worker_nodes"].split()
    assert len(workers) == 2 and len({w.rsplit("/", 1)[1] for w in workers}) == 2, workers


@contextlib.contextmanager
def single_ray_node(home: Path, temp_dir: Path, log_path: Path, *, cpus: int, gpus: int = 0):
    """A one-node Ray started with `ray start --head --block`, token authentication on, with its own HOME and
    temp dir; yields its address and the environment its drivers need, and stops it at the end."""
    home.mkdir(exist_ok=True)
    # A single node, on 127.0.0.1 only; its drivers need the same setting, or Ray sends them to the machine's
    # network address, where this node does not listen.
    env = user_env(home, RAY_AUTH_MODE="token", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    subprocess.run([str(BIN / "ray"), "get-auth-token", "--generate"], env=env, capture_output=True, check=True)
    port = free_port()
    with open(log_path, "w") as log:
        node = subprocess.Popen(
            [str(BIN / "ray"), "start", "--head", "--port", str(port), "--num-cpus", str(cpus), "--num-gpus",
             str(gpus), "--include-dashboard", "false", "--temp-dir", str(temp_dir), "--disable-usage-stats",
             "--dashboard-agent-listen-port", str(free_port()), "--runtime-env-agent-port", str(free_port()),
             "--block"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_for("the Ray node to start", lambda: "Ray runtime started" in log_path.read_text(), timeout_s=120,
                     running=lambda: node.poll() is None, log=log_path)
            yield f"127.0.0.1:{port}", env
        finally:
            node.terminate()  # `ray start --block` stops its node's processes on SIGTERM
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()


@pytest.fixture
def gpu_head(cluster_dir, tmp_path):
    """One Ray node that says it has a GPU, on a machine whose torch sees none: a worker without CUDA."""
    with single_ray_node(tmp_path / "home", cluster_dir / "g", tmp_path / "head.log", cpus=1, gpus=1) as head:
        yield head


def sweep_on(address: str, env: dict[str, str], out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lightrecipe.cli", "sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "1",
         "--epochs", "1", "--no-baseline", "--address", address, "--out", str(out), *DATA, *extra],
        env=env, capture_output=True, text=True, timeout=300,
    )


def test_a_gpu_trial_on_a_worker_without_cuda_fails_with_the_reason_and_too_big_a_trial_fits_nowhere(gpu_head, tmp_path):
    address, env = gpu_head
    too_big = sweep_on(address, env, tmp_path / "big", "--cpus-per-trial", "2")
    assert too_big.returncode == 2, too_big.stderr[-2000:]
    assert "a trial needs 1 worker(s) of 2 CPU (--workers-per-trial, --cpus-per-trial, --gpus-per-trial) but the " \
           "cluster holds 0 (nodes: 1 CPU/1 GPU)" in too_big.stderr
    # Refused before the driver measures the arch's latency (seconds per arch at ImageNet sizes), which a
    # sweep joining a cluster does once the cluster can hold a trial: the second sweep below has it.
    assert records.LATENCY not in load(tmp_path / "big", STUDY).user_attrs

    result = sweep_on(address, env, tmp_path / "gpu", "--gpus-per-trial", "1")
    # the study has its 1 trial, and it failed: no trial completed, exit 1 with the reason (issue 18)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "no trial completed" in result.stderr and "sees no CUDA device" in result.stderr
    assert load(tmp_path / "gpu", STUDY).user_attrs[records.LATENCY]
    (trial,) = load(tmp_path / "gpu", STUDY).trials
    assert trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs[records.STATE] == "failed"
    assert "--gpus-per-trial 1, but this worker sees no CUDA device" in trial.user_attrs[records.ERROR]
    assert trial.user_attrs[records.HISTORY] == []  # it never trained on the CPU instead
