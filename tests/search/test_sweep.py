"""End-to-end sweeps: real Ray, a real SQLite trial database, real (tiny) trainings on digits.

In-process sweeps share the session's Ray instance (`ray_local`). The kill -9 test runs the CLI as a
subprocess with its own Ray, as a user would. Clusters started with `ray start` are test_cluster.py's.
Tests that wait for a state of a running sweep say which state, and fail naming it (helpers.wait_for).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest

from lightrecipe import cli
from lightrecipe.reports.tables import load_trials
from lightrecipe.search.planning import resumed_seed
from lightrecipe.search.store import records
from lightrecipe.search.tune import trainable
from lightrecipe.search.tune.sampler import make_sampler
from lightrecipe.spaces import load_space

from .helpers import (
    ARCH,
    DATA,
    SIZES,
    TINY_SPACE,
    all_attrs_present,
    descendants,
    load,
    sqlite_storage,
    stop_pids,
    trial_rows,
    wait_for,
    worker_pids,
)

pytestmark = pytest.mark.slow
STUDY = records.study_name("tiny", ARCH)
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


def attempts(trial: optuna.trial.FrozenTrial) -> int:
    """How many runs of this trial started (trainable.WallClock counts them in the run folder)."""
    return json.loads((Path(trial.user_attrs[records.RUN_DIR]) / trainable.CLOCK_FILE).read_text())["attempts"]


def assert_the_floor_is_the_untrained_backbone(study: optuna.Study, baseline, monkeypatch) -> None:
    """The study's random-init floor, recorded once before its trials: the backbone train() starts from (built
    as train() builds it), scored by train()'s own final evaluation; a seed it has is never measured again."""
    import torch

    from lightrecipe.search import floor
    from lightrecipe.trainers.data.datasets import load_dataset
    from lightrecipe.trainers.run.scoring import final_scores
    from lightrecipe.trainers.run.trainer import Trainer

    data = load_dataset(baseline)
    trainer = Trainer.build(baseline, torch.device("cpu"), len(data.train))  # what train() builds before epoch 1
    expected = final_scores(trainer.model.backbone, data, baseline, torch.device("cpu"))
    rows = study.user_attrs[records.FLOOR]
    assert [r["seed"] for r in rows] == [baseline.seed]
    assert (rows[0]["device"], rows[0]["precision"]) == ("cpu", baseline.precision)  # as the trials are scored
    assert rows[0]["knn_top1"] == expected["knn_top1"] and rows[0]["test_knn_top1"] == expected["test_knn_top1"]
    for key in ("linear_top1", "test_linear_top1"):  # the lbfgs probe under another thread count can land a
        assert rows[0][key] == pytest.approx(expected[key], abs=0.01), key  # sample or two apart

    def measured_again(*args, **kwargs):
        raise AssertionError("a seed the study already has must not be measured again")

    monkeypatch.setattr(floor, "measure", measured_again)
    assert floor.ensure(study, baseline) == rows


def assert_the_latency_is_measured_once(study: optuna.Study, monkeypatch) -> None:
    """The arch's latency on the driver's machine, at the study's image size: 1 CPU thread and every core (and
    the GPU when there is one), each row naming its device; a study that has it is never measured again."""
    from lightrecipe.search import latency

    rows = study.user_attrs[records.LATENCY]
    assert [(r["device"], r["threads"]) for r in rows] == [(s["device"], s["threads"]) for s in latency.settings()]
    assert rows[0]["threads"] == 1 and all(r["device_name"] for r in rows)
    assert all(r["arch"] == ARCH and r["image_size"] == 32 and r[records.LATENCY_MS] > 0 for r in rows)

    def measured_again(*args, **kwargs):
        raise AssertionError("a study that has its latency must not be measured again")

    monkeypatch.setattr("lightrecipe.trainers.latency.measure", measured_again)
    latency.ensure(study, ARCH, 32)


