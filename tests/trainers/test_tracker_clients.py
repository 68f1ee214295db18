"""`lightrecipe train --log-to`: one real epoch on the bundled digits, logged through MLflow's and tensorboardX's
plain clients and read back with MLflow's search API and TensorBoard's EventAccumulator."""

from __future__ import annotations

import json

import pytest

from lightrecipe import cli
from lightrecipe.trainers.recipe import Recipe
from lightrecipe.trainers.run import trackers

pytestmark = pytest.mark.slow
SECRET = "s3cr3t-must-not-leave"
TINY = ["--preset", "digits-small", "--set", "epochs=2", "--set", "data_fraction=0.25", "--set", "batch_size=64",
        "--set", "queue_size=128", "--set", "probe_weight_decay=0.01", "--device", "cpu"]


def test_a_train_run_logs_recipe_curves_final_metrics_state_and_tags_to_both_trackers(tmp_path, capsys,
                                                                                      monkeypatch):
    import mlflow
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("PGPASSWORD", SECRET)
    out = tmp_path / "run"
    assert cli.main(["train", *TINY, "--out", str(out), "--log-to", "mlflow", "--log-to", "tensorboard"]) == 0
    final = json.loads(capsys.readouterr().out.splitlines()[-1])
    recipe = Recipe.from_dict(json.loads((out / "recipe.json").read_text()))  # what the run trained

    mlflow.set_tracking_uri((out / "mlruns").as_uri())
    try:
        (run,) = mlflow.search_runs(experiment_names=["lightrecipe-train"], output_format="list")
    finally:
        mlflow.set_tracking_uri(None)
    assert run.data.tags["arch"] == "mobilenetv3_small_050" and run.data.tags["kind"] == "train"
    assert run.data.tags[trackers.STATE_TAG] == "complete" and run.info.status == "FINISHED"
    assert run.data.params["recipe/epochs"] == "2" and run.data.params["recipe/queue_size"] == "128"
    client = MlflowClient(tracking_uri=(out / "mlruns").as_uri())
    for name in trackers.EPOCH_METRICS:
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [1, 2], name
    for name in ("linear_top1", "test_knn_top1", "test_linear_top1"):
        assert run.data.metrics[name] == pytest.approx(final[name])
    text = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/{trackers.RECIPE_ARTIFACT}")
    assert text == recipe.to_yaml()

    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    for name in trackers.EPOCH_METRICS:
        assert [e.step for e in events.Scalars(name)] == [1, 2], name
    assert [e.value for e in events.Scalars("test_linear_top1")] == [pytest.approx(final["test_linear_top1"])]
    state = events.Tensors(f"{trackers.STATE_TAG}/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert state == "complete"
    for folder in (out / "mlruns", out / "tensorboard"):
        for path in (p for p in folder.rglob("*") if p.is_file()):
            assert SECRET.encode() not in path.read_bytes(), path


def test_train_names_an_unknown_tracker_and_a_missing_extra_in_one_line(tmp_path, capsys, monkeypatch):
    assert cli.main(["train", *TINY, "--out", str(tmp_path), "--log-to", "comet"]) == 2
    assert "unknown tracker 'comet'" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "tensorboardX", None)  # the extra not installed
    assert cli.main(["train", *TINY, "--out", str(tmp_path), "--log-to", "tensorboard"]) == 2
    assert "pip install -e '.[tensorboard]'" in capsys.readouterr().err
