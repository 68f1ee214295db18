"""`lightrecipe.ranking`: the one rule that names the winner of confirmed recipes, on image counts."""

import math

import numpy as np

from lightrecipe.ranking import Standing, as_images, winner_first


def test_scores_are_compared_as_the_images_they_stand_for():
    assert as_images(116 / 145, 145) == 116 and as_images(np.mean([0.7, 0.8, 0.9]), 10, 3) == 8
    assert as_images(0.1 + 0.2, math.nan) == as_images(0.3, math.nan)  # float noise: a tie


def test_every_seed_completed_first_then_confirmed_then_sweep_value_then_the_earlier_trial():
    standings = [
        Standing(all_seeds=False, confirmed=140, short=140, source_trial=0),  # best mean, but a seed failed
        Standing(all_seeds=True, confirmed=120, short=130, source_trial=5),
        Standing(all_seeds=True, confirmed=120, short=130, source_trial=2),  # the full tie: the earlier trial
        Standing(all_seeds=True, confirmed=120, short=135, source_trial=9),  # tie broken by the sweep value
        Standing(all_seeds=True, confirmed=math.nan, short=150, source_trial=1),  # unknown: last of its group
        Standing(all_seeds=True, confirmed=125, short=math.nan, source_trial=7),
    ]
    assert [standings[i].source_trial for i in winner_first(standings)] == [7, 9, 2, 5, 1, 0]
