"""The Ray adapter's pure parts: the final Tune result, failures, the wall clock over attempts."""

import math

import pytest

from lightrecipe.errors import UserError
from lightrecipe.search.tune import trainable
from lightrecipe.search.tune.devices import node_label
from lightrecipe.trainers.run.run_files import HISTORY_FILE

EPOCH_KEYS = {"epoch": 3, "loss": 5.1, "lr": 0.01, "knn_top1": 0.7, "images_per_s": 900.0, "epoch_seconds": 1.5}


def test_a_complete_run_reports_its_epoch_so_asha_sees_max_t():
    final = {**EPOCH_KEYS, "linear_top1": 0.8, "params": 123, "state": "complete", "diverged_epoch": None, "error": ""}
    out = trainable.final_result(final)
    assert out[trainable.KIND] == trainable.FINAL and out["state"] == "complete" and out["epoch"] == 3
    assert out["knn_top1"] == 0.7 and trainable.LAST_EPOCH not in out


def test_a_diverged_run_hides_its_epoch_from_asha_and_still_names_the_metric():
    final = {"epoch": 0, "params": 123, "state": "diverged", "diverged_epoch": 1, "error": "loss became nan"}
    out = trainable.final_result(final)
    assert "epoch" not in out and out[trainable.LAST_EPOCH] == 0
    assert math.isnan(out["knn_top1"])  # Tune requires the metric in every result
    assert out["state"] == "diverged" and out["error"] == "loss became nan"


def test_a_failure_keeps_the_last_epoch_it_finished():
    out = trainable.failed_result("boom", dict(EPOCH_KEYS))
    assert out["state"] == "failed" and out["error"] == "boom"
    assert "epoch" not in out and out[trainable.LAST_EPOCH] == 3 and out["knn_top1"] == 0.7
    empty = trainable.failed_result("boom", None)
    assert empty[trainable.LAST_EPOCH] is None and math.isnan(empty["knn_top1"])


def test_describe_names_user_errors_plainly_and_bugs_with_their_place():
    assert trainable.describe(UserError("data_root '/x' does not exist")) == "data_root '/x' does not exist"
    try:
        {}["missing"]
    except KeyError as exc:
        text = trainable.describe(exc)
    assert text.startswith("KeyError: 'missing' (at test_trainable.py:")


def test_wall_clock_adds_up_attempts_and_counts_them(tmp_path):
    first = trainable.WallClock(tmp_path)
    assert first.attempts == 1 and (tmp_path / trainable.CLOCK_FILE).exists()  # counted before anything can kill it
    first.start -= 10.0  # this attempt ran 10 s
    assert 10.0 <= first.save() < 11.0
    second = trainable.WallClock(tmp_path)  # a retry in the same run folder
    second.start -= 5.0
    assert 15.0 <= second.save() < 16.0
    assert second.attempts == 2 and trainable.WallClock(tmp_path).attempts == 3


def test_history_of_a_run_folder_skips_rows_that_are_not_epochs_and_missing_folders(tmp_path):
    (tmp_path / HISTORY_FILE).write_text(
        "epoch,loss,lr,knn_top1,images_per_s,epoch_seconds\n1,5.0,0.1,0.5,100,2\n2,nan,0.1,,100,2\n"
    )
    assert trainable.read_history(tmp_path) == [
        {"epoch": 1, "loss": 5.0, "lr": 0.1, "knn_top1": 0.5, "images_per_s": 100.0, "epoch_seconds": 2.0}
    ]
    assert trainable.read_history(tmp_path / "missing") == []
    assert trainable.read_history(tmp_path / HISTORY_FILE) == []  # a file where a folder should be


@pytest.mark.slow  # asks Ray for its node id, which starts Ray helper processes
def test_node_label_outside_ray_is_still_a_label():
    host, ip, node = node_label().split("/")
    assert host and ip and node
