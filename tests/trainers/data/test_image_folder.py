"""Image folders of real PNG and JPEG files: layout errors, evaluation views against torchvision's transforms,
training crops cut from the full image, the reduced-size JPEG decode, and unreadable files."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from lightrecipe.errors import UserError
from lightrecipe.trainers.data.datasets import load_dataset, load_digits_arrays
from lightrecipe.trainers.data.image_decode import CropPairs, decode_pair, eval_resize
from lightrecipe.trainers.recipe import Recipe

CPU = torch.device("cpu")
CLASSES = ("ant", "bee", "cat")


def write_folder(root: Path, train_per_class=12, val_per_class=3, ext="png", size=32) -> list[str]:
    """ImageNet layout of real images: digits 0, 1, 2 as classes, size x size RGB (some non-square in train/)."""
    images, labels = load_digits_arrays()
    written = []
    for c, name in enumerate(CLASSES):
        pool = images[labels == c]
        for part, count, offset in (("train", train_per_class, 0), ("val", val_per_class, train_per_class)):
            (root / part / name).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                grey = np.asarray(Image.fromarray(pool[(offset + i) % len(pool), 0]).resize((size, size), Image.BILINEAR))
                img = Image.fromarray(np.stack([grey, grey // 2, 255 - grey], axis=-1))
                if part == "train" and i % 4 == 3:
                    img = img.resize((size * 3 // 2, size * 5 // 4))
                path = root / part / name / f"{i:03d}.{ext}"
                img.save(path)
                written.append(str(path))
    return written


def folder_recipe(root, **changes) -> Recipe:
    return Recipe(dataset="imagefolder", data_root=str(root), **{"num_workers": 0, **changes})


@pytest.mark.parametrize("num_workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_evaluation_views_are_torchvision_resize_and_centre_crop(tmp_path, num_workers):
    """Shorter side to floor(S / 0.875), then the centre S x S: pixel for pixel what torchvision's
    Resize + CenterCrop make of the same PIL image."""
    write_folder(tmp_path)
    data = load_dataset(folder_recipe(tmp_path, num_workers=num_workers))
    assert data.num_classes == 3 and (len(data.train), len(data.val), len(data.test)) == (33, 3, 9)
    assert data.val.labels.tolist() == [0, 1, 2]
    assert data.test.labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    reference = transforms.Compose([transforms.Resize(eval_resize(32)), transforms.CenterCrop(32)])
    for split in (data.test, data.val):
        x, y = zip(*split.batches(4, shuffle=False, drop_last=False, device=CPU))
        x, y = torch.cat(x), torch.cat(y)
        assert x.dtype == torch.uint8 and x.shape == (len(split), 3, 32, 32) and y.tolist() == split.labels.tolist()
        expected = [np.asarray(reference(Image.open(p).convert("RGB"))).transpose(2, 0, 1) for p in split.paths]
        assert np.array_equal(x.numpy(), np.stack(expected))
    assert eval_resize(224) == 256


def wide_image(path: Path, width=192, height=64):
    """Three flat colour thirds: a centre-first crop can only ever see the middle (green) third."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 3] = (255, 0, 0)
    pixels[:, width // 3: 2 * width // 3] = (0, 255, 0)
    pixels[:, 2 * width // 3:] = (0, 0, 255)
    Image.fromarray(pixels).save(path)


def test_training_crops_come_from_the_whole_image(tmp_path):
    path = tmp_path / "wide.png"
    wide_image(path)
    colours = set()
    for seed in range(40):
        pair = decode_pair(str(path), 16, (0.08, 1.0), torch.Generator().manual_seed(seed))
        assert pair.shape == (2, 16, 16, 3) and pair.dtype == np.uint8
        colours.update(int(c) for c in pair.reshape(-1, 3).argmax(axis=1))
    assert colours == {0, 1, 2}  # red and blue thirds too: crops are cut from the full image


@pytest.mark.slow
def test_crop_pairs_depend_on_seed_and_index_not_on_workers(tmp_path):
    paths = write_folder(tmp_path, train_per_class=4, val_per_class=1)
    pairs = CropPairs(paths, 16, (0.2, 1.0), seed=7)
    again = CropPairs(paths, 16, (0.2, 1.0), seed=7)
    other = CropPairs(paths, 16, (0.2, 1.0), seed=8)
    for i in (0, 3, 5):
        assert torch.equal(pairs[i][0], again[i][0]) and pairs[i][2] == ""
        assert not torch.equal(pairs[i][0], other[i][0])
    assert not torch.equal(pairs[0][0][0], pairs[0][0][1])  # two different views of one image
    loaded = list(torch.utils.data.DataLoader(pairs, batch_size=5, num_workers=2))
    assert torch.equal(torch.cat([b[0] for b in loaded]), torch.stack([pairs[i][0] for i in range(len(paths))]))


def test_jpeg_reduced_size_decode_keeps_the_geometry(tmp_path):
    """A 512 px JPEG viewed at 16 px decodes at 1/8 scale; the views match a full-resolution decode of the same
    boxes (up to JPEG's own scaled-decode differences)."""
    path = tmp_path / "big.jpg"
    ys, xs = np.mgrid[0:512, 0:512]
    smooth = np.stack([xs / 2, ys / 2, (xs + ys) / 4], axis=-1).astype(np.uint8)
    Image.fromarray(smooth).save(path, quality=95)
    with Image.open(path) as img:
        assert img.draft("RGB", (64, 64))[1][2] == 64  # the decoder does reduce this file
    pair = decode_pair(str(path), 16, (0.2, 1.0), torch.Generator().manual_seed(3))
    full = Image.open(path).convert("RGB")
    from lightrecipe.trainers.data.augment import crop_boxes

    top, left, h, w = crop_boxes(torch.tensor([512, 512]), torch.tensor([512, 512]), (0.2, 1.0),
                                 generator=torch.Generator().manual_seed(3))
    for v in range(2):
        box = (int(left[v]), int(top[v]), int(left[v] + w[v]), int(top[v] + h[v]))
        expected = np.asarray(full.resize((16, 16), Image.BILINEAR, box=box)).astype(int)
        assert np.abs(pair[v].astype(int) - expected).mean() < 3


def test_training_batches_yield_view_pairs(tmp_path):
    write_folder(tmp_path)
    data = load_dataset(folder_recipe(tmp_path, image_size=20, data_fraction=0.5))
    assert len(data.train) == 18 and len(data.val) == 3 and len(data.memory) == 33  # 11 per class -> 6
    assert data.train.crops_in_loader
    g = torch.Generator().manual_seed(0)
    batches = list(data.train.training_batches(8, device=CPU, generator=g, crop_scale=(0.2, 1.0), seed=1))
    assert [tuple(b.shape) for b in batches] == [(8, 2, 3, 20, 20)] * 2


def test_val_holdout_bounds(tmp_path):
    write_folder(tmp_path, train_per_class=2, val_per_class=1)
    (tmp_path / "train" / "dog").mkdir()
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "train" / "dog" / "only.png")
    data = load_dataset(folder_recipe(tmp_path))
    assert data.num_classes == 4 and data.val.labels.tolist() == [0, 1, 2]  # 1 of 2; none of a single image
    assert np.bincount(data.train.labels.numpy()).tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize("breakage,message", [
    ("missing_root", "does not exist"),
    ("no_train", "does not exist"),
    ("no_val", "does not exist"),
    ("train_without_classes", "has no class folders"),
    ("empty_class", "has no images"),
    ("unknown_val_class", "no counterpart in train/"),
])
def test_bad_layout_names_path(tmp_path, breakage, message):
    root = tmp_path / "imnet"
    if breakage != "missing_root":
        write_folder(root, train_per_class=2, val_per_class=1)
    culprit = {"missing_root": root, "no_train": root / "train", "no_val": root / "val",
               "train_without_classes": root / "train", "empty_class": root / "train" / "empty",
               "unknown_val_class": root / "val" / "bea"}[breakage]
    if breakage in ("no_train", "no_val", "train_without_classes"):
        for path in sorted(culprit.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        if breakage != "train_without_classes":
            culprit.rmdir()
    elif breakage in ("empty_class", "unknown_val_class"):
        culprit.mkdir()
        (culprit / "notes.txt").write_text("not an image")
        if breakage == "unknown_val_class":
            Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(culprit / "a.png")
    with pytest.raises(UserError, match=message) as err:
        load_dataset(folder_recipe(root))
    assert str(culprit) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("num_workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_one_unreadable_file_in_a_large_folder_is_skipped_with_one_warning(tmp_path, num_workers):
    write_folder(tmp_path, train_per_class=40, val_per_class=1, size=16)
    bad = tmp_path / "train" / "bee" / "broken.jpg"  # 1 of the 109 files of the train split: 0.9%
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    data = load_dataset(folder_recipe(tmp_path, image_size=16, num_workers=num_workers))
    assert str(bad) in data.train.paths and len(data.train) == 109
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # two epochs: still one warning
            kept = sum(len(b) for b in data.train.training_batches(
                16, device=CPU, generator=torch.Generator().manual_seed(0), crop_scale=(0.2, 1.0), seed=0))
        labels = torch.cat([y for _, y in data.train.batches(16, shuffle=False, drop_last=False, device=CPU)])
    messages = [str(w.message) for w in caught if str(bad) in str(w.message)]
    assert len(messages) == 1 and messages[0].startswith("skipping unreadable image")
    assert kept in (96 - 1, 96)  # 6 full batches of 16, minus the bad file when it was drawn into one
    assert len(labels) == 108 and data.skipped_files() == [str(bad)]


def test_a_batch_of_unreadable_files_comes_out_empty_so_every_rank_counts_the_same_steps(tmp_path):
    """Batches of one image: the bad file's batch is yielded empty, not left out. Data-parallel ranks that each
    met a different number of bad files would otherwise take different numbers of steps and wait on each other."""
    write_folder(tmp_path, train_per_class=40, val_per_class=1, size=16)
    (tmp_path / "train" / "bee" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    data = load_dataset(folder_recipe(tmp_path, image_size=16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sizes = [len(b) for b in data.train.training_batches(
            1, device=CPU, generator=torch.Generator().manual_seed(0), crop_scale=(0.2, 1.0), seed=0)]
    assert len(sizes) == len(data.train) and sorted(sizes)[:2] == [0, 1]


def test_unreadable_files_keep_their_rows_in_evaluation_batches(tmp_path):
    """Evaluation batches keep a blank row for a bad file, flagged unreadable: rows stay in their places for the
    data-parallel gather, and the scorer drops them."""
    write_folder(tmp_path, train_per_class=40, val_per_class=1, size=16)
    bad = tmp_path / "train" / "bee" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    data = load_dataset(folder_recipe(tmp_path, image_size=16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batches = list(data.train.evaluation_batches(16, device=CPU))
    readable = torch.cat([ok for _, _, ok in batches])
    assert len(readable) == len(data.train) and (~readable).nonzero().flatten().tolist() == [
        data.train.paths.index(str(bad))]
    assert torch.equal(torch.cat([y for _, y, _ in batches]), data.train.labels)


def test_more_than_one_percent_unreadable_is_an_error(tmp_path):
    write_folder(tmp_path, train_per_class=2, val_per_class=1)
    bad = tmp_path / "val" / "bee" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    data = load_dataset(folder_recipe(tmp_path))
    with pytest.raises(UserError, match=r"1 of 4 image files of this split cannot be read \(more than 1%\)") as err:
        list(data.test.batches(2, shuffle=False, drop_last=False, device=CPU))
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
