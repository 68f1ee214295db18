"""Each way Tune stops a `--workers-per-trial 2` trial, on a real sweep: ASHA, Ctrl-C and `--time-budget`.

Whatever stops it, the trial's two Ray Train workers leave train() together and end (none left holding the
CPUs), Ray Train does not start them again, and the trial's record is what that cause should leave: PRUNED for
ASHA, resumable (RUNNING, continued from its last checkpoint) for a signal or the time budget.

The ASHA case is made certain with a planted study: two earlier trials that reached val kNN 1.0 at every rung.
A new trial below 1.0 is then under the rung's cutoff, and ASHA stops it at its first rung whatever the sampler
draws. The workers learn of the stop through the driver's stop queue, which rank 0 reads every few steps and at
each epoch's end; a run that ignored it would train the whole schedule.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import tempfile
from pathlib import Path

import optuna
import pytest

from lightrecipe import cli
from lightrecipe.search.store import records
from lightrecipe.search.store.study import create_study
from lightrecipe.search.tune.data_parallel import WORKER_NODES
from lightrecipe.spaces.loader import load_space
from lightrecipe.trainers.run.run_files import read_history
from tests.search.cluster.test_cluster import single_ray_node
from tests.search.cluster.test_interrupts import Driver, running_with_an_epoch
from tests.search.helpers import (
    ARCH,
    DATA,
    TINY_SPACE,
    descendants,
    load,
    processes_mentioning,
    stop_pids,
    wait_for,
)
from tests.search.tune.test_workers_per_trial import TRAIN_WORKER, train_workers

pytestmark = pytest.mark.slow  # each about a minute on 2 idle cores: Ray Train starts its workers per trial
STUDY = records.study_name("tiny", ARCH)
EPOCHS = 5  # ASHA's rungs at epochs 1 and 3 with --grace-epochs 1; a stop not heard trains all 5
WORKERS = ["--workers-per-trial", "2", "--cpus-per-trial", "1", "--concurrency", "1"]
END_S = 60.0  # a stopped trial's workers end within this (Ray tears the group down; nothing waits on a clock)


def epochs_trained(trial: optuna.trial.FrozenTrial) -> list[int]:
    """The epochs the trial's workers trained, from its run folder (what rank 0 wrote, every attempt)."""
    return [int(row["epoch"]) for row in read_history(trial.user_attrs[records.RUN_DIR])]


def plant_a_study_that_reached_the_top(out: Path) -> None:
    """The sweep's study with two finished trials at val kNN 1.0 at every epoch (and so at every rung)."""
    storage = optuna.storages.RDBStorage(records.default_storage_url(str(out)))
    study = create_study(storage, space="tiny", arch=ARCH, max_epochs=EPOCHS, space_spec=load_space(TINY_SPACE).to_dict(), sweep={})
    temperature = optuna.distributions.FloatDistribution(0.05, 0.5, log=True)
    for value in (0.1, 0.3):
        study.add_trial(optuna.trial.create_trial(
            params={"temperature": value}, distributions={"temperature": temperature}, value=1.0,
            intermediate_values={epoch: 1.0 for epoch in range(1, EPOCHS + 1)},
            user_attrs={records.STATE: records.COMPLETE}))


def test_asha_stops_the_workers_of_each_pruned_trial_and_frees_them_for_the_next(ray_local, tmp_path):
    out = tmp_path / "sweep"
    out.mkdir()
    plant_a_study_that_reached_the_top(out)
    code = cli.main(["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "4", "--epochs", str(EPOCHS),
                     "--grace-epochs", "1", "--out", str(out), "--resume", *WORKERS, *DATA])
    assert code == 0
    planted_a, planted_b, *ran = load(out, STUDY).trials
    # Two trials of two workers each, one after the other on the 2 CPUs: the second could only start once the
    # first's workers had let go of them.
    assert len(ran) == 2 and all(t.state == optuna.trial.TrialState.PRUNED for t in ran), [t.state for t in ran]
    for trial in ran:
        assert trial.user_attrs[records.STATE] == records.PRUNED
        assert sorted(trial.intermediate_values) == [1]  # judged at the first rung, and nothing after it
        trained = epochs_trained(trial)
        assert trained[:1] == [1] and len(trained) == len(set(trained)), trained  # no restart of the group
        assert max(trained) < EPOCHS, trained  # the stop reached the workers: not the whole schedule
    assert not wait_until_gone(train_workers())


