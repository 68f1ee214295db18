"""The digits folder `lightrecipe demo` trains on: the bundled digits, 80/20, stratified, fixed, read as an image folder."""

import numpy as np
import pytest
from PIL import Image

from lightrecipe.errors import UserError
from lightrecipe.trainers.data.datasets import load_digits_arrays
from lightrecipe.trainers.data.digits_folder import TEST_SHARE, write_digits_folder
from lightrecipe.trainers.data.image_folder import load_imagefolder
from lightrecipe.trainers.recipe import Recipe


def files(root, split):
    return sorted((root / split).glob("*/*.png"))


def test_every_digit_is_written_once_as_it_ships_with_its_label_as_folder(tmp_path):
    root = write_digits_folder(tmp_path / "digits")
    images, labels = load_digits_arrays()
    train, val = files(root, "train"), files(root, "val")
    assert len(train) + len(val) == len(labels) == 1797
    assert len(val) == round(TEST_SHARE * 1797)
    rows = [int(p.stem.split("-")[1]) for p in train + val]
    assert sorted(rows) == list(range(1797))
    for path in train[::97] + val[::37]:
        row = int(path.stem.split("-")[1])
        with Image.open(path) as img:
            assert img.mode == "L" and img.size == (8, 8)
            np.testing.assert_array_equal(np.asarray(img), images[row, 0])
        assert path.parent.name == str(labels[row])


def test_the_split_is_stratified_and_the_same_every_time(tmp_path):
    first = write_digits_folder(tmp_path / "a")
    second = write_digits_folder(tmp_path / "b")
    assert [p.relative_to(first) for p in files(first, "val")] == [p.relative_to(second) for p in files(second, "val")]
    _, labels = load_digits_arrays()
    val_counts = np.bincount([int(p.parent.name) for p in files(first, "val")], minlength=10)
    share = val_counts / np.bincount(labels)
    assert share.min() > TEST_SHARE - 0.01 and share.max() < TEST_SHARE + 0.01


def test_a_complete_folder_is_reused_and_a_foreign_one_refused(tmp_path):
    root = write_digits_folder(tmp_path / "digits")
    stamp = files(root, "train")[0].stat().st_mtime_ns
    assert write_digits_folder(root) == root and files(root, "train")[0].stat().st_mtime_ns == stamp
    files(root, "val")[0].unlink()
    with pytest.raises(UserError, match="is not the digits folder"):
        write_digits_folder(root)


def test_an_interrupted_write_leaves_no_folder_to_mistake_for_the_real_one(tmp_path):
    partial = tmp_path / "digits.partial"
    (partial / "train" / "3").mkdir(parents=True)  # what a killed write leaves: only the side folder
    root = write_digits_folder(tmp_path / "digits")
    assert not partial.exists() and len(files(root, "train")) + len(files(root, "val")) == 1797


def test_the_trainer_reads_it_as_an_imagenet_folder(tmp_path):
    root = write_digits_folder(tmp_path / "digits")
    data = load_imagefolder(Recipe().replace(dataset="imagefolder", data_root=str(root), image_size=32, num_workers=0))
    assert data.num_classes == 10
    assert len(data.test) == len(files(root, "val"))
    assert len(data.train) + len(data.val) == len(files(root, "train"))
    assert 140 <= len(data.val) <= 150  # the folder loader's held-out tenth of train/ (its own tests: test_image_folder)
