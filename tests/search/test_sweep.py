"""End-to-end sweeps: real Ray, a real SQLite trial database, real (tiny) trainings on digits.

In-process sweeps share the session's Ray instance (`ray_local`). The kill -9 test runs the CLI as a
subprocess with its own Ray, as a user would. Clusters started with `ray start` are test_cluster.py's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest

from lightrecipe import cli
from lightrecipe.reports.tables import load_trials
from lightrecipe.search import records
from lightrecipe.spaces import load_space

from .helpers import (
    ARCH,
    DATA,
    SIZES,
    TINY_SPACE,
    all_attrs_present,
    descendants,
    load,
    stop_pids,
)

pytestmark = pytest.mark.slow
STUDY = records.study_name("tiny", ARCH)
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


def test_a_two_trial_sweep_records_every_attribute_and_the_baseline(ray_local, tmp_path, capsys):
    out = tmp_path / "sweep"
    reads, errors, stop = [], [], threading.Event()

    def reader():  # a report reading the database while the sweep writes it
        while not stop.is_set():
            if (out / records.DB_FILENAME).exists():
                try:
                    reads.append(len(load_trials(str(out))))
                except Exception as exc:  # noqa: BLE001 - any failure to read is what this test catches
                    if reads:  # before the first good read the sweep may still be creating the tables
                        errors.append(exc)
            time.sleep(0.3)

    optuna.storages.RDBStorage("sqlite://")  # import SQLAlchemy here: two threads importing it at once break it
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        code = cli.main(["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "2", "--epochs", "2",
                         "--grace-epochs", "2", "--out", str(out), *DATA])
    finally:
        stop.set()
        thread.join()
    assert code == 0
    assert not errors and reads, (errors, len(reads))
    printed = capsys.readouterr().out
    assert "tiny/mobilenetv3_small_050: 2/2 trials finished (2 complete)" in printed
    assert "trial  state" in printed

    study = load(out, STUDY)
    assert study.user_attrs[records.MAX_EPOCHS] == 2 and study.user_attrs[records.ARCH] == ARCH
    assert study.user_attrs[records.SPACE_SPEC] == load_space(TINY_SPACE).to_dict()
    trials = study.trials
    assert [t.number for t in trials] == [0, 1]
    overrides = {"dataset": "digits", "image_size": 32, "batch_size": 64, "queue_size": 256, "data_fraction": 0.5,
                 "probe_weight_decay": 0.0001, "arch": ARCH, "epochs": 2}
    baseline = trials[0]
    assert baseline.user_attrs[records.BASELINE] is True
    assert baseline.user_attrs[records.RECIPE] == load_space(TINY_SPACE).baseline(overrides).to_dict()
    assert baseline.params == {"temperature": 0.2}
    assert trials[1].user_attrs[records.BASELINE] is False
    assert trials[1].user_attrs[records.RECIPE]["temperature"] == trials[1].params["temperature"]
    for t in trials:
        assert all_attrs_present(t) == []
        assert t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs[records.STATE] == "complete"
        attrs = t.user_attrs
        assert attrs[records.ERROR] == ""
        assert [h["epoch"] for h in attrs[records.HISTORY]] == [1, 2]
        assert sorted(t.intermediate_values) == [1, 2]
        assert t.value == attrs[records.METRICS]["knn_top1"] == attrs[records.HISTORY][-1]["knn_top1"]
        for key in ("linear_top1", "test_knn_top1", "test_linear_top1", "params"):
            assert key in attrs[records.METRICS]
        assert "config/recipe/arch" not in attrs[records.METRICS]  # Tune's own keys stay out
        assert attrs[records.PARAMS_COUNT] == attrs[records.METRICS]["params"] > 100_000
        assert attrs[records.WALL_SECONDS] > 0 and attrs[records.DEVICE_SECONDS] == attrs[records.WALL_SECONDS]
        assert attrs[records.NODE].count("/") == 2
        run_dir = Path(attrs[records.RUN_DIR])
        assert run_dir.is_absolute() and (run_dir / "checkpoint.pt").exists() and (run_dir / "metrics.json").exists()


def test_a_killed_trial_worker_is_restarted_and_its_trial_completes(ray_local, tmp_path):
    out = tmp_path / "sweep"
    killed: list[int] = []

    def kill_worker_after_first_epoch():
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                frame = load_trials(str(out))
                if len(frame) and ((frame["epochs"] >= 1) & (frame["optuna_state"] == "RUNNING")).any():
                    break
            except Exception:  # noqa: BLE001 - the database is not there yet
                pass
            time.sleep(0.3)
        for pid in descendants(os.getpid()):  # the session's Ray runs below this process
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"ImplicitFunc" in f.read():  # the trial's worker: ray::ImplicitFunc.train
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
            except OSError:
                pass

    optuna.storages.RDBStorage("sqlite://")  # import SQLAlchemy before a second thread does
    thread = threading.Thread(target=kill_worker_after_first_epoch, daemon=True)
    thread.start()
    code = cli.main(["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "1", "--epochs", "2",
                     "--grace-epochs", "2", "--out", str(out), *DATA])
    thread.join()
    assert code == 0 and killed
    (trial,) = load(out, STUDY).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.user_attrs[records.STATE] == "complete"
    assert [h["epoch"] for h in trial.user_attrs[records.HISTORY]] == [1, 2]


def test_several_archs_run_one_study_each_in_turn(ray_local, tmp_path, capsys):
    archs = [ARCH, "mobilenetv3_small_075"]
    out = tmp_path / "sweep"
    code = cli.main(["sweep", "--space", TINY_SPACE, "--arch", archs[0], "--arch", archs[1], "--trials", "1",
                     "--epochs", "1", "--no-baseline", "--out", str(out), *DATA])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.index(f"[tiny/{archs[0]}] 1 trials to run") < printed.index(f"[tiny/{archs[1]}] 1 trials to run")
    counts = []
    for arch in archs:
        study = load(out, records.study_name("tiny", arch))
        (trial,) = study.trials
        assert study.user_attrs[records.ARCH] == arch and trial.user_attrs[records.RECIPE]["arch"] == arch
        assert trial.user_attrs[records.BASELINE] is False and trial.user_attrs[records.STATE] == "complete"
        counts.append(trial.user_attrs[records.PARAMS_COUNT])
    assert counts[0] < counts[1]  # the 0.75-width net is the bigger one


def fault_space(tmp_path: Path) -> str:
    """A space whose samples train fine, diverge (a huge lr) or fail (a data folder that does not exist)."""
    path = tmp_path / "faults.yaml"
    path.write_text(
        "name: faults\n"
        "base: digits-small\n"
        "fixed: {epochs: 1, data_root: /nonexistent}\n"
        "params:\n"
        "  dataset: {choice: [digits, imagefolder]}\n"
        "  base_lr: {choice: [0.03, 1.0e+6]}\n"
    )
    return str(path)


def seed_covering(space_file: str, n: int, wanted: list[dict]) -> int:
    """A sampler seed whose first `n` sampled trials include each of `wanted` (the sweep's sampler: TPE
    starts with seeded random samples, one RNG draw sequence whatever the timing of the trials)."""
    space = load_space(space_file)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for seed in range(500):
        sampler = optuna.samplers.TPESampler(multivariate=True, constant_liar=True, seed=seed)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        samples = []
        for _ in range(n):
            trial = study.ask()
            space.suggest(trial, {})
            samples.append(dict(trial.params))
        if all(w in samples for w in wanted):
            return seed
    raise AssertionError("no seed samples every case")


def test_failing_and_diverging_trials_are_recorded_and_the_sweep_completes(ray_local, tmp_path):
    space = fault_space(tmp_path)
    good = {"dataset": "digits", "base_lr": 0.03}
    diverging = {"dataset": "digits", "base_lr": 1.0e6}
    failing = {"dataset": "imagefolder", "base_lr": 0.03}
    seed = seed_covering(space, 3, [good, diverging, failing])
    out = tmp_path / "sweep"
    code = cli.main(["sweep", "--space", space, "--arch", ARCH, "--trials", "3", "--out", str(out), "--no-baseline",
                     "--seed", str(seed), *SIZES])  # dataset is searched here
    assert code == 0
    study = load(out, records.study_name("faults", ARCH))
    assert len(study.trials) == 3
    by_params = {(t.params["dataset"], t.params["base_lr"]): t for t in study.trials}
    ok = by_params[("digits", 0.03)]
    assert ok.state == optuna.trial.TrialState.COMPLETE and ok.user_attrs[records.STATE] == "complete"
    bad = by_params[("digits", 1.0e6)]
    assert bad.state == optuna.trial.TrialState.FAIL and bad.user_attrs[records.STATE] == "diverged"
    assert "loss" in bad.user_attrs[records.ERROR]
    assert bad.user_attrs[records.METRICS]["diverged_epoch"] == 1
    broken = by_params[("imagefolder", 0.03)]
    assert broken.state == optuna.trial.TrialState.FAIL and broken.user_attrs[records.STATE] == "failed"
    assert "/nonexistent" in broken.user_attrs[records.ERROR]
    for t in study.trials:
        assert all_attrs_present(t) == []
        assert t.user_attrs[records.PARAMS_COUNT] > 100_000


def test_kill_9_of_the_driver_then_resume_ends_with_exactly_n_trials(ray_local, tmp_path):
    out = tmp_path / "sweep"
    argv = ["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "3", "--epochs", "2", "--grace-epochs", "2",
            "--concurrency", "2", "--out", str(out), *DATA]
    log = open(tmp_path / "driver.log", "w")
    driver = subprocess.Popen([sys.executable, "-m", "lightrecipe.cli", *argv], stdout=log, stderr=subprocess.STDOUT)
    below: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        finished = 0
        while time.monotonic() < deadline and driver.poll() is None:
            below |= descendants(driver.pid)  # its Ray processes, collected while they are its children
            try:  # read-only, as a report reads: never create tables under a starting sweep
                finished = int(load_trials(str(out))["optuna_state"].isin(["COMPLETE", "PRUNED", "FAIL"]).sum())
            except Exception:  # noqa: BLE001 - the database or the study is not there yet
                finished = 0
            if finished >= 1:
                break
            time.sleep(0.5)
        assert finished >= 1 and driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
        below |= descendants(driver.pid)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        log.close()
        # Ray's worker processes die with the driver; a dashboard/runtime-env agent may linger: stop those we started.
        stop_pids(below, grace_s=5.0)

    before = {t.number: t for t in load(out, STUDY).trials}
    done_before = {n: t for n, t in before.items() if t.state in FINISHED}
    running_before = {n: t for n, t in before.items() if t.state == optuna.trial.TrialState.RUNNING}
    assert done_before and running_before, {n: t.state for n, t in before.items()}

    assert cli.main([*argv, "--resume"]) == 0

    after = load(out, STUDY).trials
    assert [t.number for t in after] == [0, 1, 2]  # exactly --trials, none repeated
    assert all(t.state in FINISHED for t in after)
    assert len({tuple(sorted(t.params.items())) for t in after}) == 3
    for n, t in done_before.items():  # finished trials are kept as they were
        assert after[n].state == t.state and after[n].value == t.value
        assert after[n].datetime_complete == t.datetime_complete
    for n, t in running_before.items():  # interrupted trials ran again in the same folder, same params
        assert after[n].params == t.params
        assert after[n].user_attrs[records.RUN_DIR] == t.user_attrs[records.RUN_DIR]
        history = after[n].user_attrs[records.HISTORY]
        epochs = [h["epoch"] for h in history]
        assert epochs == sorted(set(epochs)) and epochs[0] == 1, epochs
    runs = sorted(p.name for p in (out / "runs" / f"tiny--{ARCH}").iterdir())
    assert runs == ["trial-0000", "trial-0001", "trial-0002"]
