import dataclasses
import json
import re

import pytest

from lightrecipe.errors import UserError
from lightrecipe.trainers.fields.recipe_text import parse_assignments
from lightrecipe.trainers.presets import list_presets
from lightrecipe.trainers.recipe import FIELD_NAMES, Recipe, preset

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


@pytest.mark.parametrize("name", list_presets())
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
        ({"batch_size": 64, "bn_splits": 5, "queue_size": 640}, "'bn_splits' (5) must divide batch_size (64)"),
        ({"batch_size": 8, "bn_splits": 8, "queue_size": 64}, "groups of at least 2 images"),
        ({"smoothing": "topk", "smoothing_alpha": 0.1, "smoothing_k": 5, "smoothing_schedule": "warmup"},
         "'smoothing_schedule' is 'warmup' with warmup_epochs 0"),
        ({"blur_prob_view2": -0.5}, "'blur_prob_view2' is -0.5; valid: -1 (as view 1) or a probability"),
        ({"solarize_prob_view2": 1.5}, "'solarize_prob_view2' is 1.5; valid range"),
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
    with pytest.raises(dataclasses.FrozenInstanceError):
        Recipe().temperature = 0.5  # type: ignore[misc]


def test_valid_edges_of_the_new_rules():
    Recipe(batch_size=16, bn_splits=8, queue_size=64)  # 2 images per group is enough
    Recipe(smoothing="topk", smoothing_alpha=0.1, smoothing_k=5, smoothing_schedule="warmup", warmup_epochs=0.5)
    Recipe(smoothing_schedule="warmup")  # no smoothing: the schedule is irrelevant
    Recipe(blur_prob_view2=0.0, solarize_prob_view2=1.0)


def test_view_probabilities_default_to_the_first_view():
    r = Recipe(blur_prob=0.3, solarize_prob=0.1, hflip_prob=0.0)
    assert r.view_probs(1) == r.view_probs(2) == {"jitter": 0.8, "grayscale": 0.2, "blur": 0.3, "solarize": 0.1,
                                                  "hflip": 0.0}
    second = r.replace(blur_prob_view2=0.0).view_probs(2)
    assert second["blur"] == 0.0 and second["solarize"] == 0.1


def test_jitter_is_the_strengths_times_aug_strength():
    assert Recipe().jitter == pytest.approx((0.4, 0.4, 0.4, 0.1))
    assert Recipe(aug_strength=2.0, jitter_saturation=0.2).jitter == pytest.approx((0.8, 0.8, 0.4, 0.2))
    assert Recipe(aug_strength=4.0, jitter_hue=0.3).jitter[3] == 0.5  # torchvision caps hue at 0.5


def test_queue_not_below_the_train_split_names_its_size_and_a_value_that_works():
    r = Recipe(batch_size=64, queue_size=1024)
    with pytest.raises(UserError) as err:
        r.check_train_size(1000)
    message = str(err.value)
    assert "'queue_size' (1024) is not smaller than the 1000 training images" in message and "\n" not in message
    suggested = int(re.search(r"e\.g\. (\d+)", message).group(1))
    r.replace(queue_size=suggested).check_train_size(1000)  # the suggestion works
    assert 0 < suggested < 1000 and suggested % 64 == 0
    r.check_train_size(1025)
    with pytest.raises(UserError, match="'batch_size' \\(64\\) exceeds the 50 training images"):
        Recipe(batch_size=64, queue_size=0).check_train_size(50)
    with pytest.raises(UserError, match="or 0 for in-batch negatives"):
        Recipe(batch_size=64, queue_size=128).check_train_size(100)


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


def test_a_recipe_file_with_a_key_twice_is_rejected_naming_both_lines(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("temperature: 0.1\nepochs: 3\ntemperature: 0.2\n")
    with pytest.raises(UserError, match=r"duplicate key 'temperature' on line 3 \(first on line 1\)"):
        Recipe.from_file(path)


def test_recipe_and_space_files_read_1e_4_as_a_number(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("weight_decay: 1e-4\n")
    assert Recipe.from_file(path).weight_decay == 1e-4


def test_a_recipe_file_may_record_its_cpu_thread_count_beside_the_recipe(tmp_path):
    """A report's best-recipe file says how many torch threads its number was obtained with: the recipe is the
    same with or without that line, `cpu_threads_of` reads it, and anything but a count of 1 or more is one error."""
    from lightrecipe.trainers.fields.recipe_text import cpu_threads_of

    r = preset("digits-small", epochs=3)
    plain, card = tmp_path / "plain.yaml", tmp_path / "card.yaml"
    plain.write_text(r.to_yaml())
    card.write_text("# how its number was obtained\ncpu_threads: 1\n" + r.to_yaml())
    assert Recipe.from_file(card) == Recipe.from_file(plain) == r
    assert (cpu_threads_of(card), cpu_threads_of(plain)) == (1, None)
    for bad in ("0", "1.5", "true", "all"):
        card.write_text(f"cpu_threads: {bad}\n" + r.to_yaml())
        with pytest.raises(UserError, match=r"'cpu_threads' is .*; valid: a whole number of torch CPU threads, 1 or"):
            Recipe.from_file(card)