def test_a_two_trial_sweep_records_every_attribute_and_the_baseline(ray_local, tmp_path, capsys, monkeypatch):
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
    overrides = {"dataset": "digits", "image_size": 32, "batch_size": 64, "queue_size": 256, "data_fraction": 0.25,
                 "probe_weight_decay": 0.01, "arch": ARCH, "epochs": 2}
    baseline = trials[0]
    assert baseline.user_attrs[records.BASELINE] is True
    assert baseline.user_attrs[records.RECIPE] == load_space(TINY_SPACE).baseline(overrides).to_dict()
    assert baseline.params == {"temperature": 0.2}
    assert trials[1].user_attrs[records.BASELINE] is False
    assert trials[1].user_attrs[records.RECIPE]["temperature"] == trials[1].params["temperature"]
    key = study.user_attrs[records.STUDY_KEY]
    for t in trials:
        assert all_attrs_present(t) == []
        assert t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs[records.STATE] == "complete"
        attrs = t.user_attrs
        assert attrs[records.ERROR] == ""
        assert [h["epoch"] for h in attrs[records.HISTORY]] == [1, 2]
        assert sorted(t.intermediate_values) == [1, 2]
        assert t.value == attrs[records.METRICS]["knn_top1"] == attrs[records.HISTORY][-1]["knn_top1"]
        for metric in ("linear_top1", "test_knn_top1", "test_linear_top1", "params"):
            assert metric in attrs[records.METRICS]
        assert "config/recipe/arch" not in attrs[records.METRICS]  # Tune's own keys stay out
        assert attrs[records.PARAMS_COUNT] == attrs[records.METRICS]["params"] > 100_000
        assert attrs[records.WALL_SECONDS] > 0 and attrs[records.DEVICE_SECONDS] == attrs[records.WALL_SECONDS]
        assert attrs[records.NODE].count("/") == 2
        run_dir = Path(attrs[records.RUN_DIR])
        assert run_dir.is_absolute() and (run_dir / "checkpoint.pt").exists() and (run_dir / "metrics.json").exists()
        assert run_dir.parent.name == f"tiny--{ARCH}--{key}"  # the study's own folder
        assert attempts(t) == 1

    assert_the_floor_is_the_untrained_backbone(study, load_space(TINY_SPACE).baseline(overrides), monkeypatch)
    assert_the_latency_is_measured_once(study, monkeypatch)

    # Tune pickled its experiment (tuner.pkl, the searcher's state) into OUT/ray: no database in there.
    url = records.default_storage_url(str(out)).encode()
    files = [p for p in (out / "ray").rglob("*") if p.is_file()]
    assert any(p.name == "tuner.pkl" for p in files), [p.name for p in files]
    for path in files:
        data = path.read_bytes()
        assert url not in data and b"RDBStorage" not in data and b"sqlalchemy" not in data, path


def test_a_killed_trial_worker_is_restarted_and_its_trial_completes(ray_local, tmp_path):
    out = tmp_path / "sweep"
    killed: list[int] = []
    failure: list[BaseException] = []

    def kill_the_worker_during_epoch_two():
        try:
            wait_for("the trial to record epoch 1 of 3 and still run",
                     lambda: (rows := trial_rows(out)) is not None and
                     ((rows["epochs"] == 1) & (rows["optuna_state"] == "RUNNING")).any(), timeout_s=240)
            pids = worker_pids(os.getpid())  # the session's Ray runs below this process
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            killed.extend(pids)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread below
            failure.append(exc)

    optuna.storages.RDBStorage("sqlite://")  # import SQLAlchemy before a second thread does
    thread = threading.Thread(target=kill_the_worker_during_epoch_two, daemon=True)
    thread.start()
    code = cli.main(["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "1", "--epochs", "3",
                     "--grace-epochs", "3", "--no-baseline", "--out", str(out), *DATA])
    thread.join()
    assert not failure, failure[0]
    assert code == 0 and killed
    (trial,) = load(out, STUDY).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.user_attrs[records.STATE] == "complete"
    assert [h["epoch"] for h in trial.user_attrs[records.HISTORY]] == [1, 2, 3]
    assert attempts(trial) == 2  # the kill hit a running attempt, and a second one finished the trial