def test_ctrl_c_stops_the_workers_and_resume_continues_from_the_last_epoch(ray_local, tmp_path):
    out = tmp_path / "sweep"
    argv = ["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "1", "--epochs", "3", "--grace-epochs", "3",
            "--out", str(out), *WORKERS, *DATA]
    first = Driver(argv, tmp_path / "first.log")
    workers: set[int] = set()
    try:
        first.wait_for("running trial with a recorded epoch", lambda: running_with_an_epoch(out))
        first.watch()
        workers = first.below & processes_mentioning(TRAIN_WORKER)
        os.killpg(first.proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole process group
        code = first.proc.wait(timeout=240)
        assert code == 130, first.output()[-3000:]
        assert len(workers) == 2, "the trial's two Ray Train workers were not seen"
        assert not wait_until_gone(workers), "Ray Train workers outlived the interrupted sweep"
    finally:
        first.finish()
    (interrupted,) = load(out, STUDY).trials
    assert interrupted.state == optuna.trial.TrialState.RUNNING  # resumable, neither failed nor pruned
    before = {row["epoch"]: row for row in read_history(interrupted.user_attrs[records.RUN_DIR])}
    assert "1" in before

    printed = first.output()
    resume_line = next(line.strip() for line in printed.splitlines() if line.strip().startswith("lightrecipe sweep"))
    assert "--workers-per-trial 2" in resume_line and resume_line.endswith("--resume")
    assert cli.main(shlex.split(resume_line)[1:]) == 0
    (resumed,) = load(out, STUDY).trials
    assert resumed.state == optuna.trial.TrialState.COMPLETE, resumed.user_attrs.get(records.ERROR)
    after = read_history(resumed.user_attrs[records.RUN_DIR])
    assert [row["epoch"] for row in after] == ["1", "2", "3"]
    for row in after:  # the epochs finished before Ctrl-C were kept, not trained again (their own timings)
        if row["epoch"] in before:
            assert row == before[row["epoch"]]
    assert len(resumed.user_attrs[records.METRICS][WORKER_NODES].split()) == 2


@pytest.fixture
def another_ray_on_this_machine(tmp_path):
    """A second Ray instance on the machine, as when two users' sweeps (or a test and a sweep) share it. Ray
    Train's own placement-group cleaner asks Ray's state API, which then cannot tell which instance is its."""
    temp = Path(tempfile.mkdtemp(prefix="lr-other-", dir="/tmp"))  # short: Ray's socket paths must be
    try:
        with single_ray_node(tmp_path / "home", temp, tmp_path / "other-ray.log", cpus=0):
            yield
    finally:
        stop_pids(processes_mentioning(str(temp)), grace_s=1.0)
        shutil.rmtree(temp, ignore_errors=True)


def test_a_time_budget_stops_the_workers_frees_their_cpus_and_resume_runs_exactly_the_trials(
        ray_local, another_ray_on_this_machine, tmp_path, capsys):
    import ray

    out = tmp_path / "sweep"
    # Two trials of 5 epochs: longer than the budget on any machine, so it ends the sweep with work left.
    # Where it falls (a trial's workers training, starting, or between trials) is timing: nothing below asks.
    argv = ["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "2", "--epochs", "5", "--grace-epochs", "5",
            "--out", str(out), *WORKERS, *DATA]
    ours = descendants(os.getpid())
    assert cli.main([*argv, "--time-budget", "25"]) == 3
    assert "unfinished: run the same command with --resume" in capsys.readouterr().out
    assert not wait_until_gone(train_workers() - ours), "Ray Train workers outlived the stopped sweep"
    # Nothing of the stopped trial holds the CPUs: the resume below would otherwise wait for them forever.
    wait_for("the session's CPUs free again", lambda: ray.available_resources().get("CPU", 0) ==
             ray.cluster_resources().get("CPU"), timeout_s=END_S)
    finished = [t for t in load(out, STUDY).trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) < 2

    assert cli.main([*argv, "--resume"]) == 0
    trials = load(out, STUDY).trials
    assert [t.number for t in trials] == [0, 1]  # exactly --trials: the stopped ones ran again, none twice
    for trial in trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE, trial.user_attrs.get(records.ERROR)
        assert [int(row["epoch"]) for row in read_history(trial.user_attrs[records.RUN_DIR])] == [1, 2, 3, 4, 5]
        assert len(trial.user_attrs[records.METRICS][WORKER_NODES].split()) == 2


def wait_until_gone(pids: set[int]) -> set[int]:
    """The processes of `pids` still alive after END_S (stopped then, so the next test starts clean)."""
    return stop_pids(pids, grace_s=END_S)
