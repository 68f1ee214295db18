"""The one place lightrecipe uses Optuna beyond its ask-and-tell API; `tests/search/store/test_optuna_seam.py` pins it.

Everything else in search/ drives Optuna through `study.ask()`, `trial.suggest_*`, `trial.report`,
`trial.set_user_attr` and `study.tell(number, ...)`. One need has no ask-and-tell form: a new driver taking
over a trial that a killed driver left RUNNING. Its params must come back as they were sampled (and any
param it had not sampled yet must be sampled now), so the space's define-by-run code runs again on the same
trial. `optuna.trial.Trial(study, trial_id)` does exactly that: it is a public class, but Optuna documents
its constructor as "not recommended" for direct use, and it takes the storage's internal trial id, which
only the storage's public id lookups (`get_study_id_from_name`, `get_trial_id_from_study_id_trial_number`)
give. Should a release change either, the pinning test fails before a sweep does.
"""

from __future__ import annotations

import optuna


def adopt(study: optuna.Study, storage: optuna.storages.BaseStorage, number: int) -> optuna.trial.Trial:
    """A live `Trial` for the existing trial `number` of `study` (RUNNING, left by a driver that died).

    `suggest_*` on it returns the stored value of a param that was sampled, and samples one that was not;
    `report`, `set_user_attr` and `study.tell(trial)` work as on a trial from `study.ask()`.
    """
    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    return optuna.trial.Trial(study, trial_id)