def test_a_trial_whose_worker_keeps_dying_fails_with_that_reason_and_the_sweep_goes_on(ray_local, tmp_path):
    out = tmp_path / "sweep"
    killed: set[int] = set()
    stop = threading.Event()

    def kill_every_worker_of_trial_0():
        while not stop.is_set():
            pids = worker_pids(os.getpid()) - killed
            rows = trial_rows(out) if pids else None
            # Workers seen first, the database read second: trial 1 is only created after trial 0 failed.
            if rows is not None and (rows.loc[rows["number"] == 0, "optuna_state"] == "RUNNING").any():
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                killed.update(pids)
            time.sleep(0.2)

    optuna.storages.RDBStorage("sqlite://")  # import SQLAlchemy before a second thread does
    thread = threading.Thread(target=kill_every_worker_of_trial_0, daemon=True)
    thread.start()
    try:
        code = cli.main(["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "2", "--epochs", "2",
                         "--grace-epochs", "2", "--concurrency", "1", "--max-failures", "1", "--no-baseline",
                         "--out", str(out), *DATA])
    finally:
        stop.set()
        thread.join()
    assert code == 0
    first, second = load(out, STUDY).trials
    assert len(killed) >= 2  # the first attempt and its one retry (--max-failures 1)
    assert first.state == optuna.trial.TrialState.FAIL and first.user_attrs[records.STATE] == "failed"
    assert "worker died and its retries ran out" in first.user_attrs[records.ERROR]
    assert second.state == optuna.trial.TrialState.COMPLETE and second.user_attrs[records.STATE] == "complete"


def test_several_archs_run_one_study_each_in_turn(ray_local, tmp_path, capsys):
    archs = [ARCH, "mobilenetv3_small_075"]
    out = tmp_path / "sweep"
    code = cli.main(["sweep", "--space", TINY_SPACE, "--arch", archs[0], "--arch", archs[1], "--trials", "1",
                     "--epochs", "1", "--no-baseline", "--out", str(out), *DATA])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.index(f"[tiny/{archs[0]}] 1 trial to run") < printed.index(f"[tiny/{archs[1]}] 1 trial to run")
    # The session's Ray fits two 1-CPU trials; one trial left holds one slot, not two. One epoch has no ASHA rung.
    assert (f"[tiny/{archs[0]}] 1 trial to run (0 finished); 1 epoch, ASHA off: no rung before the last epoch, "
            "concurrency 1") in printed
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


def diverge_space(tmp_path: Path) -> str:
    """A space whose samples train fine or diverge (a huge lr): a failure only training finds."""
    path = tmp_path / "diverge.yaml"
    path.write_text("name: diverge\nbase: digits-small\nfixed: {epochs: 1}\nparams:\n  base_lr: {choice: [0.03, 1.0e+6]}\n")
    return str(path)


def first_samples(space_file: str, seed: int, n: int, history: int = 0) -> list[dict]:
    """The params the sweep's sampler draws first for this space and seed (TPE's seeded random start-up:
    one draw sequence whatever the timing of the trials); `history` trials already in the study."""
    space = load_space(space_file)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=make_sampler(resumed_seed(seed, history)))
    samples = []
    for _ in range(n):
        trial = study.ask()
        space.suggest(trial, {})
        samples.append(dict(trial.params))
    return samples


def seed_covering(space_file: str, n: int, wanted: list[dict]) -> int:
    """A sampler seed whose first `n` sampled trials include each of `wanted`."""
    for seed in range(500):
        samples = first_samples(space_file, seed, n)
        if all(w in samples for w in wanted):
            return seed
    raise AssertionError("no seed samples every case")


