"""Pins the one use of Optuna beyond ask-and-tell (search/optuna_seam.py): taking over a RUNNING trial."""

import optuna

from lightrecipe.search.store.optuna_seam import adopt


def test_an_adopted_trial_reads_back_its_params_samples_the_rest_and_can_be_told(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path / 'trials.db'}"
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    study.ask()  # trial 0, another trial in the study
    old = study.ask()
    lr = old.suggest_float("lr", 1e-3, 1.0, log=True)
    old.set_user_attr("run_dir", "/runs/trial-0001")
    old.report(0.2, step=1)  # then its driver is killed: the trial stays RUNNING

    storage = optuna.storages.RDBStorage(url)  # a new driver, a new connection
    again = optuna.load_study(study_name="s", storage=storage)
    trial = adopt(again, storage, old.number)
    assert trial.number == old.number and trial.user_attrs == {"run_dir": "/runs/trial-0001"}
    assert trial.suggest_float("lr", 1e-3, 1.0, log=True) == lr  # the stored value comes back
    wd = trial.suggest_float("wd", 1e-6, 1e-3, log=True)  # one the old driver had not sampled yet
    trial.report(0.4, step=2)
    again.tell(trial, 0.5)
    frozen = again.trials[old.number]
    assert frozen.state == optuna.trial.TrialState.COMPLETE and frozen.value == 0.5
    assert frozen.params == {"lr": lr, "wd": wd} and frozen.intermediate_values == {1: 0.2, 2: 0.4}
    assert len(again.trials) == 2
