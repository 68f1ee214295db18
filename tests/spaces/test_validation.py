"""Every mistake a space can hold is a UserError before anything runs, naming the file, the parameter and
the fix."""

from __future__ import annotations

import pytest
from optuna.trial import FixedTrial

from lightrecipe.errors import UserError
from lightrecipe.spaces import Choice, Float, Int, Space, load_space, validate_space

HEADER = "name: bad\nbase: resnet50-mocov2\nfixed: {epochs: 20}\n"


def _error(tmp_path, body: str, header: str = HEADER) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(header + body)
    with pytest.raises(UserError) as info:
        load_space(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    return message


def _params(*lines: str) -> str:
    return "params:\n" + "".join(f"  {line}\n" for line in lines)


# (parameter lines, fragments the message must hold: the parameter and the fix)
CASES = {
    "unknown field": (
        ["temprature: {float: [0.05, 0.5]}"],
        ["parameter 'temprature'", "unknown recipe field", "did you mean 'temperature'"],
    ),
    "unknown kind": (
        ["temperature: {floats: [0.05, 0.5]}"],
        ["parameter 'temperature'", "unknown spec key 'floats'", "did you mean 'float'", "valid kinds"],
    ),
    "no kind": (["temperature: {log: true}"], ["parameter 'temperature'", "exactly one kind", "found none"]),
    "two kinds": (["temperature: {float: [0.1, 0.2], int: [1, 2]}"], ["exactly one kind", "found float, int"]),
    "not a pair": (["temperature: {float: [0.1]}"], ["parameter 'temperature'", "[low, high] pair"]),
    "empty range": (
        ["temperature: {float: [0.1, 0.1]}"],
        ["parameter 'temperature'", "empty range [0.1, 0.1]", "fixed: {temperature: 0.1}"],
    ),
    "reversed range": (
        ["temperature: {float: [0.5, 0.05]}"],
        ["parameter 'temperature'", "reversed range", "[0.05, 0.5]"],
    ),
    "log float from 0": (
        ["weight_decay: {float: [0.0, 0.001], log: true}"],
        ["parameter 'weight_decay'", "log range must start above 0", "drop log"],
    ),
    "log float below 0": (
        ["aug_strength: {float: [-1.0, 1.0], log: true}"],
        ["parameter 'aug_strength'", "log range must start above 0"],
    ),
    "log int from 0": (
        ["smoothing_k: {int: [0, 64], log: true}"],
        ["parameter 'smoothing_k'", "log range must start above 0", "raise low to 1"],
    ),
    "range outside bounds": (
        ["smoothing_alpha: {float: [0.1, 1.5]}"],
        ["parameter 'smoothing_alpha'", "1.5 is outside", "'smoothing_alpha' accepts, [0.0, 1.0]"],
    ),
    "choice outside bounds": (
        ["proj_layers: {choice: [2, 9]}"],
        ["parameter 'proj_layers'", "9 is outside", "[1, 8]"],
    ),
    "float on int field": (
        ["smoothing_k: {float: [1.5, 64.0]}"],
        ["parameter 'smoothing_k'", "is an integer", "use int: [2, 64]"],
    ),
    "float choice on int field": (
        ["proj_hidden_dim: {choice: [512, 1280.5]}"],
        ["parameter 'proj_hidden_dim'", "choice 1280.5", "takes an integer"],
    ),
    "int bounds must be ints": (["smoothing_k: {int: [1, 6.5]}"], ["int range high end must be an integer"]),
    "range on bool field": (
        ["symmetric: {int: [0, 1]}"],
        ["parameter 'symmetric'", "takes true/false", "use choice"],
    ),
    "string choice on bool field": (
        ["symmetric: {choice: ['true', 'false']}"],
        ["parameter 'symmetric'", "choice 'true'", "write true/false without quotes"],
    ),
    "bool choice on int field": (["proj_layers: {choice: [true, 2]}"], ["choice True", "takes an integer"]),
    "invalid named choice": (
        ["smoothing: {choice: [none, topk, unifrom]}"],
        ["parameter 'smoothing'", "'unifrom' is not a valid smoothing", "did you mean 'uniform'", "valid: none"],
    ),
    "duplicate choice": (["smoothing: {choice: [none, topk, none]}"], ["lists none twice"]),
    "empty choice": (["smoothing: {choice: []}"], ["parameter 'smoothing'", "choice is empty"]),
    "log on choice": (["smoothing: {choice: [none, topk], log: true}"], ["'log' applies to float and int"]),
    "when on unknown param": (
        ["smoothing: {choice: [none, topk]}", "smoothing_k: {int: [1, 8], when: {smothing: topk}}"],
        ["parameter 'smoothing_k'", "when refers to 'smothing'", "did you mean 'smoothing'", "declared above"],
    ),
    "when on a fixed field": (
        ["smoothing_k: {int: [1, 8], when: {epochs: 20}}"],
        ["parameter 'smoothing_k'", "'epochs', which is not a searched parameter"],
    ),
    "when on a later param": (
        ["smoothing_k: {int: [1, 8], when: {smoothing: topk}}", "smoothing: {choice: [none, topk]}"],
        ["parameter 'smoothing_k'", "declared after 'smoothing_k'", "declare 'smoothing' first"],
    ),
    "when on itself": (["smoothing_k: {int: [1, 8], when: {smoothing_k: 2}}"], ["refers to the parameter itself"]),
    "when value impossible": (
        ["smoothing: {choice: [none, topk]}", "smoothing_k: {int: [1, 8], when: {smoothing: [topk, uniform]}}"],
        ["parameter 'smoothing_k'", "when {smoothing: uniform} can never hold", "choices [none, topk]"],
    ),
    "when value outside range": (
        ["temperature: {float: [0.05, 0.5]}", "smoothing_k: {int: [1, 8], when: {temperature: 0.9}}"],
        ["when {temperature: 0.9} can never hold", "[0.05, 0.5]"],
    ),
    "when not a mapping": (
        ["smoothing: {choice: [none, topk]}", "smoothing_k: {int: [1, 8], when: topk}"],
        ["parameter 'smoothing_k'", "when must map parameter names"],
    ),
    "duplicate param": (
        ["temperature: {float: [0.05, 0.5]}", "weight_decay: {float: [1e-6, 1e-3]}", "temperature: {float: [0.1, 0.2]}"],
        ["duplicate key 'temperature' on line 7 (first on line 5)", "keep one"],
    ),
    "duplicate spec key": (["temperature: {float: [0.05, 0.5], float: [0.1, 0.2]}"], ["duplicate key 'float'"]),
    "param also fixed": (
        ["epochs: {int: [10, 30]}"],
        ["parameter 'epochs' is also in 'fixed' (20)", "remove it from one of the two"],
    ),
    "spec not a mapping": (["temperature: 0.2"], ["parameter 'temperature'", "a spec must be a mapping"]),
    # Recipe's combination rules, found by building the recipe at the corners
    "alpha with k = 0 at the low corner": (
        [
            "smoothing: {choice: [topk, none]}",
            "smoothing_alpha: {float: [0.01, 0.3], when: {smoothing: topk}}",
            "smoothing_k: {int: [0, 8], when: {smoothing: topk}}",
        ],
        ["invalid recipe at every parameter at its low end (smoothing=topk, smoothing_alpha=0.01, smoothing_k=0)", "'smoothing_k' is 0 with smoothing_alpha > 0", "narrow"],
    ),
    "queue not a multiple of the batch": (
        ["queue_size: {choice: [4096, 1000]}"],
        ["invalid recipe at queue_size=1000 (the others at their low ends)", "multiple of batch_size (256)"],
    ),
    "k above the queue for one choice": (
        ["queue_size: {choice: [65536, 4096, 0]}", "smoothing: {choice: [none, topk]}", "smoothing_k: {int: [1, 8192], when: {smoothing: topk}}"],
        ["invalid recipe at", "exceeds queue_size (4096)"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_mistake_is_named(tmp_path, case):
    lines, fragments = CASES[case]
    message = _error(tmp_path, _params(*lines))
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


TOP_CASES = {
    "unknown base": ("name: bad\nbase: resnet50-mocov3\n", ["unknown base preset 'resnet50-mocov3'", "did you mean 'resnet50-mocov2'", "valid: "]),
    "unknown fixed field": ("name: bad\nfixed: {epoch: 5}\n", ["fixed: unknown recipe field 'epoch'", "did you mean 'epochs'"]),
    "bad fixed value": ("name: bad\nfixed: {epochs: 0}\n", ["fixed: recipe field 'epochs' is 0; valid range [1, inf]"]),
    "bad fixed choice": ("name: bad\nfixed: {optimizer: adam}\n", ["fixed: recipe field 'optimizer' is 'adam'; valid: sgd, lars, adamw"]),
    "bad fixed combination": ("name: bad\nfixed: {queue_size: 1000}\n", ["fixed: recipe field 'queue_size' (1000) must be a multiple"]),
    "unknown top key": ("name: bad\nparam: {}\n", ["unknown key 'param'", "did you mean 'params'"]),
    "missing name": ("base: resnet50-mocov2\n", ["missing key 'name'"]),
    "duplicate top key": ("name: bad\nname: worse\n", ["duplicate key 'name' on line 2"]),
    "not a mapping": ("- name\n", ["a space must be a mapping"]),
    "not yaml": ("name: [bad\n", ["not valid YAML"]),
}


@pytest.mark.parametrize("case", list(TOP_CASES))
def test_each_top_level_mistake_is_named(tmp_path, case):
    header, fragments = TOP_CASES[case]
    with_params = case not in ("unknown top key", "not a mapping", "not yaml")
    body = _params("temperature: {float: [0.05, 0.5]}") if with_params else ""
    message = _error(tmp_path, body, header=header)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_empty_params(tmp_path):
    assert "'params' is empty" in _error(tmp_path, "params: {}\n")


def test_a_fixed_value_legal_only_with_the_searched_ones_is_accepted(tmp_path):
    # queue 4096 is a multiple of every searched batch, though preset + fixed alone (batch 256) is fine too;
    # smoothing topk fixed with k 0 in the preset is legal because alpha stays 0 until the space sets it
    path = tmp_path / "ok.yaml"
    path.write_text(
        "name: ok\nfixed: {smoothing: topk, queue_size: 4096}\nparams:\n"
        "  smoothing_alpha: {float: [0.01, 0.3]}\n  smoothing_k: {int: [1, 64], log: true}\n"
        "  batch_size: {choice: [64, 128, 256]}\n"
    )
    assert len(load_space(str(path)).params) == 3


def test_int_range_on_a_float_field_is_fine(tmp_path):
    space = Space("ok", "resnet50-mocov2", {"epochs": 20}, {"warmup_epochs": Int(0, 5)})
    path = tmp_path / "ok.yaml"
    path.write_text("name: ok\nfixed: {epochs: 20}\nparams:\n  warmup_epochs: {int: [0, 5]}\n")
    assert load_space(str(path)) == space
    for end in (0, 5):  # both ends build a recipe whose float field holds the whole number as a float
        recipe = space.suggest(FixedTrial({"warmup_epochs": end}))
        assert recipe.warmup_epochs == float(end) and isinstance(recipe.warmup_epochs, float)


def test_python_space_validates_on_construction():
    with pytest.raises(UserError, match=r"<python>: parameter 'queue_size': .*use int: \[0, 4096\]"):
        Space("p", "resnet50-mocov2", {}, {"queue_size": Float(0.0, 4096.0)})
    with pytest.raises(UserError, match="a spec must be Float, Int or Choice"):
        Space("p", "resnet50-mocov2", {}, {"queue_size": (0, 4096)})


def test_validate_space_names_the_given_source():
    data = {"name": "d", "params": {"temperature": {"float": [0.5, 0.05]}}}
    with pytest.raises(UserError, match=r"^my.yaml: parameter 'temperature': reversed range"):
        validate_space(data, source="my.yaml")


def test_check_with_sweep_overrides_finds_a_conflict_the_plain_space_does_not_have():
    space = load_space("paper-efficient")
    space.check({"batch_size": 64, "queue_size": 256})
    with pytest.raises(UserError, match=r"'smoothing_k' \(64\) exceeds queue_size \(32\)"):
        space.check({"batch_size": 32, "queue_size": 32})


def test_unknown_space_name_and_missing_file(tmp_path):
    with pytest.raises(UserError, match=r"unknown space 'paper-eficient' \(did you mean 'paper-efficient'\?\); valid built-ins"):
        load_space("paper-eficient")
    with pytest.raises(UserError, match=r"space file '.*nope.yaml' does not exist"):
        load_space(str(tmp_path / "nope.yaml"))


def test_choice_spec_holds_a_tuple():
    assert Choice(["a", "b"]).values == ("a", "b")
