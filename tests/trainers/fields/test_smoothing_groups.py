"""`smoothing_groups`: graded targets as groups of neighbour ranks, and the recipe rules around them."""

import pytest

from lightrecipe.errors import UserError
from lightrecipe.trainers.fields.smoothing_groups import neighbours, parse_groups, rank_shares
from lightrecipe.trainers.recipe import Recipe


def test_weights_become_shares_of_alpha_and_fractions_are_read():
    groups = parse_groups("2:1 6:1 12:1")
    assert [size for size, _ in groups] == [2, 6, 12] and [share for _, share in groups] == pytest.approx([1 / 3] * 3)
    assert parse_groups("5:1/2 5:1/4 5:1/4") == parse_groups("5:2 5:1 5:1") == ((5, 0.5), (5, 0.25), (5, 0.25))
    assert neighbours(parse_groups("2:1 6:1 12:1")) == 20


def test_each_rank_gets_its_group_share_and_missing_ranks_give_theirs_back():
    groups = parse_groups("1:2 2:1")  # rank 1: 2/3; ranks 2 and 3: 1/6 each
    assert rank_shares(groups, 10) == pytest.approx([2 / 3, 1 / 6, 1 / 6])
    assert rank_shares(groups, 2) == pytest.approx([0.8, 0.2])


@pytest.mark.parametrize("spec,message", [("", "no group"), ("6", "SIZE:WEIGHT"), ("0:1", "size >= 1"),
                                          ("3:0", "weight > 0"), ("3:x", "SIZE:WEIGHT"), ("3:1/0", "SIZE:WEIGHT")])
def test_a_bad_spec_is_named(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_groups(spec)


def test_the_recipe_checks_groups_where_they_are_read():
    base = dict(smoothing_alpha=0.1, queue_size=64, batch_size=32, bn_splits=8)
    assert Recipe(smoothing="graded", smoothing_groups="2:1 6:1 12:1", **base).smoothing_groups == "2:1 6:1 12:1"
    with pytest.raises(UserError, match=r"'smoothing_groups' is '6': group '6' is not SIZE:WEIGHT .*valid: groups"):
        Recipe(smoothing="graded", smoothing_groups="6", **base)
    with pytest.raises(UserError, match="weighs 80 neighbours, more than queue_size \\(64\\)"):
        Recipe(smoothing="graded", smoothing_groups="40:1 40:1", **base)
    with pytest.raises(UserError, match="'smoothing_groups' is set but smoothing is 'topk'"):
        Recipe(smoothing="topk", smoothing_k=5, smoothing_groups="2:1", **base)
