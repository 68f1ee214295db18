"""The sampler of every study: Optuna's TPE, configured once here for sweeps and their tests.

- multivariate (Falkner et al. 2018; Optuna's TPESampler docs: "reported to outperform the independent
  TPE"): recipe knobs interact (lr with batch and warm-up, temperature with smoothing), so they are
  modelled jointly;
- group: a space with `when:` params is a conditional space, and plain multivariate TPE models only the
  params every trial has, sampling a conditional one independently (Optuna's own message: "`multivariate=
  True,group=False` does not support dynamic search space"). Grouped TPE splits the space into the sets
  of params that occur together and models each set jointly;
- constant liar: several trials run at once; a running trial counts as a bad result, so the next
  suggestion does not land on top of it;
- n_startup_trials: random samples before TPE models anything (`--startup-trials`; Optuna's default 10);
- seed: the same sweep samples the same first recipes (`--seed`; `sweep.resumed_seed` on resume).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a sampler is made: the CLI reads the default below without loading Optuna
    import optuna

DEFAULT_STARTUP_TRIALS = 10  # Optuna's TPESampler default n_startup_trials


def make_sampler(seed: int | None, startup_trials: int = DEFAULT_STARTUP_TRIALS) -> "optuna.samplers.TPESampler":
    import optuna

    with warnings.catch_warnings():
        # `group` is marked experimental in Optuna 5; it is what conditional spaces need (see above).
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            multivariate=True, group=True, constant_liar=True, n_startup_trials=startup_trials, seed=seed
        )
