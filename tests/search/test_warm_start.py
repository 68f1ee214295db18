"""`--warm-start`: the source's top recipes enqueued after the baseline, once, each with its source; bad sources
end with one line and exit 2 before anything runs. Real Optuna databases planted in tmp_path, no Ray."""

from __future__ import annotations

import io
from pathlib import Path

import optuna
import pytest

from lightrecipe import cli
from lightrecipe.search.planning import plan_studies
from lightrecipe.search.settings import SweepSettings
from lightrecipe.search.store import records
from lightrecipe.search.store.storage import open_storage
from lightrecipe.search.store.study import create_study
from lightrecipe.spaces import Float, Space, load_space

from .helpers import ARCH, TINY_SPACE

SOURCE_ARCH = "resnet10t"
TINY = {"dataset": "digits", "image_size": 32, "batch_size": 64, "queue_size": 256}
TINY_FLAGS = [f for k, v in TINY.items() for f in ("--set", f"{k}={v}")]


def plant_source(folder: Path, values: dict[float, float | None], *, arch: str = SOURCE_ARCH,
                 confirmed: dict[int, list[float | None]] | None = None) -> optuna.Study:
    """A finished sweep study of a wider tiny space (temperature in [0.01, 1]): a baseline (value 0.99, never a
    pick), then one trial per temperature -> value (None: pruned); `confirmed`: source trial -> the values
    of its confirm runs (None: a seed that failed)."""
    folder.mkdir(parents=True, exist_ok=True)
    storage = open_storage(records.default_storage_url(str(folder)))
    spec = {"name": "tiny", "base": "digits-small", "fixed": {"epochs": 2},
            "params": {"temperature": {"float": [0.01, 1.0], "log": True}}}
    study = create_study(storage, space="tiny", arch=arch, max_epochs=2, space_spec=spec, sweep={})
    wide = {"temperature": optuna.distributions.FloatDistribution(0.01, 1.0, log=True)}
    for i, (temperature, value) in enumerate([(0.2, 0.99), *values.items()]):
        state = optuna.trial.TrialState.PRUNED if value is None else optuna.trial.TrialState.COMPLETE
        study.add_trial(optuna.trial.create_trial(
            params={"temperature": temperature}, distributions=wide, value=value, state=state,
            user_attrs={records.BASELINE: i == 0, records.RECIPE: {"temperature": temperature, "epochs": 2}}))
    if confirmed:
        confirm = optuna.create_study(storage=storage, study_name=records.confirm_study_name(study.study_name),
                                      direction="maximize")
        confirm.set_user_attr(records.KIND, records.KIND_CONFIRM)
        for number, runs in confirmed.items():
            for value in runs:
                state = optuna.trial.TrialState.FAIL if value is None else optuna.trial.TrialState.COMPLETE
                confirm.add_trial(optuna.trial.create_trial(value=value, state=state, user_attrs={
                    records.ROLE: records.ROLE_SEARCHED, records.SOURCE_TRIAL: number}))
    return study


def plan(out: Path, warm: str, *, resume: bool = False, top: int = 3, space=None) -> tuple[optuna.Study, str]:
    space = space or load_space(TINY_SPACE)
    s = SweepSettings(space=space, archs=(ARCH,), trials=6, out=out, overrides=TINY, warm_start=warm,
                      warm_top=top, resume=resume)
    out.mkdir(parents=True, exist_ok=True)
    storage = open_storage(records.default_storage_url(str(out)))
    printed = io.StringIO()
    plan_studies(space, s, storage, printed)
    return optuna.load_study(study_name=records.study_name(space.name, ARCH), storage=storage), printed.getvalue()


