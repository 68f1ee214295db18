"""The random-init floor: the backbone train() starts from, scored by train()'s own final evaluation, recorded once
per sweep study before its trials run."""

from __future__ import annotations

import optuna
import pytest
import torch

from lightrecipe.search import floor, records
from tests.search.helpers import ARCH, TINY_SPACE

TINY = dict(dataset="digits", image_size=32, batch_size=64, queue_size=128, data_fraction=0.25,
            probe_weight_decay=0.01, epochs=1)


@pytest.mark.slow
def test_a_sweep_records_the_floor_of_the_backbone_train_starts_from(ray_local, tmp_path, monkeypatch):
    from lightrecipe.search.settings import SweepSettings
    from lightrecipe.search.sweep import run_sweep
    from lightrecipe.spaces import load_space
    from lightrecipe.trainers.data import load_dataset
    from lightrecipe.trainers.scoring import final_scores
    from lightrecipe.trainers.train import Trainer

    space = load_space(TINY_SPACE)
    run_sweep(SweepSettings(space=TINY_SPACE, archs=(ARCH,), trials=1, out=tmp_path, overrides=TINY))
    study = optuna.load_study(study_name=records.study_name(space.name, ARCH),
                              storage=records.default_storage_url(str(tmp_path)))

    baseline = space.baseline({**TINY, "arch": ARCH})
    data = load_dataset(baseline)
    trainer = Trainer.build(baseline, torch.device("cpu"), len(data.train))  # what train() builds before epoch 1
    expected = final_scores(trainer.model.backbone, data, baseline, torch.device("cpu"))
    rows = study.user_attrs[records.FLOOR]
    assert [r["seed"] for r in rows] == [baseline.seed]
    assert rows[0]["knn_top1"] == expected["knn_top1"] and rows[0]["test_knn_top1"] == expected["test_knn_top1"]
    for key in ("linear_top1", "test_linear_top1"):  # the lbfgs probe under another thread count can land a
        assert rows[0][key] == pytest.approx(expected[key], abs=0.01), key  # sample or two apart

    def measured_again(*args, **kwargs):
        raise AssertionError("a seed the study already has must not be measured again")

    monkeypatch.setattr(floor, "measure", measured_again)
    assert floor.ensure(study, baseline) == rows
