"""Datasets on real data: the bundled digits, format-exact CIFAR files and an image folder of real PNGs."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from lightrecipe.errors import UserError
from lightrecipe.trainers.data.datasets import digits_partition, load_dataset, load_digits_arrays
from lightrecipe.trainers.data.pixels import IMAGENET_MEAN, IMAGENET_STD, normalize
from lightrecipe.trainers.data.splits import TensorSplit, subsample
from lightrecipe.trainers.recipe import Recipe

CPU = torch.device("cpu")


def rows(images: torch.Tensor) -> list[bytes]:
    return [bytes(x.numpy().tobytes()) for x in images]


# --- digits ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    return load_dataset(Recipe())


def test_digits_sizes_dtype_shape_range(digits):
    assert (len(digits.train), len(digits.val), len(digits.test)) == (1078, 359, 360)
    assert digits.name == "digits" and digits.num_classes == 10
    for split in (digits.train, digits.val, digits.test):
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (3, 32, 32)
        assert split.labels.dtype == torch.int64 and split.num_classes == 10
        assert int(split.images.min()) == 0 and int(split.images.max()) >= 250  # 0..16 scaled to 0..255
        assert torch.equal(split.images[:, 0], split.images[:, 2])  # grey in three channels


def test_digits_read_from_the_file_equal_scikit_learns_load_digits():
    from sklearn.datasets import load_digits

    images, labels = load_digits_arrays()
    bunch = load_digits()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == np.uint8
    assert np.array_equal(images[:, 0], np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8))
    assert np.array_equal(labels, bunch.target) and labels.dtype == np.int64


def test_digits_stratified(digits):
    overall = np.bincount(load_digits_arrays()[1]) / 1797
    for split in (digits.train, digits.val, digits.test):
        counts = np.bincount(split.labels.numpy(), minlength=10)
        assert np.all(np.abs(counts - overall * len(split)) <= 1.0)


def test_digits_partition_disjoint_and_complete():
    labels = load_digits_arrays()[1]
    train, val, test = digits_partition(labels)
    together = np.concatenate([train, val, test])
    assert len(together) == len(set(together.tolist())) == 1797


def test_digits_fixed_split_ignores_recipe_seed(digits):
    other = load_dataset(Recipe(seed=7))
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(digits, name).images, getattr(other, name).images)
        assert torch.equal(getattr(digits, name).labels, getattr(other, name).labels)


def test_digits_pixels_match_source_at_8px():
    data = load_dataset(Recipe(image_size=8))
    source = {bytes(np.repeat(x, 3, axis=0).tobytes()): y for x, y in zip(*load_digits_arrays())}
    for split in (data.train, data.val, data.test):
        assert all(source[r] == y for r, y in zip(rows(split.images), split.labels.tolist()))


def test_data_fraction_nested_and_stratified(digits):
    small, mid = load_dataset(Recipe(data_fraction=0.1)), load_dataset(Recipe(data_fraction=0.3))
    assert len(small.train) < len(mid.train) < len(digits.train)
    assert abs(len(small.train) - 108) <= 5 and np.all(np.bincount(small.train.labels.numpy()) >= 10)
    s, m, full = (set(zip(rows(d.train.images), d.train.labels.tolist())) for d in (small, mid, digits))
    assert s <= m <= full
    assert torch.equal(small.val.images, digits.val.images) and torch.equal(small.test.images, digits.test.images)
    # only training is thinned: the kNN memory bank and the probe's training set stay the whole train split
    for thinned in (small, mid):
        assert torch.equal(thinned.memory.images, digits.train.images)
        assert torch.equal(thinned.memory.labels, digits.train.labels)
    assert digits.memory is digits.train


def test_subsample_keeps_one_per_class_and_nests():
    labels = np.repeat(np.arange(5), [1, 2, 10, 40, 200])
    positions = np.arange(len(labels)) * 3
    previous = set()
    for fraction in (0.001, 0.05, 0.2, 0.5, 0.9, 1.0):
        kept = subsample(labels, fraction, positions)
        assert set(np.unique(labels[kept // 3])) == set(range(5))
        assert previous <= set(kept.tolist())
        previous = set(kept.tolist())
    assert len(previous) == len(labels)


def stamped_split(n=103):
    """A real digits split whose first two pixels carry the image's index."""
    images, labels = load_digits_arrays()
    x = torch.from_numpy(np.repeat(images[:n], 3, axis=1)).clone()
    x[:, 0, 0, 0] = torch.arange(n) % 256
    x[:, 0, 0, 1] = torch.arange(n) // 256
    return TensorSplit(x, torch.from_numpy(labels[:n]), 10)


