"""fit.py: MoCo's published settings fitted to the training images, one rule, against real sizes.

Sizes: the bundled digits (counted from the real split), CIFAR-10 after its val split (45 000), CIFAR-10 whole
(50 000, MoCo's CIFAR demo: K = 4096) and ImageNet-1k (1 281 167: MoCo's own values are kept). A fitted recipe
is checked with the trainer's own data check (`Recipe.check_train_size`), the one train() runs first.
"""

from __future__ import annotations

import re

import pytest

from lightrecipe.errors import UserError
from lightrecipe.trainers.data.datasets import count_train_images, load_dataset
from lightrecipe.trainers.fit import TrainImages, describe, fit_preset, fit_to_data
from lightrecipe.trainers.presets import list_presets
from lightrecipe.trainers.recipe import Recipe, preset

DIGITS = 1078  # the bundled digits' train split (60% of 1797)
CIFAR10 = 45_000  # CIFAR-10's 50 000 training images less the 10% val split
IMAGENET = 1_281_167  # ImageNet-1k train

# (training images, preset) -> (queue, batch) after fitting; None = the field defaults (MoCo v2's values)
RULE = {
    (DIGITS, "resnet50-mocov2"): (128, 64),
    (DIGITS, None): (128, 64),
    (DIGITS, "mocov3"): (0, 64),  # in-batch negatives stay; batch 4096 -> 64
    (CIFAR10, "resnet50-mocov2"): (4096, 256),  # MoCo's CIFAR-10 demo queue; MoCo v2's batch fits
    (50_000, "resnet50-mocov2"): (4096, 256),  # exactly the demo: K = 4096 for 50 000 images
    (CIFAR10, "mocov3"): (0, 2048),
    (IMAGENET, "resnet50-mocov2"): (65536, 256),  # MoCo v2 as published
    (IMAGENET, None): (65536, 256),
    (IMAGENET, "mocov3"): (0, 4096),  # MoCo v3 as published
    (271, "resnet50-mocov2"): (32, 16),  # the digits at data_fraction 0.25: 2 images per BatchNorm group
}


def fitted(name: str | None, images: int, **explicit):
    return fit_preset(name, explicit, lambda recipe: images)


def test_the_digits_train_split_is_counted_as_train_sees_it():
    assert count_train_images(Recipe()) == DIGITS == len(load_dataset(Recipe(image_size=8)).train)
    for fraction in (0.1, 0.25, 0.5):
        recipe = Recipe(image_size=8, data_fraction=fraction)
        assert count_train_images(recipe) == len(load_dataset(recipe).train)


def test_a_cifar_release_is_counted_as_train_sees_it(tmp_path):
    from tests.trainers.data.test_datasets import write_cifar

    write_cifar(tmp_path, 10, "binary")
    for fraction in (1.0, 0.5):
        recipe = Recipe(dataset="cifar10", data_root=str(tmp_path), image_size=8, data_fraction=fraction)
        assert count_train_images(recipe) == len(load_dataset(recipe).train)


@pytest.mark.parametrize(("images", "name"), list(RULE))
def test_the_rule(images, name):
    fit = fitted(name, images)
    assert (fit.recipe.queue_size, fit.recipe.batch_size) == RULE[images, name]
    fit.recipe.check_train_size(images)  # the trainer's own data check passes
    base = Recipe() if name is None else preset(name)
    others = {k: v for k, v in base.to_dict().items() if k not in ("queue_size", "batch_size")}
    assert {k: v for k, v in fit.recipe.to_dict().items() if k not in ("queue_size", "batch_size")} == others


def test_what_changed_is_recorded_and_said_in_one_line():
    fit = fitted("resnet50-mocov2", DIGITS)
    assert fit.record() == {"train_images": DIGITS, "changed": {"batch_size": [256, 64], "queue_size": [65536, 128]}}
    assert fit.note() == describe(fit.record()) == "queue 128, batch 64: fitted to 1078 training images"
    assert fitted("resnet50-mocov2", CIFAR10).note() == "queue 4096: fitted to 45000 training images"
    assert fitted("mocov3", DIGITS).note() == "batch 64: fitted to 1078 training images"
    assert fitted("resnet50-mocov2", IMAGENET).record() is None and fitted("resnet50-mocov2", IMAGENET).note() == ""
    assert describe(None) == describe({"changed": "?"}) == describe({"train_images": 5}) == ""


@pytest.mark.parametrize("name", [*list_presets(), None])
@pytest.mark.parametrize("images", [DIGITS, CIFAR10])
def test_every_preset_fits_the_digits_and_cifar10(name, images):
    recipe = fit_preset(name, {}, TrainImages() if images == DIGITS else (lambda r: images)).recipe
    recipe.check_train_size(images)
    if images == DIGITS:
        recipe.check_train_size(count_train_images(recipe))


def test_digits_small_is_taken_as_written():
    assert fitted("digits-small", DIGITS).recipe == preset("digits-small")
    assert fitted("digits-small", DIGITS).record() is None


def test_what_the_user_wrote_is_kept():
    fit = fitted("resnet50-mocov2", DIGITS, queue_size=65536, epochs=3)
    assert fit.recipe.queue_size == 65536 and fit.recipe.batch_size == 64 and fit.recipe.epochs == 3
    assert fit.record() == {"train_images": DIGITS, "changed": {"batch_size": [256, 64]}}
    with pytest.raises(UserError, match=r"'queue_size' \(65536\) is not smaller than the 1078 training images"):
        fit.recipe.check_train_size(DIGITS)  # a written queue that does not fit keeps its error
    odd = fitted(None, DIGITS, batch_size=48)  # 48 does not divide 65536: only the fitted queue makes it valid
    assert (odd.recipe.queue_size, odd.recipe.batch_size) == (96, 48)
    assert fitted(None, DIGITS, queue_size=512).recipe.queue_size == 512
    written = Recipe(batch_size=256, queue_size=65536)
    assert fit_to_data(written, DIGITS, keep=("batch_size", "queue_size")).recipe == written


def test_a_bad_field_is_reported_before_the_data_is_counted():
    def never(recipe):
        raise AssertionError("the data was counted for an invalid recipe")

    with pytest.raises(UserError, match="'optimizer' is 'adam'"):
        fit_preset(None, {"optimizer": "adam"}, never)
    with pytest.raises(UserError, match="--set: unknown recipe field 'temprature'"):
        fit_preset("resnet50-mocov2", {"temprature": 0.1}, never, source="--set")


def test_the_data_check_suggests_the_rules_values():
    with pytest.raises(UserError) as err:
        Recipe(batch_size=256, queue_size=65536).check_train_size(CIFAR10)
    assert "e.g. 4096, or 0" in str(err.value)
    with pytest.raises(UserError) as err:
        Recipe(batch_size=256, queue_size=0, bn_splits=8).check_train_size(100)
    suggested = int(re.search(r"e\.g\. (\d+)", str(err.value)).group(1))
    assert suggested == 16
    Recipe(batch_size=suggested, queue_size=0).check_train_size(100)


def test_counts_are_kept_per_data():
    count = TrainImages()
    assert count(Recipe()) == count(Recipe(epochs=3)) == DIGITS
    assert count(Recipe(data_fraction=0.5)) < DIGITS