def test_a_missing_data_folder_is_refused_before_any_trial_and_a_diverging_trial_is_recorded(ray_local, tmp_path, capsys, caplog):
    space = fault_space(tmp_path)
    # A corner whose data folder does not exist is refused before any trial starts (issue 19 item 11): one line.
    assert cli.main(["sweep", "--space", space, "--arch", ARCH, "--trials", "3", "--out", str(tmp_path / "refused"),
                     "--no-baseline", *SIZES]) == 2
    assert "the space gives a recipe that does not fit the data at dataset=imagefolder" in capsys.readouterr().err
    space = diverge_space(tmp_path)  # what only training finds out: a diverging recipe
    good = {"base_lr": 0.03}
    diverging = {"base_lr": 1.0e6}
    seed = seed_covering(space, 2, [good, diverging])
    out = tmp_path / "sweep"
    code = cli.main(["sweep", "--space", space, "--arch", ARCH, "--trials", "2", "--out", str(out), "--no-baseline",
                     "--seed", str(seed), *SIZES])
    assert code == 0
    study = load(out, records.study_name("diverge", ARCH))
    assert len(study.trials) == 2
    by_params = {t.params["base_lr"]: t for t in study.trials}
    ok = by_params[0.03]
    assert ok.state == optuna.trial.TrialState.COMPLETE and ok.user_attrs[records.STATE] == "complete"
    bad = by_params[1.0e6]
    # PRUNED, so TPE ranks it below every complete trial; FAIL it would ignore (optuna#1214).
    assert bad.state == optuna.trial.TrialState.PRUNED and bad.user_attrs[records.STATE] == "diverged"
    assert "loss" in bad.user_attrs[records.ERROR]
    assert bad.user_attrs[records.METRICS]["diverged_epoch"] == 1
    for t in study.trials:
        assert all_attrs_present(t) == []
        assert t.user_attrs[records.PARAMS_COUNT] > 100_000


def test_a_trial_whose_run_folder_cannot_be_made_fails_with_that_reason(ray_local, tmp_path, capsys, caplog):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "runs").write_text("a file where the run folders go\n")  # as a read-only or broken shared mount
    code = cli.main(["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "1", "--epochs", "1",
                     "--no-baseline", "--out", str(out), *DATA])
    assert code == 1  # every trial finished, none completed: the sweep found nothing (README, exit codes)
    (trial,) = load(out, STUDY).trials
    assert trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs[records.STATE] == "failed"
    error = trial.user_attrs[records.ERROR]
    assert error.startswith(("FileExistsError", "NotADirectoryError")) and str(out / "runs") in error, error
    assert "worker died" not in error
    printed = capsys.readouterr()
    assert f"trial 0 failed: {error[:40]}" in printed.out
    assert "  best:" not in printed.out  # no best of nothing
    assert printed.err.splitlines()[-1] == (
        f"lightrecipe: no trial completed in study {STUDY} (1 failed); the most common failure (1 of 1 trial): {error}")
    assert "Traceback" in caplog.text and "mkdir" in caplog.text


def test_a_cpu_trial_records_its_thread_count_and_its_best_recipe_file_trains_to_the_same_metrics(
        ray_local, tmp_path, capsys):
    """A trial trains on --cpus-per-trial threads (1), `lightrecipe train` on every core: the thread count sets the
    order of CPU sums, so the best-recipe file's number did not reproduce. The trial records the count, the file
    carries it, and `train --recipe FILE` trains with it: the same metrics, to the last bit."""
    import torch

    from lightrecipe.reports.best_recipes import write_best_recipes

    out = tmp_path / "sweep"
    assert cli.main(["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "1", "--epochs", "1",
                     "--no-baseline", "--out", str(out), *DATA]) == 0
    (trial,) = load(out, STUDY).trials
    swept = trial.user_attrs[records.METRICS]
    assert swept["cpu_threads"] == 1 and (Path(trial.user_attrs[records.RUN_DIR]) / "metrics.json").is_file()
    card = write_best_recipes(load_trials(str(out)), "knn_top1", tmp_path, [])[ARCH]
    assert "\ncpu_threads: 1\n" in card.read_text()
    threads = torch.get_num_threads()
    try:
        assert cli.main(["train", "--recipe", str(card), "--out", str(tmp_path / "again")]) == 0
    finally:
        torch.set_num_threads(threads)
    assert "training on 1 CPU thread" in capsys.readouterr().err
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    for key in ("loss", "knn_top1", "feature_rank", "linear_top1", "test_knn_top1", "test_linear_top1", "cpu_threads"):
        assert again[key] == swept[key], (key, again[key], swept[key])


