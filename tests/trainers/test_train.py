"""train(): files and keys, resume equals an uninterrupted run, determinism, divergence."""

import csv
import json

import pytest
import timm
import torch

from lightrecipe.errors import UserError
from lightrecipe.trainers.presets import preset
from lightrecipe.trainers.train import train

EPOCH_KEYS = {"epoch", "loss", "lr", "knn_top1", "images_per_s", "epoch_seconds"}
FINAL_KEYS = EPOCH_KEYS | {"linear_top1", "test_knn_top1", "test_linear_top1", "params", "state"}


def tiny(**changes):
    """digits-small, shortened: 2 epochs on half of the train split, a short probe."""
    base = dict(epochs=2, data_fraction=0.5, probe_epochs=20, queue_size=128)
    base.update(changes)
    return preset("digits-small", **base)


class Interrupt(Exception):
    pass


@pytest.fixture(autouse=True, scope="module")
def _threads():
    # One thread: CPU results are bit-identical only at a fixed thread count (reduction order), and one
    # thread stays fast when the cores are shared.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)  # robust on a busy machine; two threads spin badly when cores are shared


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """One uninterrupted 2-epoch run, shared by the tests that compare against it."""
    workdir = tmp_path_factory.mktemp("reference")
    reports = []
    metrics = train(tiny(), workdir=workdir, device="cpu", report=reports.append)
    return workdir, metrics, reports


def test_two_epoch_run_writes_every_file_and_key(reference_run):
    workdir, metrics, reports = reference_run
    assert [r["epoch"] for r in reports] == [1, 2]
    assert all(EPOCH_KEYS <= set(r) for r in reports)
    assert FINAL_KEYS <= set(metrics) and metrics["state"] == "complete"
    for name in ("recipe.json", "history.csv", "metrics.json", "checkpoint.pt"):
        assert (workdir / name).is_file(), name
    assert json.loads((workdir / "recipe.json").read_text()) == tiny().to_dict()
    rows = list(csv.DictReader((workdir / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and EPOCH_KEYS <= set(rows[0])
    saved = json.loads((workdir / "metrics.json").read_text())
    assert saved["state"] == "complete" and saved["test_linear_top1"] == metrics["test_linear_top1"]
    checkpoint = torch.load(workdir / "checkpoint.pt", weights_only=True)
    assert checkpoint["recipe"] == tiny().to_dict() and checkpoint["epoch"] == 2
    assert 0 < metrics["knn_top1"] <= 1 and 0 < metrics["test_linear_top1"] <= 1
    backbone = timm.create_model("mobilenetv3_small_050", pretrained=False, num_classes=0)
    assert metrics["params"] == sum(p.numel() for p in backbone.parameters())
    assert metrics["loss"] > 0 and metrics["images_per_s"] > 0


def test_resume_equals_uninterrupted(reference_run, tmp_path):
    _, expected, _ = reference_run

    def stop_after_first_epoch(m):
        if m["epoch"] == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(tiny(), workdir=tmp_path, device="cpu", report=stop_after_first_epoch)
    assert not (tmp_path / "metrics.json").exists()
    reports = []
    resumed = train(tiny(), workdir=tmp_path, device="cpu", report=reports.append)
    assert [r["epoch"] for r in reports] == [2]  # only new epochs are reported
    for key in ("loss", "knn_top1", "linear_top1", "test_knn_top1", "test_linear_top1", "params"):
        assert resumed[key] == expected[key], key


def test_same_seed_same_metrics_and_finished_run_returns_at_once(reference_run, tmp_path):
    workdir, expected, _ = reference_run
    again = train(tiny(), workdir=tmp_path, device="cpu")
    for key in ("loss", "knn_top1", "linear_top1", "test_linear_top1"):
        assert again[key] == expected[key], key
    reports = []
    cached = train(tiny(), workdir=workdir, device="cpu", report=reports.append)
    assert reports == [] and cached["test_linear_top1"] == expected["test_linear_top1"]


def test_other_recipe_in_same_workdir_is_refused(reference_run):
    workdir, _, _ = reference_run
    with pytest.raises(UserError, match="different recipe \\(differs in: temperature\\)"):
        train(tiny(temperature=0.5), workdir=workdir, device="cpu")


def test_nan_loss_stops_run_as_diverged(tmp_path):
    metrics = train(tiny(base_lr=1e30, epochs=3), workdir=tmp_path, device="cpu")
    assert metrics["state"] == "diverged" and metrics["diverged_epoch"] == 1
    assert "loss became" in metrics["error"]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["state"] == "diverged" and saved["diverged_epoch"] == 1
