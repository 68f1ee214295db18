import json

import pytest

from lightrecipe.errors import UserError
from lightrecipe.trainers.presets import preset, preset_names
from lightrecipe.trainers.recipe import FIELD_NAMES, Recipe, parse_assignments

CONTRACT_FIELDS = """arch dataset data_root image_size epochs batch_size base_lr lr_scaling optimizer momentum weight_decay
wd_on_norm_and_bias warmup_epochs temperature queue_size key_momentum key_momentum_schedule proj_hidden_dim
proj_out_dim proj_layers proj_bn symmetric smoothing smoothing_alpha smoothing_k smoothing_schedule aug_strength
crop_min_scale color_jitter_prob grayscale_prob blur_prob solarize_prob knn_k knn_temperature data_fraction
precision channels_last compile seed""".split()


def test_every_contract_field_exists():
    assert set(CONTRACT_FIELDS) <= set(FIELD_NAMES)


def test_defaults_are_mocov2():
    r = preset("resnet50-mocov2")
    assert (r.optimizer, r.momentum, r.base_lr, r.weight_decay, r.warmup_epochs) == ("sgd", 0.9, 0.03, 1e-4, 0.0)
    assert (r.queue_size, r.key_momentum, r.temperature, r.proj_out_dim, r.proj_hidden_dim) == (65536, 0.999, 0.2, 128, 2048)
    assert (r.crop_min_scale, r.aug_strength, r.color_jitter_prob, r.grayscale_prob, r.blur_prob) == (0.2, 1.0, 0.8, 0.2, 0.5)
    assert (r.epochs, r.batch_size, r.image_size) == (200, 256, 224)
    assert preset("resnet50-mocov2", arch="efficientnet_b0").arch == "efficientnet_b0"


def test_lr_scaling_is_a_property():
    assert Recipe(batch_size=512, base_lr=0.03).lr == pytest.approx(0.06)
    assert Recipe(batch_size=512, base_lr=0.03, lr_scaling="none").lr == pytest.approx(0.03)


@pytest.mark.parametrize("name", preset_names())
def test_presets_are_valid_and_round_trip(name, tmp_path):
    r = preset(name)
    assert Recipe.from_dict(json.loads(r.to_json())) == r
    path = tmp_path / "r.yaml"
    path.write_text(r.to_yaml())
    assert Recipe.from_file(path) == r


def test_recipe_file_may_name_a_preset(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("preset: digits-small\nepochs: 3\nweight_decay: 1e-5\n")
    r = Recipe.from_file(path)
    assert (r.arch, r.epochs, r.weight_decay) == ("mobilenetv3_small_050", 3, 1e-5)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"base_lr": -0.1}, "'base_lr' is -0.1; valid range"),
        ({"smoothing": "topk", "smoothing_alpha": 0.1, "smoothing_k": 0}, "'smoothing_k' is 0 with smoothing_alpha > 0"),
        ({"queue_size": 1000}, "'queue_size' (1000) must be a multiple of batch_size (256)"),
        ({"arch": "mobilenetv3_larg_100"}, "did you mean 'mobilenetv3_large_100'"),
        ({"optimizer": "adam"}, "'optimizer' is 'adam'; valid: sgd, lars, adamw"),
        ({"epochs": 2.5}, "'epochs' must be an integer"),
        ({"symmetric": "yes"}, "'symmetric' must be true or false"),
        ({"dataset": "cifar10"}, "'data_root' is empty"),
    ],
)
def test_invalid_values_name_the_field(changes, message):
    with pytest.raises(UserError) as err:
        Recipe().replace(**changes)
    assert message in str(err.value)


def test_unknown_field_suggests_nearest():
    with pytest.raises(UserError, match="unknown recipe field 'temprature' \\(did you mean 'temperature'\\?\\)"):
        Recipe().replace(temprature=0.1)


def test_set_assignments_are_parsed_and_validated():
    r = Recipe().with_overrides(["temperature=0.1", "symmetric=true", "weight_decay=1e-5", "arch=resnet18"])
    assert (r.temperature, r.symmetric, r.weight_decay, r.arch) == (0.1, True, 1e-5, "resnet18")
    assert parse_assignments(["data_root=/x/y"]) == {"data_root": "/x/y"}
    with pytest.raises(UserError, match="--set expects key=value"):
        parse_assignments(["temperature"])
    with pytest.raises(UserError, match="'temperature' must be a finite number"):
        Recipe().with_overrides(["temperature=hot"])


def test_recipe_is_frozen():
    with pytest.raises(Exception):
        Recipe().temperature = 0.5  # type: ignore[misc]


def test_bad_recipe_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        Recipe.from_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("temperature: [0.1\n")
    with pytest.raises(UserError, match="not valid YAML"):
        Recipe.from_file(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="must hold a mapping"):
        Recipe.from_file(listy)
