"""warm_map.py: a source recipe mapped into another space, knob by knob, with each change said."""

from __future__ import annotations

import optuna
import pytest

from lightrecipe.errors import UserError
from lightrecipe.search.warm_map import map_recipe
from lightrecipe.spaces import Choice, Float, Int, Space
from lightrecipe.trainers.recipe import preset

TARGET = Space(
    name="target", base="digits-small",
    fixed={"epochs": 1, "symmetric": False},
    params={
        "temperature": Float(0.1, 0.2, log=True),
        "proj_hidden_dim": Choice([0, 512]),
        "smoothing": Choice(["none", "topk"]),
        "smoothing_k": Int(1, 32, when={"smoothing": "topk"}),
        "warmup_epochs": Float(0.0, 2.0),
    },
)
OVERRIDES = {"arch": "mobilenetv3_small_050", "epochs": 1}


def test_a_fixed_a_clipped_and_a_dropped_knob_are_mapped_and_each_change_is_said():
    source = {"temperature": 0.05, "symmetric": True, "proj_hidden_dim": 2048, "smoothing": "topk",
              "smoothing_k": 64, "warmup_epochs": 1.5, "key_momentum": 0.99}
    mapped = map_recipe(source, None, TARGET, OVERRIDES)
    default_dim = preset("digits-small", epochs=1, symmetric=False).proj_hidden_dim
    dim = default_dim if default_dim in (0, 512) else 0
    assert mapped.params == {"temperature": 0.1, "proj_hidden_dim": dim, "smoothing": "topk", "smoothing_k": 32,
                             "warmup_epochs": 1.5}
    assert mapped.changes == [
        "symmetric true -> false (fixed in the target)",
        "key_momentum 0.99 dropped (not a knob of space 'target')",
        "temperature 0.05 -> 0.1 (clipped to [0.1, 0.2])",
        f"proj_hidden_dim 2048 not in [0, 512]; dropped to the space's default {dim}",
        "smoothing_k 64 -> 32 (clipped to [1, 32])",
    ]
    recipe = TARGET.suggest(optuna.trial.FixedTrial(mapped.params), OVERRIDES)  # a trial TPE could have asked
    assert (recipe.temperature, recipe.symmetric, recipe.smoothing_k) == (0.1, False, 32)


def test_a_knob_the_source_fixed_comes_from_its_recipe_and_an_inactive_one_is_not_enqueued():
    recipe = preset("digits-small", epochs=1, warmup_epochs=3.0).to_dict()
    mapped = map_recipe({"temperature": 0.15, "smoothing": "none", "smoothing_k": 20}, recipe, TARGET, OVERRIDES)
    assert mapped.params["warmup_epochs"] == 2.0  # the source trained with 3, clipped
    assert "smoothing_k" not in mapped.params  # inactive under smoothing none: TPE would not have asked it
    assert "warmup_epochs 3 -> 2 (clipped to [0, 2])" in mapped.changes


def test_the_sweeps_own_override_wins_and_an_integer_knob_is_rounded():
    mapped = map_recipe({"temperature": 0.12, "smoothing": "topk", "smoothing_k": 7.6, "epochs": 9}, None,
                        TARGET, OVERRIDES)
    assert mapped.params["smoothing_k"] == 8 and isinstance(mapped.params["smoothing_k"], int)
    assert "epochs 9 -> 1 (fixed in the target)" in mapped.changes


def test_a_mapped_recipe_the_recipe_rules_reject_is_a_user_error():
    space = Space(name="split", base="digits-small", fixed={"epochs": 1, "bn_splits": 4},
                  params={"batch_size": Int(8, 64)})  # both corners split in 4; 10 does not
    with pytest.raises(UserError, match="batch_size"):
        map_recipe({"batch_size": 10}, None, space, OVERRIDES)
