"""load_trials / load_curves against real Optuna SQLite databases with planted numbers."""

from __future__ import annotations

import hashlib
import sqlite3

import numpy as np
import optuna
import pytest

from lightrecipe.errors import UserError
from lightrecipe.reports import selections, tables
from lightrecipe.search.store import records
from lightrecipe.trainers.recipe import FIELD_NAMES
from tests.reports import sweepdb

MNV3 = "mobilenetv3_large_100"


def test_one_row_per_trial_with_planted_states_and_numbers(planted):
    trials = tables.load_trials(str(planted.folder))
    for arch in planted.archs:
        sub = trials[trials["arch"] == arch]
        assert sub["state"].value_counts().to_dict() == planted.counts[arch]
        assert sorted(sub.loc[sub["baseline"], "knn_top1"]) == sorted(planted.baseline[arch])
        assert sub["knn_top1"].max() == pytest.approx(planted.best[arch])
        assert (sub["space"] == sweepdb.SPACE).all() and (sub["study"] == f"{sweepdb.SPACE}/{arch}").all()
        assert (sub["params_count"].dropna() == planted.params_count[arch]).all()
    best = trials[(trials["arch"] == MNV3) & (trials["knn_top1"] == planted.best[MNV3])].iloc[0]
    assert best["linear_top1"] == pytest.approx(planted.best[MNV3] + 0.03)
    assert best["test_knn_top1"] == pytest.approx(planted.best[MNV3] - 0.01)
    assert best["param_temperature"] == pytest.approx(0.1) and best["param_smoothing_k"] == 16
    assert best["epochs"] == sweepdb.MAX_EPOCHS and best["wall_seconds"] == pytest.approx(60.0)


def test_every_row_has_every_recipe_field_and_baseline_has_resnet50_values(planted):
    trials = tables.load_trials(str(planted.folder))
    assert all(f"recipe_{f}" in trials.columns for f in FIELD_NAMES)
    base = trials[trials["baseline"]]
    assert (base["recipe_temperature"] == 0.2).all() and (base["recipe_weight_decay"] == 1e-4).all()
    assert (base["recipe_base_lr"] == 0.03).all() and (base["recipe_smoothing"] == "none").all()
    # a conditional knob not sampled still has its resolved recipe value
    off = trials[(trials["param_smoothing"] == "none") & (trials["state"] == "complete")]
    assert off["param_smoothing_alpha"].isna().all() and (off["recipe_smoothing_alpha"] == 0.0).all()


def test_failed_diverged_pruned_and_running_trials(planted):
    trials = tables.load_trials(str(planted.folder))
    sub = trials[trials["arch"] == MNV3].set_index("number")
    failed = sub[sub["state"] == "failed"].iloc[0]
    assert sweepdb.SCRIPT in failed["error"] and np.isnan(failed["knn_top1"]) and failed["optuna_state"] == "FAIL"
    diverged = sub[sub["state"] == "diverged"].iloc[0]
    assert diverged["error"] == "loss became nan at epoch 2" and diverged["optuna_state"] == "FAIL"
    pruned = sub[sub["state"] == "pruned"]
    assert sorted(pruned["epochs"]) == [2, 3]
    running = sub[sub["state"] == "running"].iloc[0]
    assert running["optuna_state"] == "RUNNING" and running["epochs"] == 2 and np.isnan(running["value"])


def test_curves_one_row_per_trial_and_epoch(planted):
    curves = tables.load_curves(str(planted.folder))
    trials = tables.load_trials(str(planted.folder))
    assert len(curves) == int(trials["epochs"].sum())
    best_number = int(trials[(trials["arch"] == MNV3) & (trials["knn_top1"] == planted.best[MNV3])]["number"].iloc[0])
    line = curves[(curves["arch"] == MNV3) & (curves["number"] == best_number)].sort_values("epoch")
    assert list(line["epoch"]) == list(range(sweepdb.MAX_EPOCHS))
    assert np.allclose(line["knn_top1"], sweepdb.curve(planted.best[MNV3], sweepdb.MAX_EPOCHS))
    assert np.allclose(line["objective_value"], line["knn_top1"])
    assert {"loss", "lr", "images_per_s", "epoch_seconds"} <= set(curves.columns)


