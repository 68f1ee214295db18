"""`lightrecipe confirm` end to end: a planted sweep study (no training for the sweep itself), confirmed through the
CLI on the session's Ray with 2 seeds at 1 epoch, then resumed and refused as a user would see it."""

from __future__ import annotations

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