def test_the_top_recipes_follow_the_baseline_with_their_source_and_changes(tmp_path):
    source = tmp_path / "src"
    plant_source(source, {0.1: 0.5, 0.04: 0.9, 0.3: None, 0.15: 0.7, 0.25: 0.6})
    study, printed = plan(tmp_path / "new", f"{source}:{SOURCE_ARCH}")
    trials = study.trials
    assert all(t.state == optuna.trial.TrialState.WAITING for t in trials)
    assert trials[0].user_attrs[records.BASELINE] is True
    warm = trials[1:]
    # by value: #2 (0.9), #4 (0.7), #5 (0.6); the baseline's 0.99 and the pruned #3 are never picks
    assert [t.user_attrs[records.WARM_SOURCE_TRIAL] for t in warm] == [2, 4, 5]
    assert {t.user_attrs[records.WARM_SOURCE_STUDY] for t in warm} == {f"tiny/{SOURCE_ARCH}"}
    assert {t.user_attrs[records.WARM_SOURCE] for t in warm} == {str(source)}
    assert [t.system_attrs["fixed_params"] for t in warm] == [{"temperature": 0.05}, {"temperature": 0.15},
                                                             {"temperature": 0.25}]
    assert warm[0].user_attrs[records.WARM_CHANGES] == ["temperature 0.04 -> 0.05 (clipped to [0.05, 0.5])"]
    assert warm[1].user_attrs[records.WARM_CHANGES] == []
    assert "temperature 0.04 -> 0.05 (clipped to [0.05, 0.5])" in printed
    assert study.user_attrs[records.WARM_START] == {"source": str(source), "study": f"tiny/{SOURCE_ARCH}",
                                                    "top": 3, "trials": [2, 4, 5]}


def test_confirmed_winners_come_first_by_their_confirmed_mean(tmp_path):
    source = tmp_path / "src"
    plant_source(source, {0.1: 0.9, 0.15: 0.8, 0.25: 0.7}, confirmed={1: [0.6, 0.6], 3: [0.9, 0.8]})
    study, _ = plan(tmp_path / "new", str(source), top=3)  # one sweep study there: no :ARCH needed
    assert [t.user_attrs[records.WARM_SOURCE_TRIAL] for t in study.trials[1:]] == [3, 1, 2]


def test_a_confirmed_recipe_with_a_failed_seed_ranks_after_those_that_completed_every_seed(tmp_path):
    # the report's rule (lightrecipe.ranking): #3's one seed beats #1's mean, but its other seed failed
    source = tmp_path / "src"
    plant_source(source, {0.1: 0.9, 0.15: 0.8, 0.25: 0.7}, confirmed={1: [0.6, 0.6], 3: [0.95, None]})
    study, _ = plan(tmp_path / "new", str(source), top=3)
    assert [t.user_attrs[records.WARM_SOURCE_TRIAL] for t in study.trials[1:]] == [1, 3, 2]


def test_resume_enqueues_nothing_twice(tmp_path):
    source = tmp_path / "src"
    plant_source(source, {0.1: 0.5, 0.15: 0.7})
    out = tmp_path / "new"
    first, _ = plan(out, f"{source}:{SOURCE_ARCH}")
    trial = first.ask()  # the baseline starts, so the study is not deleted as never started
    assert trial.user_attrs[records.BASELINE] is True
    again, printed = plan(out, f"{source}:{SOURCE_ARCH}", resume=True)
    assert len(again.trials) == len(first.trials) == 3 and printed == ""
    assert [t.user_attrs.get(records.WARM_SOURCE_TRIAL) for t in again.trials] == [None, 2, 1]


def test_a_recipe_equal_to_the_baseline_is_not_enqueued_twice(tmp_path):
    source = tmp_path / "src"
    plant_source(source, {0.2: 0.8, 0.1: 0.7})
    study, printed = plan(tmp_path / "new", str(source))
    assert [t.user_attrs.get(records.WARM_SOURCE_TRIAL) for t in study.trials] == [None, 2]
    assert "#1 skipped: maps to a recipe already enqueued" in printed


def test_a_source_sharing_no_knob_is_refused(tmp_path):
    source = tmp_path / "src"
    plant_source(source, {0.1: 0.5})
    other = Space(name="lr-only", base="digits-small", fixed={"epochs": 2}, params={"base_lr": Float(0.01, 0.1)})
    with pytest.raises(Exception, match="none of which space 'lr-only' searches"):
        plan(tmp_path / "new", str(source), space=other)
    assert records.study_name("lr-only", ARCH) not in optuna.get_all_study_names(
        records.default_storage_url(str(tmp_path / "new")))  # checked before the study was created


