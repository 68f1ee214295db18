"""Where the random-init floor is measured: where the trials are scored (issue 21 item 11, issue 19 item 14)."""

from __future__ import annotations

import io

import optuna
import pytest

from lightrecipe.search import floor
from lightrecipe.search.settings import SweepSettings
from lightrecipe.trainers.recipe import Recipe

# digits at 32 px with one probe fit: the floor of a small MobileNet in a few seconds
RECIPE = Recipe(arch="mobilenetv3_small_050", image_size=32, batch_size=64, queue_size=256, data_fraction=0.25,
                probe_weight_decay=0.01)


def _settings(**kwargs) -> SweepSettings:
    return SweepSettings(space="tiny", archs=("mobilenetv3_small_050",), trials=2, out="unused", **kwargs)


def test_the_floor_runs_where_the_trials_run():
    assert floor.place_of(_settings()) == floor.Place(1.0, 0.0, on_ray=False)  # this machine's CPUs: the driver
    assert floor.place_of(_settings(address="10.0.0.1:6379", cpus_per_trial=4)) == floor.Place(4.0, 0.0, on_ray=True)
    assert floor.place_of(_settings(gpus_per_trial=0.5, cpus_per_trial=2)) == floor.Place(2.0, 0.5, on_ray=True)


@pytest.mark.slow
def test_on_a_cluster_the_floor_is_a_ray_task_beside_the_trials_and_scores_as_the_driver_does(ray_local):
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), direction="maximize")
    place = floor.place_of(_settings(address=ray_local))
    with floor.beside_the_trials(study, RECIPE, [0], place):
        assert study.user_attrs.get("floor") is None  # running beside the block, stored after it
    rows = floor.recorded(study)
    here = floor.measure(RECIPE, [0])
    assert [r["seed"] for r in rows] == [0]
    assert (rows[0]["device"], rows[0]["precision"]) == ("cpu", "fp32")  # named, as trials on CPU train
    assert rows[0]["knn_top1"] == here[0]["knn_top1"] and rows[0]["test_knn_top1"] == here[0]["test_knn_top1"]


@pytest.mark.slow
def test_on_this_machine_the_floor_is_a_driver_thread_that_no_trial_waits_for():
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), direction="maximize")
    pending = floor.start(study, RECIPE, [0], floor.place_of(_settings()))
    assert study.user_attrs.get("floor") is None  # started, not waited for: stored by finish, after the trials
    rows = pending.finish()
    assert [r["seed"] for r in rows] == [0] and floor.recorded(study) == rows
    assert rows[0]["knn_top1"] == floor.measure(RECIPE, [0])[0]["knn_top1"]  # the thread scores as the driver does


def test_a_floor_the_driver_thread_cannot_measure_is_one_line_and_stores_nothing(tmp_path):
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), direction="maximize", study_name="s")
    missing = Recipe(arch="mobilenetv3_small_050", dataset="imagefolder", data_root=str(tmp_path / "gone"))
    lines = io.StringIO()
    with floor.beside_the_trials(study, missing, [0], floor.place_of(_settings()), lines):
        pass
    assert floor.recorded(study) == []
    assert lines.getvalue().startswith("[s] random-init floor not measured: ")
    assert lines.getvalue().rstrip().endswith("--resume measures it again") and str(tmp_path / "gone") in lines.getvalue()