def indices(batches) -> list[int]:
    return [int(i) for x, _ in batches for i in (x[:, 0, 0, 0].long() + 256 * x[:, 0, 0, 1].long())]


def test_batches_cover_each_image_once_per_epoch():
    split = stamped_split()
    g = torch.Generator().manual_seed(0)
    batches = list(split.batches(16, shuffle=True, drop_last=False, device=CPU, generator=g))
    assert [len(x) for x, _ in batches] == [16] * 6 + [7]
    order = indices(batches)
    assert sorted(order) == list(range(103)) and order != list(range(103))
    assert torch.equal(torch.cat([y for _, y in batches]), split.labels[order])
    for x, y in batches:
        assert x.dtype == torch.uint8 and y.dtype == torch.int64 and x.shape[1:] == (3, 8, 8)


def test_batches_reproducible_and_drop_last():
    split = stamped_split()

    def order(seed, **kw):
        g = torch.Generator().manual_seed(seed)
        return indices(split.batches(16, device=CPU, generator=g, **kw))

    assert order(1, shuffle=True, drop_last=True) == order(1, shuffle=True, drop_last=True)
    assert order(1, shuffle=True, drop_last=True) != order(2, shuffle=True, drop_last=True)
    dropped = order(1, shuffle=True, drop_last=True)
    assert len(dropped) == 96 and len(set(dropped)) == 96
    assert order(1, shuffle=False, drop_last=False) == list(range(103))


def test_batch_larger_than_split_with_drop_last_is_user_error():
    with pytest.raises(UserError, match="batch_size"):
        next(stamped_split(10).batches(16, shuffle=True, drop_last=True, device=CPU))


def test_normalize():
    x = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8)
    out = normalize(x)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert out.dtype == torch.float32 and out.device == x.device
    torch.testing.assert_close(out, (x.float() / 255 - mean) / std)


# --- CIFAR -------------------------------------------------------------------------------------
def fake_cifar(n_per_file: int, num_classes: int, files: int, seed: int):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(files):
        data = rng.integers(0, 256, (n_per_file, 3072), dtype=np.uint8)
        out.append((data, np.arange(n_per_file) % num_classes))
    return out


