"""`lightrecipe confirm` end to end: a planted sweep study (no training for the sweep itself), confirmed through the
CLI on the session's Ray with 2 seeds at 1 epoch, then resumed and refused as a user would see it."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from lightrecipe import cli
from lightrecipe.search.confirm import commands as confirm_commands
from lightrecipe.search.store import records
from lightrecipe.trainers.recipe import preset
from tests.search.helpers import ARCH, load

SOURCE = records.study_name("tiny", ARCH)
# The smallest honest run: digits at 32 px, a quarter of the train split (4 steps an epoch), one epoch.
TINY = dict(arch=ARCH, dataset="digits", image_size=32, batch_size=64, queue_size=128, data_fraction=0.25,
            probe_weight_decay=0.01, epochs=1)
SHORT = {0: 0.50, 1: 0.70, 2: 0.60}  # trial 0 the ResNet-50 settings; trial 1 the sweep's best searched


def plant_sweep(folder: Path) -> None:
    """A finished sweep study as `lightrecipe sweep` leaves it: attributes, recipes, values."""
    folder.mkdir(parents=True)
    study = optuna.create_study(storage=records.default_storage_url(str(folder)), study_name=SOURCE,
                                direction="maximize")
    for key, value in {records.SPACE: "tiny", records.ARCH: ARCH, records.MAX_EPOCHS: 1,
                       records.OBJECTIVE: records.DEFAULT_OBJECTIVE, records.STUDY_KEY: "planted"}.items():
        study.set_user_attr(key, value)
    for number, value in SHORT.items():
        recipe = (preset("resnet50-mocov2", **TINY) if number == 0 else
                  preset("digits-small", **TINY, temperature=0.1 * number))
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.COMPLETE, value=value, params={"temperature": recipe.temperature},
            distributions={"temperature": FloatDistribution(0.05, 0.5, log=True)},
            user_attrs={records.STATE: "complete", records.BASELINE: number == 0, records.RECIPE: recipe.to_dict(),
                        records.PARAMS_COUNT: 1, records.RUN_DIR: f"/nowhere/{number}"}))


def tracked_runs(out: Path, experiment: str) -> list[tuple[int, int]]:
    """(source trial, seed) of each run MLflow holds for a confirm study, from the tags it was given."""
    import mlflow

    mlflow.set_tracking_uri((out / "mlruns").as_uri())
    try:
        runs = mlflow.search_runs(experiment_names=[experiment], output_format="list")
    finally:
        mlflow.set_tracking_uri(None)
    assert all(r.data.tags["kind"] == "confirm" and r.data.tags["state"] == "complete" for r in runs)
    return sorted((int(r.data.tags["source_trial"]), int(r.data.tags["seed"])) for r in runs)


@pytest.mark.slow
def test_confirm_retrains_top_k_and_the_resnet50_settings_per_seed_and_resumes_exactly(ray_local, tmp_path, capsys):
    out = tmp_path / "sweep"
    plant_sweep(out)
    argv = ["confirm", str(out), "--top", "1", "--seeds", "2", "--epochs", "1", "--concurrency", "2",
            "--log-to", "mlflow"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "Kendall's tau" in printed and "random init (untrained)" in printed
    # Nothing is pruned in confirm: its line says so (and counts in the singular where there is one).
    assert (f"[{records.confirm_study_name(SOURCE)}] 4 trials to run (0 finished); 1 epoch, ASHA off: no rung before "
            "the last epoch, concurrency 2") in printed

    study = load(out, records.confirm_study_name(SOURCE))
    assert study.user_attrs[records.KIND] == "confirm" and study.user_attrs[records.SOURCE_STUDY] == SOURCE
    assert study.user_attrs[records.CONFIRM] == {"top": 1, "seeds": 2, "epochs": 1}
    assert study.metric_names == [records.DEFAULT_OBJECTIVE]  # the dashboard names the objective
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    runs = sorted((t.user_attrs[records.SOURCE_TRIAL], t.user_attrs[records.SEED], t.user_attrs[records.ROLE])
                  for t in trials)
    # seeds 1 and 2: the sweep trained with seed 0, and a confirm run on it would repeat its draw
    assert runs == [(0, 1, "resnet50"), (0, 2, "resnet50"), (1, 1, "searched"), (1, 2, "searched")]
    assert study.user_attrs[records.CONFIRM_SEEDS] == [1, 2]
    for t in trials:
        recipe = t.user_attrs[records.RECIPE]
        assert recipe["seed"] == t.user_attrs[records.SEED] and recipe["epochs"] == 1
        assert recipe["temperature"] == pytest.approx(0.2 if t.user_attrs[records.SOURCE_TRIAL] == 0 else 0.1)
        assert math.isfinite(t.user_attrs[records.METRICS]["test_linear_top1"])  # the test split is scored here
        assert (Path(t.user_attrs[records.RUN_DIR]) / "metrics.json").is_file()
    assert len({t.user_attrs[records.RUN_DIR] for t in trials}) == 4  # one run folder per seed
    floor = study.user_attrs[records.FLOOR]
    assert [row["seed"] for row in floor] == [1, 2]  # the floor on the confirm runs' own seeds
    assert tracked_runs(out, study.study_name) == [(s, seed) for s, seed, _ in runs]  # in MLflow, source and seed
    assert all(0 < row["knn_top1"] <= 1 for row in floor)

    assert cli.main(argv) == 2  # a second run must say --resume, never train the same recipes again
    assert "pass --resume" in capsys.readouterr().err
    assert cli.main([*argv, "--resume"]) == 0
    assert "already has 4 finished trials" in capsys.readouterr().out
    assert len(load(out, records.confirm_study_name(SOURCE)).trials) == 4
    assert cli.main([*argv[:-2], "--seeds", "3", "--resume"]) == 2  # resuming with other settings is refused
    assert "--seeds" in capsys.readouterr().err


def test_confirm_seeds_are_disjoint_from_every_seed_the_sweep_trained_with(tmp_path):
    from lightrecipe.search.confirm.run import confirm_seeds

    plant_sweep(tmp_path / "sweep")
    source = load(tmp_path / "sweep", SOURCE)
    assert confirm_seeds(source, 3) == [1, 2, 3]  # every planted trial trained with seed 0
    recipe = dict(source.trials[1].user_attrs[records.RECIPE], seed=2)
    source.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=0.4, user_attrs={records.RECIPE: recipe}))
    assert confirm_seeds(source, 3) == [1, 3, 4]


def test_confirm_flags_are_the_sweeps_own_and_bad_input_is_one_line(tmp_path, capsys):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    sweep_actions = {a.dest: a for a in sub["sweep"]._actions}
    confirm_actions = {a.dest: a for a in sub["confirm"]._actions}
    for dest in ("address", "concurrency", "cpus_per_trial", "gpus_per_trial", "workers_per_trial", "storage",
                 "resume", "time_budget"):
        assert confirm_actions[dest] is sweep_actions[dest], dest  # one definition, shared
    args = parser.parse_args(["confirm", str(tmp_path), "--workers-per-trial", "2", "--gpus-per-trial", "1"])
    run = confirm_commands.settings_from(args).run  # what run_study gets: each confirm run as a 2-worker Ray Train run
    assert (run.workers_per_trial, run.gpus_per_trial) == (2, 1.0)
    assert cli.main(["confirm", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert cli.main(["confirm", str(tmp_path), "--seeds", "1"]) == 2
    assert "--seeds must be at least 2" in capsys.readouterr().err
    assert cli.main(["confirm", str(tmp_path), "--cpus-per-trial", "0"]) == 2  # the sweep's own check
    assert "--cpus-per-trial must be above 0" in capsys.readouterr().err
    assert cli.main(["confirm", str(tmp_path)]) == 2
    assert "holds no trial database" in capsys.readouterr().err


@pytest.mark.slow
def test_confirm_with_two_workers_a_trial_on_two_cpus_runs_one_trial_at_a_time(ray_local, tmp_path):
    from lightrecipe.search.sweep import concurrency_for

    args = cli.build_parser().parse_args(["confirm", str(tmp_path), "--workers-per-trial", "2"])
    assert concurrency_for(confirm_commands.settings_from(args).run) == 1  # not 2 trials, one waiting forever
    args = cli.build_parser().parse_args(["confirm", str(tmp_path)])
    assert concurrency_for(confirm_commands.settings_from(args).run) == 2


def old_sweep(folder: Path, searched: dict) -> optuna.Study:
    """A sweep study recorded before fitting: its ResNet-50 baseline has MoCo v2's queue and batch (it failed on
    the digits); one complete searched trial with the recipe `searched`."""
    folder.mkdir(parents=True)
    study = optuna.create_study(storage=records.default_storage_url(str(folder)), study_name=SOURCE,
                                direction="maximize")
    overrides = {"arch": ARCH, "epochs": 1, "image_size": 32}
    for key, value in {records.SPACE: "tiny", records.ARCH: ARCH, records.MAX_EPOCHS: 1,
                       records.OBJECTIVE: records.DEFAULT_OBJECTIVE, records.STUDY_KEY: "old",
                       records.SWEEP: {"overrides": overrides}, records.SPACE_SPEC: {"fixed": {"epochs": 1}}}.items():
        study.set_user_attr(key, value)
    baseline = preset("resnet50-mocov2", **overrides)
    for number, (recipe, state) in enumerate([(baseline.to_dict(), TrialState.FAIL), (searched, TrialState.COMPLETE)]):
        study.add_trial(optuna.trial.create_trial(
            state=state, value=0.7 if state == TrialState.COMPLETE else None, params={},
            distributions={}, user_attrs={records.STATE: state.name.lower(), records.BASELINE: number == 0,
                                          records.RECIPE: recipe, records.RUN_DIR: f"/nowhere/{number}"}))
    return study


def test_a_baseline_recorded_before_fitting_is_fitted_for_confirm(tmp_path):
    from lightrecipe.search.confirm.run import fitted_baseline, picks
    from lightrecipe.trainers.fit import TrainImages

    study = old_sweep(tmp_path / "sweep", preset("digits-small", **TINY).to_dict())
    searched, baseline = picks(study, 1)
    fit_to = TrainImages()
    fitted = fitted_baseline(study, baseline, fit_to)
    assert (fitted.recipe["queue_size"], fitted.recipe["batch_size"]) == (128, 64)
    assert fitted.fitted == {"train_images": 1078, "changed": {"batch_size": [256, 64], "queue_size": [65536, 128]}}
    assert {k: v for k, v in fitted.recipe.items() if k not in ("queue_size", "batch_size")} == \
        {k: v for k, v in baseline.recipe.items() if k not in ("queue_size", "batch_size")}
    assert fitted_baseline(study, searched, fit_to) == searched  # a searched recipe is trained as recorded
    runs = dict(baseline.recipe, queue_size=256, batch_size=64)  # a recorded baseline that runs is kept
    assert fitted_baseline(study, dataclasses.replace(baseline, recipe=runs), fit_to).recipe == runs


def test_a_recipe_that_cannot_fit_its_data_stops_confirm_before_any_run(tmp_path, capsys):
    out = tmp_path / "sweep"
    old_sweep(out, preset("digits-small", **{**TINY, "data_fraction": 0.1}).to_dict())  # queue 128 of 109 images
    assert cli.main(["confirm", str(out), "--top", "1", "--seeds", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"trial #1 of '{SOURCE}' does not fit the data: recipe field 'queue_size' " \
        "(128) is not smaller than the 109 training images" in err
    assert records.confirm_study_name(SOURCE) not in {s.study_name for s in optuna.get_all_study_summaries(
        records.default_storage_url(str(out)))}  # nothing enqueued: the same command runs once the recipe fits
