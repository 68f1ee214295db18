"""Spaces map trials to Recipes: built-ins through FixedTrial and real in-memory studies, conditions,
overrides, the ResNet-50 baseline as an enqueued trial, and the YAML round trip."""

from __future__ import annotations

import copy

import optuna
import pytest
import yaml
from optuna.trial import FixedTrial

from lightrecipe.errors import UserError
from lightrecipe.spaces import Choice, Float, Int, Space, list_spaces, load_space, validate_space
from lightrecipe.trainers.recipe import SHARED_FIELDS, Recipe, preset

optuna.logging.set_verbosity(optuna.logging.WARNING)

BUILTINS = ["digits-demo", "paper-efficient", "smoothing-ablation", "wide"]
# What a digits sweep passes (ARCH from --arch, the rest from --epochs and --set).
DIGITS = {
    "arch": "mobilenetv3_small_050",
    "dataset": "digits",
    "image_size": 32,
    "epochs": 8,
    "batch_size": 64,
    "queue_size": 256,
}


def _corner(space: Space, end: int, **values) -> dict:
    """Every parameter at one end (0: low / first choice, -1: high / last choice), some replaced."""
    return {**{n: s.extremes()[end] for n, s in space.params.items()}, **values}


def test_builtin_names_are_the_shipped_files():
    assert list_spaces() == BUILTINS


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_space_loads_with_base_and_description(name):
    space = load_space(name)
    assert space.name == name
    assert space.base == "resnet50-mocov2"
    assert space.description
    assert {"smoothing", "smoothing_alpha", "smoothing_k"} <= set(space.params)


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("end", [0, -1])
def test_builtin_space_through_fixed_trial_gives_the_sampled_recipe(name, end):
    space = load_space(name)
    values = _corner(space, end, smoothing="topk")
    trial = FixedTrial(values)
    recipe = space.suggest(trial)
    assert isinstance(recipe, Recipe)
    for field_name, value in trial.params.items():
        assert getattr(recipe, field_name) == value
    # fields not searched come from the preset and `fixed`
    assert recipe.epochs == space.fixed["epochs"]
    assert recipe.image_size == space.fixed.get("image_size", preset("resnet50-mocov2").image_size)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_space_in_a_real_study_with_digits_overrides(name):
    space = load_space(name)
    space.check(DIGITS)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0, multivariate=True))
    seen_smoothing = set()
    for _ in range(12):
        trial = study.ask()
        recipe = space.suggest(trial, DIGITS)
        for key, value in DIGITS.items():
            assert getattr(recipe, key) == value
        assert not set(DIGITS) & set(trial.params), "an overridden field must not be sampled"
        topk = trial.params.get("smoothing") == "topk"
        assert ("smoothing_k" in trial.params) == topk
        if not topk:
            assert recipe.smoothing_k == 0
        seen_smoothing.add(recipe.smoothing)
        study.tell(trial, recipe.temperature)
    assert len(seen_smoothing) > 1
    assert len(study.trials) == 12


def test_conditional_params_sampled_only_when_active():
    space = load_space("paper-efficient")
    off = FixedTrial(_corner(space, 0, smoothing="none"))
    recipe = space.suggest(off)
    assert "smoothing_alpha" not in off.params and "smoothing_k" not in off.params
    assert (recipe.smoothing, recipe.smoothing_alpha, recipe.smoothing_k) == ("none", 0.0, 0)

    on = FixedTrial(_corner(space, 0, smoothing="topk", smoothing_alpha=0.1, smoothing_k=20))
    recipe = space.suggest(on)
    assert on.params["smoothing_alpha"] == 0.1 and on.params["smoothing_k"] == 20
    assert (recipe.smoothing, recipe.smoothing_alpha, recipe.smoothing_k) == ("topk", 0.1, 20)


def test_condition_with_a_list_of_values():
    space = load_space("smoothing-ablation")
    schedule = {"smoothing_alpha", "smoothing_schedule", "smoothing_schedule_unit"}
    for smoothing, expected in [("none", set()), ("uniform", schedule), ("topk", schedule | {"smoothing_k"}),
                                ("graded", schedule | {"smoothing_groups"})]:
        trial = FixedTrial(_corner(space, 0, smoothing=smoothing))
        space.suggest(trial)
        assert set(trial.params) - {"smoothing"} == expected