def test_many_sources_merge(planted, resnet_folder):
    trials = tables.load_trials([str(planted.folder), str(resnet_folder)])
    assert set(trials["arch"]) == {*planted.archs, "resnet50"}
    assert set(trials.loc[trials["arch"] == "resnet50", "source"]) == {str(resnet_folder)}
    url = records.default_storage_url(str(resnet_folder))  # a URL works like the folder
    assert len(tables.load_trials(url)) == 3


def test_reading_never_writes_nor_keeps_a_lock(planted):
    db = planted.folder / records.DB_FILENAME
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    tables.load_trials(str(planted.folder))
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert not (planted.folder / "trials.db-journal").exists()
    writer = sqlite3.connect(db, timeout=0)  # timeout 0: fails at once if the reader still held a lock
    try:
        writer.execute("BEGIN EXCLUSIVE")
        writer.rollback()
    finally:
        writer.close()


def test_running_sweep_is_read_while_a_writer_holds_its_transaction(tmp_path):
    folder = tmp_path / "live"
    url = records.default_storage_url(str(folder))
    folder.mkdir()
    sweepdb.build_study(url, arch=MNV3, trials=[sweepdb.Planted(dict(sweepdb.BASELINE_PARAMS), 0.4, baseline=True)],
                        params_count=1, running=1)
    writer = sqlite3.connect(folder / records.DB_FILENAME)
    writer.execute("BEGIN IMMEDIATE")  # a sweep in the middle of a write: readers may still read
    writer.execute("UPDATE trials SET number = number")
    try:
        trials = tables.load_trials(str(folder))
    finally:
        writer.rollback()
        writer.close()
    assert sorted(trials["state"]) == ["complete", "running"]


def test_missing_or_wrong_sources_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="does-not-exist"):
        tables.load_trials(str(tmp_path / "does-not-exist"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"empty.*trials\.db"):
        tables.load_trials(str(tmp_path / "empty"))
    with pytest.raises(UserError, match="nothere.db"):
        tables.load_trials(f"sqlite:///{tmp_path}/nothere.db")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (a)").connection.commit()
    with pytest.raises(UserError, match="other.db"):
        tables.load_trials(str(other))
    assert not (tmp_path / "nothere.db").exists()  # never created by a read


def test_study_without_complete_trials_loads(tmp_path):
    url = records.default_storage_url(str(tmp_path))
    sweepdb.build_study(url, arch=MNV3, params_count=1, running=2, trials=[
        sweepdb.Planted(dict(sweepdb.BASELINE_PARAMS), None, state="failed", epochs=1, error="boom")])
    optuna.load_study(study_name=records.study_name(sweepdb.SPACE, MNV3), storage=url).enqueue_trial({"base_lr": 0.03})
    trials = tables.load_trials(str(tmp_path))
    assert sorted(trials["state"]) == ["failed", "running", "running", "waiting"]
    assert selections.best_trials(trials, "knn_top1").empty


def test_probe_metric_ranks_the_trial_that_wins_the_probe_and_loses_on_knn(planted):
    trials = tables.load_trials(str(planted.folder))
    number, params, linear = planted.probe_best["efficientnet_b0"]
    by_knn = selections.best_trials(trials, "knn_top1").loc["efficientnet_b0"]
    by_probe = selections.best_trials(trials, "linear_top1").loc["efficientnet_b0"]
    assert by_knn["number"] != number and by_knn["knn_top1"] > trials.loc[
        (trials["arch"] == "efficientnet_b0") & (trials["number"] == number), "knn_top1"].item()
    assert by_probe["number"] == number and by_probe["linear_top1"] == pytest.approx(linear)
    assert by_probe["param_temperature"] == params["temperature"]


def test_the_readme_names_every_frame_tables_load_returns():
    """The README's Python example says what `tables.load` returns: every field of `Frames`, floor and confirm too."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (named,) = re.findall(r"# Frames\(([^)]*)\)", readme)
    assert [name.strip() for name in named.split(",")] == list(tables.Frames._fields)