def prunable_space(tmp_path: Path) -> str:
    """Two recipes whose val kNN is far apart from the first epoch on, whatever training does: a kNN monitor
    over the 20 nearest neighbours, and one whose 100000 'neighbours' are the whole memory bank voting with
    equal weight (temperature 1000), which predicts one class for every image (about 10% on digits)."""
    path = tmp_path / "prunable.yaml"
    path.write_text(
        "name: prunable\n"
        "base: digits-small\n"
        "fixed: {epochs: 2, knn_temperature: 1000}\n"
        "params:\n"
        "  knn_k: {choice: [20, 100000]}\n"
    )
    return str(path)


def test_asha_prunes_and_a_resumed_sweep_prunes_with_the_rungs_it_had(ray_local, tmp_path):
    """Grace 1 of 2 epochs, one trial at a time. A blind trial after a sighted one is below the rung's
    cutoff, so ASHA stops it: PRUNED, with its epoch-1 value. Resumed with one more trial, a blind trial
    is stopped again, which only the rungs rebuilt from the database can do (fresh rungs have no cutoff)."""
    space = prunable_space(tmp_path)
    sighted, blind = {"knn_k": 20}, {"knn_k": 100000}
    seed = next(s for s in range(500)
                if first_samples(space, s, 2) == [sighted, blind] and first_samples(space, s, 1, history=2) == [blind])
    out = tmp_path / "sweep"
    argv = ["sweep", "--space", space, "--arch", ARCH, "--epochs", "2", "--grace-epochs", "1", "--concurrency", "1",
            "--no-baseline", "--seed", str(seed), "--out", str(out), *DATA]
    assert cli.main([*argv, "--trials", "2"]) == 0
    name = records.study_name("prunable", ARCH)
    first, second = load(out, name).trials
    assert first.params == sighted and first.state == optuna.trial.TrialState.COMPLETE
    assert sorted(first.intermediate_values) == [1, 2]
    assert second.params == blind and second.state == optuna.trial.TrialState.PRUNED
    assert second.user_attrs[records.STATE] == "pruned" and list(second.intermediate_values) == [1]
    assert second.value == second.intermediate_values[1] < first.intermediate_values[1]
    assert [h["epoch"] for h in second.user_attrs[records.HISTORY]] == [1]

    assert cli.main([*argv, "--trials", "3", "--resume"]) == 0
    before, after = {first.number: first, second.number: second}, load(out, name).trials
    assert [t.number for t in after] == [0, 1, 2]
    for number, t in before.items():  # a stopped trial is not resumed; a finished one is kept as it was
        assert after[number].state == t.state and after[number].datetime_complete == t.datetime_complete
    third = after[2]
    assert third.params == blind and third.state == optuna.trial.TrialState.PRUNED
    assert list(third.intermediate_values) == [1]


def test_a_smaller_resume_closes_the_extra_interrupted_trials(ray_local, tmp_path, capsys):
    """A killed driver left one finished and two RUNNING trials; `--resume --trials 1` runs nothing more and
    closes both RUNNING ones as failed, so the study holds what was asked for and nothing stays RUNNING."""
    from lightrecipe.search.store.study import create_study

    out = tmp_path / "sweep"
    space = load_space(TINY_SPACE)
    study = create_study(sqlite_storage(out), space="tiny", arch=ARCH, max_epochs=2, space_spec=space.to_dict(),
                         sweep={})
    done = study.ask()
    done.suggest_float("temperature", 0.05, 0.5, log=True)
    study.tell(done, 0.5)
    for _ in range(2):
        study.ask().suggest_float("temperature", 0.05, 0.5, log=True)
    argv = ["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "1", "--epochs", "2", "--out", str(out),
            "--resume", *DATA]
    assert cli.main(argv) == 0
    assert "already has 1 finished trial (--trials 1)" in capsys.readouterr().out
    trials = load(out, STUDY).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] + [optuna.trial.TrialState.FAIL] * 2
    assert all("not resumed" in t.user_attrs[records.ERROR] for t in trials[1:])


