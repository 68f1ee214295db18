"""A planted sweep folder with a random-init floor and a confirm study, shaped as records.py describes, with numbers
chosen so the "Does it hold up?" section can be checked against hand-computed values.

Sweep study (short schedule): trial 0 the ResNet-50 settings (0.50), searched trials 1..3 with val kNN 0.70,
0.65, 0.60 (short order 1 > 2 > 3 > 0). Confirm study: the top 3 and the ResNet-50 settings, 3 seeds each, at
18 epochs. Confirmed order: #2 (0.80 mean) > #1 (0.79) > #3 (0.60) > ResNet-50 settings (0.55): one swap among
four, so Kendall's tau is (5 - 1) / 6 = 2/3; #2 and #1 overlap (within noise), #2 is far above the ResNet-50
settings. Floor: 3 seeds at val kNN 0.70, 0.72, 0.74.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from lightrecipe.search.store import records
from tests.reports.sweepdb import BASELINE_PARAMS, Planted, build_study, recipe_dict

ARCH = "mobilenetv3_small_050"
SPACE = "tiny"
CONFIRM_EPOCHS = 18
SHORT = {0: 0.50, 1: 0.70, 2: 0.65, 3: 0.60}  # sweep trial number -> short-schedule val kNN
# source trial -> per-seed (val kNN, val linear, test kNN, test linear)
CONFIRMED = {
    1: [(0.78, 0.85, 0.77, 0.84), (0.80, 0.86, 0.79, 0.86), (0.79, 0.87, 0.78, 0.85)],
    2: [(0.79, 0.86, 0.80, 0.87), (0.81, 0.88, 0.82, 0.89), (0.80, 0.87, 0.81, 0.88)],
    3: [(0.59, 0.70, 0.58, 0.69), (0.61, 0.71, 0.60, 0.70), (0.60, 0.72, 0.59, 0.71)],
    0: [(0.54, 0.66, 0.53, 0.65), (0.55, 0.67, 0.54, 0.66), (0.56, 0.68, 0.55, 0.67)],
}
FLOOR = [(0.70, 0.75, 0.69, 0.74), (0.72, 0.76, 0.71, 0.75), (0.74, 0.77, 0.73, 0.76)]
T_975_DF2 = 4.302652729911275  # Student's t, 97.5% quantile, 2 degrees of freedom (tables)


def literal_interval(values):
    """Mean and 95% half-width written out: mean +- t(0.975, n-1) * s / sqrt(n), for n = 3."""
    x = np.asarray(values, dtype=float)
    return x.mean(), T_975_DF2 * x.std(ddof=1) / math.sqrt(len(x))


def _scores(values: tuple[float, float, float, float]) -> dict[str, float]:
    return dict(zip(records.FLOOR_METRICS, values))


def confirmed_sweep(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    url = records.default_storage_url(str(folder))
    params = [dict(BASELINE_PARAMS)] + [dict(BASELINE_PARAMS, temperature=t) for t in (0.1, 0.15, 0.3)]
    planted = [Planted(params[n], SHORT[n], baseline=n == 0, epochs=6) for n in range(4)]
    source = build_study(url, arch=ARCH, trials=planted, params_count=570_000, space=SPACE)
    source.set_user_attr(records.FLOOR, [{"seed": 0, **_scores(FLOOR[0])}])
    study = optuna.create_study(storage=url, study_name=records.confirm_study_name(source.study_name),
                                direction="maximize")
    for key, value in {records.SPACE: SPACE, records.ARCH: ARCH, records.KIND: records.KIND_CONFIRM,
                       records.SOURCE_STUDY: source.study_name, records.MAX_EPOCHS: CONFIRM_EPOCHS,
                       records.OBJECTIVE: records.DEFAULT_OBJECTIVE,
                       records.CONFIRM: {"top": 3, "seeds": 3, "epochs": CONFIRM_EPOCHS},
                       records.FLOOR: [{"seed": s, **_scores(v)} for s, v in enumerate(FLOOR)]}.items():
        study.set_user_attr(key, value)
    for source_trial, runs in CONFIRMED.items():
        for seed, values in enumerate(runs):
            recipe = dict(recipe_dict(ARCH, params[source_trial], seed), epochs=CONFIRM_EPOCHS)
            study.add_trial(optuna.trial.create_trial(
                state=TrialState.COMPLETE, value=values[0], params={}, distributions={},
                user_attrs={
                    records.STATE: "complete", records.ERROR: "", records.BASELINE: False,
                    records.RECIPE: recipe, records.METRICS: _scores(values), records.HISTORY: [],
                    records.PARAMS_COUNT: 570_000, records.RUN_DIR: f"/runs/confirm/{source_trial}/seed{seed}",
                    records.CONFIRM_RECIPE: recipe, records.SOURCE_TRIAL: source_trial, records.SEED: seed,
                    records.ROLE: records.ROLE_RESNET50 if source_trial == 0 else records.ROLE_SEARCHED,
                    records.SHORT_VALUE: SHORT[source_trial],
                }))
    return folder