@pytest.mark.parametrize("case,message", [
    ("no complete", "has no complete searched trial to start from"),
    ("unknown arch", "no study of arch 'efficientnet_b0' there; valid: resnet10t"),
    ("no sweep folder", "is no sweep folder"),
    ("two studies", "name one as SOURCE:ARCH, valid: resnet10t, resnet18"),
    ("top 0", "--warm-top must be at least 1"),
])
def test_bad_sources_end_with_one_line_and_exit_2(tmp_path, capsys, case, message):
    source = tmp_path / "src"
    warm = str(source)
    extra = []
    if case == "no complete":
        plant_source(source, {0.1: None})
    elif case == "unknown arch":
        plant_source(source, {0.1: 0.5})
        warm = f"{source}:efficientnet_b0"
    elif case == "no sweep folder":
        source.mkdir()
    elif case == "two studies":
        plant_source(source, {0.1: 0.5})
        plant_source(source, {0.1: 0.5}, arch="resnet18")
    else:
        plant_source(source, {0.1: 0.5})
        extra = ["--warm-top", "0"]
    argv = ["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "4", "--epochs", "2",
            "--out", str(tmp_path / "new"), *TINY_FLAGS, "--warm-start", warm, *extra]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_lr_sweep_takes_warm_start_and_checks_it_before_anything_runs(tmp_path):
    import lightrecipe as lr

    source = tmp_path / "src"
    plant_source(source, {0.1: None})  # only a pruned trial: nothing to start from
    with pytest.raises(lr.UserError, match="has no complete searched trial"):
        lr.sweep(TINY_SPACE, archs=[ARCH], trials=3, out=tmp_path / "new", overrides=TINY, warm_start=str(source))


@pytest.mark.slow
def test_a_warm_started_sweep_runs_its_recipes_once_and_resume_adds_none(ray_local, tmp_path, capsys):
    import lightrecipe as lr

    from .helpers import SIZES, load

    source = tmp_path / "src"
    plant_source(source, {0.04: 0.9, 0.3: 0.5})
    out = tmp_path / "new"
    overrides = {**TINY, "data_fraction": 0.25, "probe_weight_decay": 0.01, "epochs": 1}
    lr.sweep(TINY_SPACE, archs=[ARCH], trials=2, out=out, overrides=overrides, warm_start=f"{source}:{SOURCE_ARCH}",
             warm_top=2, startup_trials=0)
    assert "temperature 0.04 -> 0.05 (clipped to [0.05, 0.5])" in capsys.readouterr().out
    argv = ["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "4", "--out", str(out), "--set", "dataset=digits",
            *SIZES, "--set", "epochs=1", "--warm-start", f"{source}:{SOURCE_ARCH}", "--warm-top", "2", "--resume"]
    assert cli.main(argv) == 0
    trials = load(out, records.study_name("tiny", ARCH)).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 4
    assert [t.user_attrs.get(records.WARM_SOURCE_TRIAL) for t in trials] == [None, 1, 2, None]
    assert [t.params["temperature"] for t in trials[:3]] == [0.2, 0.05, 0.3]
    assert trials[1].user_attrs[records.RECIPE]["temperature"] == 0.05  # trained what was enqueued


def test_of_two_source_studies_of_one_arch_the_one_of_the_target_space_is_taken(tmp_path):
    source = tmp_path / "src"
    plant_source(source, {0.1: 0.5})
    storage = open_storage(records.default_storage_url(str(source)))
    other = create_study(storage, space="other", arch=SOURCE_ARCH, max_epochs=2, space_spec={}, sweep={})
    other.add_trial(optuna.trial.create_trial(params={"temperature": 0.3}, value=0.9, distributions={
        "temperature": optuna.distributions.FloatDistribution(0.01, 1.0)}))
    study, _ = plan(tmp_path / "new", f"{source}:{SOURCE_ARCH}")
    assert [t.user_attrs.get(records.WARM_SOURCE_STUDY) for t in study.trials] == [None, f"tiny/{SOURCE_ARCH}"]