def write_cifar(root: Path, num_classes: int, fmt: str, protocol: int = 2):
    """Format-exact CIFAR files: 5 x 20 train + 20 test images (CIFAR-10), 60 + 20 (CIFAR-100)."""
    if num_classes == 10:
        parts = fake_cifar(20, 10, 6, seed=1)
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        folder = root / ("cifar-10-batches-py" if fmt == "python" else "cifar-10-batches-bin")
    else:
        parts = [*fake_cifar(200, 100, 1, seed=2), *fake_cifar(100, 100, 1, seed=3)]
        names = ["train", "test"]
        folder = root / ("cifar-100-python" if fmt == "python" else "cifar-100-binary")
    folder.mkdir(parents=True)
    for name, (data, labels) in zip(names, parts):
        if fmt == "python":
            key = "labels" if num_classes == 10 else "fine_labels"
            batch = {b"batch_label": b"fake", b"data": data, key.encode(): labels.tolist(),
                     b"filenames": [b"x.png"] * len(labels)}
            if num_classes == 100:
                batch[b"coarse_labels"] = (labels // 5).tolist()
            (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
        else:
            head = labels[:, None].astype(np.uint8)
            if num_classes == 100:
                head = np.concatenate([(labels // 5)[:, None].astype(np.uint8), head], axis=1)
            (folder / f"{name}.bin").write_bytes(np.concatenate([head, data], axis=1).tobytes())
    train = (np.concatenate([d for d, _ in parts[:-1]]), np.concatenate([y for _, y in parts[:-1]]))
    return folder, train, parts[-1]


@pytest.mark.parametrize("num_classes,fmt,protocol", [
    (10, "python", 2), (10, "binary", 0), (100, "python", 4), (100, "binary", 0), (10, "python", 5)])
def test_cifar_round_trip(tmp_path, num_classes, fmt, protocol):
    folder, (train_x, train_y), (test_x, test_y) = write_cifar(tmp_path, num_classes, fmt, protocol)
    for root in (tmp_path, folder):  # the parent or the folder itself
        data = load_dataset(Recipe(dataset=f"cifar{num_classes}", data_root=str(root)))
        assert data.num_classes == num_classes
        assert torch.equal(data.test.images, torch.from_numpy(test_x.reshape(-1, 3, 32, 32)))
        assert data.test.labels.tolist() == test_y.tolist()
        assert len(data.val) == len(train_y) // 10
        per_class = np.bincount(data.val.labels.numpy(), minlength=num_classes)
        assert np.all(per_class <= 1 + len(train_y) // num_classes // 10)
        source = dict(zip(rows(torch.from_numpy(train_x.reshape(-1, 3, 32, 32))), train_y.tolist()))
        seen = [*zip(rows(data.train.images), data.train.labels.tolist()),
                *zip(rows(data.val.images), data.val.labels.tolist())]
        assert sorted(seen) == sorted(source.items())


def test_cifar10_val_is_stratified_tenth(tmp_path):
    write_cifar(tmp_path, 10, "binary")
    data = load_dataset(Recipe(dataset="cifar10", data_root=str(tmp_path)))
    assert np.bincount(data.val.labels.numpy()).tolist() == [1] * 10
    assert np.bincount(data.train.labels.numpy()).tolist() == [9] * 10


def test_cifar_resized_and_fraction(tmp_path):
    write_cifar(tmp_path, 10, "python")
    data = load_dataset(Recipe(dataset="cifar10", data_root=str(tmp_path), image_size=16, data_fraction=0.5))
    assert data.train.images.shape == (50, 3, 16, 16) and data.test.images.shape == (20, 3, 16, 16)
    assert len(data.val) == 10 and data.memory.images.shape == (90, 3, 16, 16)
    full = load_dataset(Recipe(dataset="cifar10", data_root=str(tmp_path), image_size=16))
    assert torch.equal(data.memory.images, full.train.images) and full.memory is full.train


def test_cifar_pickle_refuses_code(tmp_path):
    folder, _, _ = write_cifar(tmp_path, 100, "python")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    (folder / "train").write_bytes(pickle.dumps({"data": Evil()}))
    with pytest.raises(UserError, match="refusing to load global") as err:
        load_dataset(Recipe(dataset="cifar100", data_root=str(tmp_path)))
    assert str(folder / "train") in str(err.value) and not marker.exists()


@pytest.mark.parametrize("breakage,message", [
    ("missing_root", "does not exist"),
    ("root_is_file", "is a file"),
    ("empty_parent", "has no cifar-10-batches-py/ or cifar-10-batches-bin/ folder"),
    ("empty_release_folder", "holds none of"),
    ("missing_batch", "lacks data_batch_3"),
    ("truncated_binary", "not a whole number of 3073-byte records"),
    ("not_a_pickle", "not a CIFAR python batch"),
    ("pickled_list", "holds a list"),
    ("labels_out_of_range", "labels outside 0..9"),
])
def test_cifar_bad_layout_names_path(tmp_path, breakage, message):
    root = tmp_path / "cifar"
    culprit = root
    if breakage == "root_is_file":
        root.write_bytes(b"archive")
    elif breakage == "empty_parent":
        root.mkdir()
    elif breakage == "empty_release_folder":
        (root / "cifar-10-batches-py").mkdir(parents=True)
        culprit = root / "cifar-10-batches-py"
    elif breakage != "missing_root":
        fmt = "binary" if breakage == "truncated_binary" else "python"
        folder, _, _ = write_cifar(root, 10, fmt)
        culprit = folder
        if breakage == "missing_batch":
            (folder / "data_batch_3").unlink()
        elif breakage == "truncated_binary":
            culprit = folder / "data_batch_2.bin"
            culprit.write_bytes(culprit.read_bytes()[:-5])
        else:
            culprit = folder / "test_batch"
            payload = {"not_a_pickle": b"\x00garbage", "pickled_list": pickle.dumps([1, 2]),
                       "labels_out_of_range": pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]})}
            culprit.write_bytes(payload[breakage])
    with pytest.raises(UserError, match=message) as err:
        load_dataset(Recipe(dataset="cifar10", data_root=str(root)))
    assert str(culprit) in str(err.value) and "\n" not in str(err.value)
