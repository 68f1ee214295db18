"""`lightrecipe train --log-to`: one real epoch on the bundled digits, logged through MLflow's, tensorboardX's and
W&B's plain clients and read back with MLflow's search API, TensorBoard's EventAccumulator and W&B's offline run
folder."""

from __future__ import annotations

import json

import pytest

from lightrecipe import cli
from lightrecipe.trainers.recipe import Recipe
from lightrecipe.trainers.run import trackers
from tests import wandb_offline

pytestmark = pytest.mark.slow
SECRET = "s3cr3t-must-not-leave"
TINY = ["--preset", "digits-small", "--set", "epochs=2", "--set", "data_fraction=0.25", "--set", "batch_size=64",
        "--set", "queue_size=128", "--set", "probe_weight_decay=0.01", "--device", "cpu"]


def test_a_train_run_logs_recipe_curves_final_metrics_state_and_tags_to_every_tracker(tmp_path, capsys,
                                                                                       monkeypatch):
    import mlflow
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("PGPASSWORD", SECRET)
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    wandb_offline.offline(monkeypatch, tmp_path)
    out = tmp_path / "run"
    assert cli.main(["train", *TINY, "--out", str(out), "--log-to", "mlflow", "--log-to", "tensorboard",
                     "--log-to", "wandb:my-project"]) == 0
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

    (run,) = wandb_offline.read_runs(out / "wandb")  # default: next to the run
    assert run.project == "my-project" and run.exit_code == 0
    assert {"arch:mobilenetv3_small_050", "kind:train"} <= set(run.tags)
    assert run.config[trackers.RECIPE_CONFIG] == json.loads(recipe.to_json())
    assert run.config[trackers.STATE_TAG] == "complete"
    for name in trackers.EPOCH_METRICS:
        assert sorted(run.history[name]) == [1, 2], name
    for name in ("linear_top1", "test_knn_top1", "test_linear_top1"):
        assert run.history[name] == {2: pytest.approx(final[name])}, name
    (artifact,) = run.artifacts
    (entry,) = artifact.manifest.contents
    assert artifact.type == "recipe" and entry.path == trackers.RECIPE_ARTIFACT
    assert entry.digest == md5_b64(recipe.to_yaml()) == md5_b64((run.folder / "files" / entry.path).read_text())
    for folder in (out / "mlruns", out / "tensorboard", out / "wandb", tmp_path / "wandb_data_dir"):
        for path in (p for p in folder.rglob("*") if p.is_file()):
            assert SECRET.encode() not in path.read_bytes(), path


def md5_b64(text: str) -> str:
    """How a W&B artifact manifest writes a file's digest."""
    import base64
    import hashlib

    return base64.b64encode(hashlib.md5(text.encode()).digest()).decode()


def test_train_names_an_unknown_tracker_and_a_missing_extra_in_one_line(tmp_path, capsys, monkeypatch):
    assert cli.main(["train", *TINY, "--out", str(tmp_path), "--log-to", "comet"]) == 2
    assert "unknown tracker 'comet'" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "tensorboardX", None)  # the extra not installed
    assert cli.main(["train", *TINY, "--out", str(tmp_path), "--log-to", "tensorboard"]) == 2
    assert "pip install -e '.[tensorboard]'" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "wandb", None)
    assert cli.main(["train", *TINY, "--out", str(tmp_path), "--log-to", "wandb:p"]) == 2
    assert "--log-to wandb needs the wandb extra: pip install -e '.[wandb]'" in capsys.readouterr().err