def test_condition_follows_an_override_of_the_parameter_it_names():
    space = load_space("paper-efficient")
    trial = FixedTrial(_corner(space, -1))
    recipe = space.suggest(trial, {"smoothing": "topk"})
    assert "smoothing" not in trial.params
    assert {"smoothing_alpha", "smoothing_k"} <= set(trial.params)
    assert recipe.smoothing == "topk" and recipe.smoothing_k == 64


def test_overrides_win_and_are_not_sampled():
    space = load_space("paper-efficient")
    overrides = {"temperature": 0.07, "epochs": 3, "arch": "efficientnet_b0"}
    trial = FixedTrial(_corner(space, 0))
    recipe = space.suggest(trial, overrides)
    assert "temperature" not in trial.params
    assert (recipe.temperature, recipe.epochs, recipe.arch) == (0.07, 3, "efficientnet_b0")
    assert recipe.base_lr == space.params["base_lr"].low


def test_unknown_override_is_a_user_error():
    space = load_space("paper-efficient")
    with pytest.raises(UserError, match=r"overrides: unknown recipe field 'temprature' \(did you mean 'temperature'"):
        space.suggest(FixedTrial(_corner(space, 0)), {"temprature": 0.1})


def test_int_param_fills_a_float_field():
    space = Space("t", "resnet50-mocov2", {"epochs": 10}, {"warmup_epochs": Int(0, 3)})
    recipe = space.suggest(FixedTrial({"warmup_epochs": 2}))
    assert recipe.warmup_epochs == 2.0 and isinstance(recipe.warmup_epochs, float)


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("overrides", [{}, DIGITS], ids=["plain", "digits"])
def test_baseline_is_the_resnet50_preset_plus_fixed_plus_overrides(name, overrides):
    space = load_space(name)
    assert space.baseline(overrides) == preset("resnet50-mocov2", **{**space.fixed, **overrides})
    assert space.baseline().temperature == 0.2  # MoCo v2


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("overrides", [{}, DIGITS], ids=["plain", "digits"])
def test_enqueued_baseline_params_reproduce_the_baseline(name, overrides):
    space = load_space(name)
    params = space.baseline_params(overrides)
    assert not set(overrides) & set(params)
    assert "smoothing_alpha" not in params  # inactive: the baseline uses no smoothing
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.enqueue_trial(params)
    trial = study.ask()
    assert space.suggest(trial, overrides) == space.baseline(overrides)
    assert trial.params == params


def test_baseline_params_include_active_conditionals():
    space = load_space("smoothing-ablation")
    params = space.baseline_params({"smoothing": "topk", "smoothing_alpha": 0.1, "smoothing_k": 5})
    assert params == {"smoothing_schedule": "constant", "smoothing_schedule_unit": "step"}


def test_baseline_outside_the_space_is_named():
    space = Space("narrow", "resnet50-mocov2", {}, {"temperature": Float(0.05, 0.15, log=True)}, source="n.yaml")
    with pytest.raises(UserError, match=r"n.yaml: parameter 'temperature': the ResNet-50 baseline uses 0.2.*--no-baseline"):
        space.baseline_params()
    space = Space("c", "resnet50-mocov2", {}, {"proj_hidden_dim": Choice([512, 1280])})
    with pytest.raises(UserError, match="widen it to include 2048"):
        space.baseline_params()


def test_suggest_asks_in_declaration_order():
    space = load_space("wide")
    trial = FixedTrial(_corner(space, 0, smoothing="topk"))
    space.suggest(trial)
    assert list(trial.params) == list(space.params)


@pytest.mark.parametrize("name", BUILTINS)
def test_yaml_round_trip(name, tmp_path):
    space = load_space(name)
    assert Space.from_dict(space.to_dict()) == space
    path = tmp_path / "copy.yaml"
    path.write_text(yaml.safe_dump(space.to_dict(), sort_keys=False))
    assert load_space(str(path)) == space


