"""A real (tiny) sweep whose trials read prepared caches: an unlabeled tree and its labeled folder, both
prepared and then removed, so the driver's floor and every trial can only have read the caches."""

from __future__ import annotations

import shutil

import optuna
import pytest

from lightrecipe import cli
from lightrecipe.search.store import records
from lightrecipe.trainers.data.digits_folder import write_digits_folder
from lightrecipe.trainers.data.prepare import prepare

from .helpers import ARCH, SIZES, TINY_SPACE, load

pytestmark = pytest.mark.slow


def test_a_sweep_trains_and_scores_from_caches_alone(ray_local, tmp_path, capsys):
    labeled = write_digits_folder(tmp_path / "labeled")
    tree = tmp_path / "photos"
    for i, image in enumerate(sorted((labeled / "train").rglob("*.png"))):  # nested, with a stray note
        folder = tree / f"roll{i % 3}" / ("day1" if i % 2 else "day2")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(image, folder / image.name)
    (tree / "notes.txt").write_text("not an image")
    quiet = dict(workers=1, say=lambda line: None)
    prepare(tree, tmp_path / "photos-cache", 32, **quiet)
    prepare(labeled, tmp_path / "labeled-cache", 37, **quiet)  # 37 = floor(32 / 0.875): eval views not upsampled
    shutil.rmtree(tree)
    shutil.rmtree(labeled)
    out = tmp_path / "sweep"
    code = cli.main(["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "2", "--epochs", "1",
                     "--grace-epochs", "1", "--out", str(out), "--set", "dataset=unlabeled",
                     "--set", f"data_root={tmp_path / 'photos-cache'}",
                     "--set", f"eval_root={tmp_path / 'labeled-cache'}", *SIZES])
    assert code == 0, capsys.readouterr()
    study = load(out, records.study_name("tiny", ARCH))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    for t in study.trials:
        recipe = t.user_attrs[records.RECIPE]
        assert recipe["data_root"] == str(tmp_path / "photos-cache") and recipe["dataset"] == "unlabeled"
        assert 0.0 < t.user_attrs[records.METRICS]["test_knn_top1"] <= 1.0
    assert study.user_attrs[records.FLOOR][0]["knn_top1"] > 0.5  # the driver's floor scored from the cache