def test_kill_9_of_the_driver_then_resume_ends_with_exactly_n_trials(ray_local, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "3", "--epochs", "3", "--grace-epochs", "3",
            "--concurrency", "2", "--out", str(out), *DATA]
    log_path = tmp_path / "driver.log"
    log = open(log_path, "w")
    driver = subprocess.Popen([sys.executable, "-m", "lightrecipe.cli", *argv], stdout=log, stderr=subprocess.STDOUT)
    below: set[int] = set()

    def sweep_state(wanted):
        below.update(descendants(driver.pid))  # its Ray processes, collected while they are its children
        rows = trial_rows(out)
        return rows is not None and wanted(rows)

    def running(rows):
        return rows[rows["optuna_state"] == "RUNNING"]

    try:
        wait_for("the driver's first trial to run", lambda: sweep_state(lambda rows: len(running(rows))),
                 timeout_s=240, running=lambda: driver.poll() is None, log=log_path)
        # A second driver on the same study is refused, naming the first one (the lease in the database).
        assert cli.main([*argv, "--resume"]) == 2
        assert f"being run by another driver: host {socket.gethostname()}, PID {driver.pid}" in capsys.readouterr().err
        # The state this test is about: a trial finished, another one interrupted after an epoch, before its end.
        wait_for("one finished trial and one RUNNING trial with 1 or 2 of its 3 epochs recorded",
                 lambda: sweep_state(lambda rows: rows["optuna_state"].isin(["COMPLETE", "PRUNED", "FAIL"]).any()
                                     and running(rows)["epochs"].between(1, 2).any()),
                 timeout_s=240, poll_s=0.2, running=lambda: driver.poll() is None, log=log_path)
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
    interrupted = {n: t for n, t in before.items()
                   if t.state == optuna.trial.TrialState.RUNNING and t.user_attrs.get(records.HISTORY)}
    assert done_before and interrupted, {n: (t.state, t.user_attrs.get(records.HISTORY)) for n, t in before.items()}

    assert cli.main([*argv, "--resume"]) == 0  # the dead driver's lease is taken over: its PID is gone

    after = load(out, STUDY).trials
    assert [t.number for t in after] == [0, 1, 2]  # exactly --trials, none repeated
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in after)
    assert len({tuple(sorted(t.params.items())) for t in after}) == 3
    for n, t in done_before.items():  # finished trials are kept as they were
        assert after[n].state == t.state and after[n].value == t.value
        assert after[n].datetime_complete == t.datetime_complete
    for n, t in before.items():  # every interrupted trial ran again with the params it had, in its recorded folder
        if t.state == optuna.trial.TrialState.RUNNING:  # (one killed right after `ask` had none yet: sampled now)
            assert t.params.items() <= after[n].params.items(), (t.params, after[n].params)
            assert t.user_attrs.get(records.RUN_DIR) in (None, after[n].user_attrs[records.RUN_DIR])
    for n in interrupted:  # ... and continued from its checkpoint, keeping the epochs it had
        assert [h["epoch"] for h in after[n].user_attrs[records.HISTORY]] == [1, 2, 3]
        assert attempts(after[n]) == 2
    key = load(out, STUDY).user_attrs[records.STUDY_KEY]
    runs = sorted(p.name for p in (out / "runs" / f"tiny--{ARCH}--{key}").iterdir())
    assert runs == ["trial-0000", "trial-0001", "trial-0002"]
