"""The sweep's TPE: `when:` params join the multivariate model once enough trials have them."""

from __future__ import annotations

import optuna

from lightrecipe.search.tune.sampler import make_sampler
from lightrecipe.spaces.space import Space

CONDITIONAL = Space.from_dict({
    "name": "conditional",
    "base": "digits-small",
    "fixed": {"queue_size": 256},
    "params": {
        "temperature": {"float": [0.05, 0.5], "log": True},
        "smoothing": {"choice": ["none", "topk"]},
        "smoothing_alpha": {"float": [0.01, 0.3], "when": {"smoothing": "topk"}},
        "smoothing_k": {"int": [1, 64], "log": True, "when": {"smoothing": "topk"}},
    },
})
CONDITIONAL_PARAMS = ("smoothing_alpha", "smoothing_k")


def objective(params: dict) -> float:
    """A made-up score that depends on the conditional params jointly."""
    score = 1.0 - abs(params["temperature"] - 0.1)
    if params["smoothing"] == "topk":
        score += 0.2 - abs(params["smoothing_alpha"] - 0.1) - abs(params["smoothing_k"] - 20) / 100
    return score


def run(study: optuna.Study, trials: int) -> list[optuna.trial.Trial]:
    asked = []
    for _ in range(trials):
        trial = study.ask()
        CONDITIONAL.suggest(trial)
        study.tell(trial, objective(trial.params))
        asked.append(trial)
    return asked


def test_when_params_are_sampled_by_the_joint_model_after_the_startup_trials():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=make_sampler(seed=1, startup_trials=6))
    startup = run(study, 6)
    assert all(t.relative_params == {} for t in startup)  # random start-up: nothing modelled yet
    assert sum("smoothing_k" in t.params for t in startup) >= 2  # the conditional params occur in the history
    later = [t for t in run(study, 10) if "smoothing_k" in t.params]
    assert later, "no later trial chose smoothing=topk"
    for t in later:
        for name in CONDITIONAL_PARAMS:  # sampled jointly (grouped TPE), not independently
            assert t.relative_params.get(name) == t.params[name], (name, t.number, t.relative_params)


def test_startup_trials_sets_when_tpe_starts_modelling():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=make_sampler(seed=1, startup_trials=3))
    trials = run(study, 5)
    assert [t.relative_params != {} for t in trials] == [False, False, False, True, True]


def test_a_negative_startup_trials_is_a_user_error(tmp_path, capsys):
    from lightrecipe import cli
    from tests.search.helpers import ARCH, DATA, TINY_SPACE

    argv = ["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "2", "--startup-trials", "-1",
            "--out", str(tmp_path / "sw"), *DATA]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == "lightrecipe: error: --startup-trials must be 0 or more, got -1\n"
