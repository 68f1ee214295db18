"""Search spaces: which recipe knobs a sweep searches, declared in YAML or Python and validated against Recipe.

    space = load_space("paper-efficient")          # or a YAML file path
    recipe = space.suggest(trial, {"arch": "efficientnet_b0"})   # an Optuna trial -> a Recipe
    study.enqueue_trial(space.baseline_params(overrides))       # the ResNet-50 settings as a trial
"""

from lightrecipe.spaces.loader import list_spaces, load_space
from lightrecipe.spaces.params import Choice, Float, Int, ParamSpec
from lightrecipe.spaces.space import BASELINE_PRESET, Space, validate_space

__all__ = [
    "BASELINE_PRESET",
    "Choice",
    "Float",
    "Int",
    "ParamSpec",
    "Space",
    "list_spaces",
    "load_space",
    "validate_space",
]