def test_python_api_equals_the_yaml_form(tmp_path):
    space = Space(
        name="mine",
        base="resnet50-mocov2",
        fixed={"epochs": 20},
        params={
            "temperature": Float(0.05, 0.5, log=True),
            "proj_hidden_dim": Choice([0, 512, 1280, 2048]),
            "smoothing": Choice(["none", "topk"]),
            "smoothing_alpha": Float(0.01, 0.3, when={"smoothing": "topk"}),
            "smoothing_k": Int(1, 64, log=True, when={"smoothing": "topk"}),
        },
    )
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\nbase: resnet50-mocov2\nfixed: {epochs: 20}\nparams:\n"
        "  temperature: {float: [0.05, 0.5], log: true}\n"
        "  proj_hidden_dim: {choice: [0, 512, 1280, 2048]}\n"
        "  smoothing: {choice: [none, topk]}\n"
        "  smoothing_alpha: {float: [0.01, 0.3], when: {smoothing: topk}}\n"
        "  smoothing_k: {int: [1, 64], log: true, when: {smoothing: [topk]}}\n"
    )
    assert load_space(str(path)) == space
    assert load_space(str(path)).source == str(path)


def test_yaml_reads_exponents_without_a_dot(tmp_path):
    path = tmp_path / "wd.yaml"
    path.write_text("name: wd\nparams:\n  weight_decay: {float: [1e-6, 1e-3], log: true}\n")
    spec = load_space(str(path)).params["weight_decay"]
    assert (spec.low, spec.high) == (1e-6, 1e-3)


def test_validate_space_checks_a_space_and_a_dict_alike():
    space = load_space("smoothing-ablation")
    assert validate_space(space, source="x") is None
    assert validate_space(space.to_dict(), source="x") is None
    reversed_alpha = Float(0.3, 0.01, when={"smoothing": ["uniform", "topk"]})
    data = space.to_dict()
    data["params"]["smoothing_alpha"] = reversed_alpha.to_dict()
    with pytest.raises(UserError, match=r"^x: parameter 'smoothing_alpha': reversed range"):
        validate_space(data, source="x")
    changed = copy.copy(space)  # a Space changed after it validated itself: validate_space still looks
    object.__setattr__(changed, "params", {**space.params, "smoothing_alpha": reversed_alpha})
    with pytest.raises(UserError, match=r"^y: parameter 'smoothing_alpha': reversed range"):
        validate_space(changed, source="y")


@pytest.mark.parametrize("name", BUILTINS)
def test_space_pickles_for_ray(name):
    import pickle

    space = load_space(name)
    copy = pickle.loads(pickle.dumps(space))
    assert copy == space and copy.source == space.source
    assert copy.suggest(FixedTrial(_corner(copy, 0))) == space.suggest(FixedTrial(_corner(space, 0)))


def test_the_baseline_trains_on_the_data_resolution_and_evaluation_of_the_space_base():
    """A digits space compares the ResNet-50 settings with its own recipes at 32 px, not at ResNet-50's 224."""
    space = Space(name="digits-cmp", base="digits-small", fixed={"epochs": 3},
                  params={"temperature": Float(0.05, 0.5)})
    baseline, base, resnet = space.baseline({"probe_epochs": 7}), preset("digits-small"), preset("resnet50-mocov2")
    for name in SHARED_FIELDS:
        expected = 7 if name == "probe_epochs" else getattr(base, name)
        assert getattr(baseline, name) == expected, name
    assert baseline.image_size == 32 != resnet.image_size
    for name in ("arch", "temperature", "base_lr", "weight_decay", "queue_size", "crop_min_scale", "batch_size"):
        assert getattr(baseline, name) == getattr(resnet, name), name
    assert baseline.epochs == 3


def test_the_digits_demo_space_states_the_feature_width_its_projector_gets():
    """`proj_hidden_dim: 0` means the backbone's width; the file's comment says what that is for the demo's net."""
    import re

    from lightrecipe.demo import DEMO_ARCHS
    from lightrecipe.spaces.loader import _builtin_root
    from lightrecipe.trainers.method.model import MoCo

    text = (_builtin_root() / "digits-demo.yaml").read_text()
    (stated,) = re.findall(r"backbone feature dim \((\d+) for this MobileNet", text)
    model = MoCo(DEMO_ARCHS[0], proj_hidden_dim=0, queue_size=0)  # the trainer's model at the space's choice 0
    assert model.projector[0].in_features == model.projector[0].out_features == int(stated)
