"""`--log-to` on a sweep: one real two-trial sweep on the session's Ray logging to MLflow (a local file store),
TensorBoard (event files) and W&B (offline run folders), each read back with its own library (W&B's records
with its own protobuf classes), and no secret of the driver in any."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lightrecipe import cli
from lightrecipe.search.store import records
from lightrecipe.search.store.study import slug
from lightrecipe.trainers.run import trackers
from tests import wandb_offline
from tests.search.helpers import ARCH, DATA, TINY_SPACE, load

pytestmark = pytest.mark.slow
STUDY = records.study_name("tiny", ARCH)
SECRET = "s3cr3t-must-not-leave"
EPOCH_NAMES = ("knn_top1", "loss", "lr", "feature_rank", "images_per_s")
FINAL_NAMES = ("linear_top1", "test_knn_top1", "test_linear_top1")


@pytest.fixture(scope="module")
def swept(ray_local, tmp_path_factory):
    """A two-trial, two-epoch sweep with every tracker, run with secrets where a careless client finds them:
    an API key and a database password in the environment, and a password in the command line."""
    out = tmp_path_factory.mktemp("trk") / "sweep"
    mp = pytest.MonkeyPatch()
    wandb_offline.offline(mp, out.parent)
    mp.setenv("WANDB_API_KEY", SECRET)
    mp.setenv("PGPASSWORD", SECRET)
    mp.setattr(sys, "argv", ["lightrecipe", "sweep", "--storage", f"postgresql://u:{SECRET}@db/x"])
    try:
        code = cli.main(["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "2", "--epochs", "2",
                         "--grace-epochs", "2", "--out", str(out), "--log-to", "mlflow",
                         "--log-to", f"tensorboard:{out / 'tb'}", "--log-to", "wandb:sweep-project", *DATA])
    finally:
        mp.undo()
    assert code == 0
    return out, load(out, STUDY)


def no_secret_in(folder: Path) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


def test_mlflow_holds_each_trial_with_params_recipe_curves_final_metrics_state_tags_and_recipe_yaml(swept):
    import mlflow
    from mlflow import MlflowClient

    out, study = swept
    uri = (out / "mlruns").as_uri()
    mlflow.set_tracking_uri(uri)
    try:
        runs = mlflow.search_runs(experiment_names=[STUDY], output_format="list")
    finally:
        mlflow.set_tracking_uri(None)
    client = MlflowClient(tracking_uri=uri)
    by_trial = {int(r.data.tags["trial"]): r for r in runs}
    assert sorted(by_trial) == [t.number for t in study.trials] == [0, 1]
    for t in study.trials:
        run = by_trial[t.number]
        assert run.data.tags["study"] == STUDY and run.data.tags["arch"] == ARCH and run.data.tags["kind"] == "sweep"
        assert run.data.tags[trackers.STATE_TAG] == t.user_attrs[records.STATE] == "complete"
        assert run.data.tags["baseline"] == str(t.number == 0).lower()
        recipe = t.user_attrs[records.RECIPE]
        assert run.data.params["recipe/temperature"] == str(recipe["temperature"])
        assert run.data.params["recipe/arch"] == ARCH
        assert float(run.data.params["params/temperature"]) == pytest.approx(t.params["temperature"])
        for name in EPOCH_NAMES:  # one point per epoch, at the epoch
            steps = [m.step for m in client.get_metric_history(run.info.run_id, name)]
            assert sorted(set(steps)) == [1, 2], name
        final = t.user_attrs[records.METRICS]
        for name in FINAL_NAMES:
            assert run.data.metrics[name] == pytest.approx(final[name])
        text = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/{trackers.RECIPE_ARTIFACT}")
        assert trackers.recipe_yaml(recipe) == text
    no_secret_in(out / "mlruns")


def test_tensorboard_event_files_hold_each_trial_as_its_library_reads_them(swept):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, study = swept
    for t in study.trials:
        folder = out / "tb" / slug(STUDY) / f"trial-{t.number:04d}"  # one folder per study
        events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
        events.Reload()
        for name in EPOCH_NAMES:
            steps = [e.step for e in events.Scalars(f"ray/tune/{name}")]
            assert steps == [1, 2], name
        final = t.user_attrs[records.METRICS]
        for name in FINAL_NAMES:
            (point,) = events.Scalars(f"ray/tune/{name}")
            assert point.step == 2 and point.value == pytest.approx(final[name], rel=1e-6)
        text = {tag: events.Tensors(tag)[-1].tensor_proto.string_val[0].decode()
                for tag in events.Tags()["tensors"]}
        assert text[f"{trackers.RECIPE_ARTIFACT}/text_summary"] == trackers.recipe_yaml(t.user_attrs[records.RECIPE])
        assert text[f"{trackers.STATE_TAG}/text_summary"] == "complete"
        assert f'"study": "{STUDY}"' in text["tags/text_summary"] and f'"trial": "{t.number}"' in text["tags/text_summary"]
        assert "temperature" in text["params/text_summary"]
    no_secret_in(out / "tb")


def test_wandb_offline_runs_hold_each_trial_with_config_curves_final_metrics_state_tags_and_recipe(swept):
    out, study = swept
    by_trial = {r.config["number"]: r for r in wandb_offline.read_runs(out / "wandb")}  # default: in the sweep folder
    assert sorted(by_trial) == [t.number for t in study.trials] == [0, 1]
    for t in study.trials:
        run = by_trial[t.number]
        assert run.project == "sweep-project" and run.group == STUDY and run.name == f"trial-{t.number:04d}"
        assert {f"study:{STUDY}", f"arch:{ARCH}", "kind:sweep", f"trial:{t.number}"} <= set(run.tags)
        assert f"baseline:{str(t.number == 0).lower()}" in run.tags
        recipe = t.user_attrs[records.RECIPE]
        assert run.config[trackers.RECIPE_CONFIG] == recipe
        assert run.config["params"]["temperature"] == pytest.approx(t.params["temperature"])
        assert run.config[trackers.STATE_TAG] == t.user_attrs[records.STATE] == "complete"
        for name in EPOCH_NAMES:  # one point per epoch, at the epoch
            assert sorted(run.history[name]) == [1, 2], name
        final = t.user_attrs[records.METRICS]
        for name in FINAL_NAMES:
            assert run.history[name] == {2: pytest.approx(final[name])}, name
        (artifact,) = run.artifacts
        (entry,) = artifact.manifest.contents
        assert artifact.type == "recipe" and entry.path == trackers.RECIPE_ARTIFACT
        assert (run.folder / "files" / entry.path).read_text() == trackers.recipe_yaml(recipe)
        assert run.exit_code == 0
    no_secret_in(out / "wandb")


def test_an_unknown_tracker_or_a_missing_extra_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    argv = ["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "1", "--out", str(tmp_path)]
    assert cli.main([*argv, "--log-to", "neptune"]) == 2
    assert "unknown tracker 'neptune'; valid: mlflow[:URI], tensorboard[:DIR], wandb[:PROJECT]" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "mlflow", None)  # Python's own way to make an import fail: no extra
    assert cli.main([*argv, "--log-to", "mlflow"]) == 2
    assert "--log-to mlflow needs the mlflow extra: pip install -e '.[mlflow]'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "wandb", None)
    assert cli.main([*argv, "--log-to", "wandb"]) == 2
    assert "--log-to wandb needs the wandb extra: pip install -e '.[wandb]'" in capsys.readouterr().err
