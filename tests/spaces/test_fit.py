"""Spaces with `fit_to`: the ResNet-50 baseline and the trials of a space built on MoCo's settings get the
queue and batch fitted to the data (trainers/fit.py), what the space or the sweep writes is kept, and every
corner must fit the data (what a sweep checks before any trial starts)."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import FixedTrial

from lightrecipe.errors import UserError
from lightrecipe.spaces import Float, Space, list_spaces, load_space
from lightrecipe.trainers.data.datasets import count_train_images
from lightrecipe.trainers.fit import TrainImages
from lightrecipe.trainers.recipe import preset

optuna.logging.set_verbosity(optuna.logging.WARNING)

DIGITS = TrainImages()  # the bundled digits, counted as train() sees them (1078 at data_fraction 1)


def cifar10_sized(recipe) -> int:
    """A CIFAR-10 release's training images after its val split, whatever the recipe's data."""
    return 45_000


def _corner(space: Space, end: int) -> dict:
    return {n: s.extremes()[end] for n, s in space.params.items()}


def tiny_like(**fixed) -> Space:
    """A space based on digits-small (tests/search/tiny.yaml) that does not fix queue_size."""
    return Space("tiny-like", "digits-small", {"epochs": 2, **fixed}, {"temperature": Float(0.05, 0.5, log=True)},
                 source="tiny-like.yaml")


@pytest.mark.parametrize("name", list_spaces())
@pytest.mark.parametrize("count", [DIGITS, cifar10_sized], ids=["digits", "cifar10-sized"])
def test_the_baseline_of_every_builtin_space_fits(name, count):
    space = load_space(name)
    fit = space.baseline_fit({"arch": "mobilenetv3_small_050"}, fit_to=count)
    fit.recipe.check_train_size(count(fit.recipe))  # train()'s own data check
    unfitted = space.baseline({"arch": "mobilenetv3_small_050"})
    changed = {k for k, v in fit.recipe.to_dict().items() if unfitted.to_dict()[k] != v}
    assert changed <= {"queue_size", "batch_size"}  # every other value as MoCo v2 (+ fixed + overrides)
    if "queue_size" not in space.fixed:  # digits-demo fixes its own queue and batch: kept
        assert changed and fit.note()


@pytest.mark.slow
def test_the_digits_baseline_runs_one_epoch(tmp_path):
    """The fitted baseline of a built-in space trains on a tenth of the digits (at 32 px, the smallest net)."""
    from lightrecipe.trainers.run.train import train

    space = load_space("paper-efficient")
    overrides = {"arch": "mobilenetv3_small_050", "image_size": 32, "epochs": 1, "data_fraction": 0.1,
                 "probe_weight_decay": 0.01}
    fit = space.baseline_fit(overrides, fit_to=DIGITS)
    n = count_train_images(fit.recipe)
    assert (fit.recipe.queue_size, fit.recipe.batch_size, n) == (16, 16, 109)  # 2 images per BatchNorm group
    assert fit.note() == "queue 16, batch 16: fitted to 109 training images"
    metrics = train(fit.recipe, workdir=tmp_path / "run", device="cpu")
    assert metrics["state"] == "complete" and 0 < metrics["knn_top1"] <= 1


def test_trials_of_a_space_on_moco_settings_are_fitted_and_sampled_values_kept():
    space = load_space("paper-efficient")
    values = _corner(space, -1)
    fit = space.suggest_fit(FixedTrial(values), {"arch": "mobilenetv3_small_050"}, fit_to=DIGITS)
    assert (fit.recipe.queue_size, fit.recipe.batch_size) == (128, 64)
    assert fit.recipe.temperature == values["temperature"] and fit.recipe.smoothing_k == values["smoothing_k"]
    assert space.suggest(FixedTrial(values), {"arch": "mobilenetv3_small_050"}, fit_to=DIGITS) == fit.recipe
    assert space.suggest(FixedTrial(values)).queue_size == 65536  # without data, the preset as written


def test_fixed_and_overridden_queue_and_batch_are_kept():
    space = load_space("digits-demo")
    assert space.baseline_fit({}, fit_to=DIGITS).recipe == space.baseline()
    overrides = {"queue_size": 512, "batch_size": 32}
    assert space.baseline(overrides, fit_to=DIGITS) == preset("resnet50-mocov2", **{**space.fixed, **overrides})


def test_a_baseline_of_a_space_on_digits_small_is_fitted():
    """Issue 19 item 11: a space on digits-small that does not fix queue_size gave the baseline MoCo v2's 65536."""
    space = tiny_like()
    fit = space.baseline_fit({}, fit_to=DIGITS)
    assert (fit.recipe.queue_size, fit.recipe.batch_size, fit.recipe.image_size) == (128, 64, 32)
    fit.recipe.check_train_size(1078)
    assert space.baseline_params({}, fit_to=DIGITS) == {"temperature": 0.2}
    space.check({}, fit_to=DIGITS)


def test_a_corner_that_cannot_fit_names_the_field_and_a_value_that_fits():
    with pytest.raises(UserError) as err:
        load_space("wide").check({"arch": "mobilenetv3_small_050"}, fit_to=DIGITS)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("built-in space 'wide': the space gives a recipe that does not fit the data at "
                              "queue_size=4096")
    assert "'queue_size' (4096) is not smaller than the 1078 training images" in message and "e.g. 128" in message
    load_space("wide").check({"arch": "mobilenetv3_small_050"})  # without the data: a valid space
    load_space("wide").check({"queue_size": 256}, fit_to=DIGITS)  # the space's own advice for digits
    with pytest.raises(UserError, match=r"queue_size=65536 .*'queue_size' \(65536\).*45000 training images.*e\.g\. 4096"):
        load_space("wide").check({}, fit_to=cifar10_sized)


def test_a_written_value_that_does_not_fit_is_refused_even_without_searched_corners():
    with pytest.raises(UserError, match=r"tiny-like.yaml: .* at its only recipe: recipe field 'batch_size' \(2048\)"):
        tiny_like(batch_size=2048, queue_size=0).check({"temperature": 0.2}, fit_to=DIGITS)
