"""The random-init floor: the backbone train() starts from, scored by train()'s own final evaluation, recorded once
per sweep study (no training, no Ray)."""

from __future__ import annotations

import optuna
import pytest
import torch

from lightrecipe.search import floor, records
from lightrecipe.trainers.presets import preset
from tests.search.helpers import ARCH, TINY_SPACE

TINY = dict(arch=ARCH, dataset="digits", image_size=32, batch_size=64, queue_size=128, data_fraction=0.25,
            probe_weight_decay=0.0001, epochs=1)


@pytest.mark.slow
def test_floor_is_the_backbone_train_starts_from_scored_as_train_scores_it(monkeypatch):
    from lightrecipe.trainers.data import load_dataset
    from lightrecipe.trainers.scoring import final_scores
    from lightrecipe.trainers.train import Trainer

    recipe = preset("digits-small", **TINY, seed=1)
    data = load_dataset(recipe)
    trainer = Trainer.build(recipe, torch.device("cpu"), len(data.train))  # what train() builds before epoch 1
    expected = final_scores(trainer.model.backbone, data, recipe, torch.device("cpu"))

    study = optuna.create_study(direction="maximize")
    rows = floor.ensure(study, recipe)  # the recipe's own seed
    assert rows == [{"seed": 1, **expected}] and study.user_attrs[records.FLOOR] == rows

    def measured_again(*args, **kwargs):
        raise AssertionError("a seed the study already has must not be measured again")

    monkeypatch.setattr(floor, "measure", measured_again)
    assert floor.ensure(study, recipe, [1]) == rows


@pytest.mark.slow
def test_a_sweep_records_the_floor_of_each_study_it_runs(ray_local, tmp_path):
    from lightrecipe.search.sweep import SweepSettings, run_sweep
    from lightrecipe.spaces import load_space

    space = load_space(TINY_SPACE)
    overrides = {k: v for k, v in TINY.items() if k != "arch"}
    run_sweep(SweepSettings(space=TINY_SPACE, archs=(ARCH,), trials=1, out=tmp_path, overrides=overrides))
    study = optuna.load_study(study_name=records.study_name(space.name, ARCH),
                              storage=records.default_storage_url(str(tmp_path)))
    baseline = space.baseline({**overrides, "arch": ARCH})
    assert study.user_attrs[records.FLOOR] == [{"seed": baseline.seed, **floor.random_init_scores(baseline)}]
