"""`jpeg_decode: device`: workers read JPEG bytes and the training device decodes them in batches. Run here with
the device a CPU (torchvision's CPU decoder; on a GPU the same calls go to nvJPEG). The crop boxes are the
workers' own, so the views match the workers' up to resize rounding; other formats and bad files behave as there."""

import warnings

import numpy as np
import pytest
import torch

from lightrecipe.trainers.data.datasets import load_dataset
from tests.trainers.data.test_image_folder import CPU, folder_recipe, write_folder


def epoch(split, batch=8, seed=1):
    g = torch.Generator().manual_seed(0)
    return list(split.training_batches(batch, device=CPU, generator=g, crop_scale=(0.2, 1.0), seed=seed))


@pytest.mark.parametrize("num_workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_device_decoded_views_are_the_workers_views(tmp_path, num_workers):
    write_folder(tmp_path, ext="jpg", size=48)
    recipe = folder_recipe(tmp_path, image_size=24, num_workers=num_workers)
    by_workers = epoch(load_dataset(recipe).train)
    by_device = epoch(load_dataset(recipe.replace(jpeg_decode="device")).train)
    assert [b.shape for b in by_device] == [b.shape for b in by_workers] == [(8, 2, 3, 24, 24)] * 4
    assert all(b.dtype == torch.uint8 for b in by_device)
    diff = np.abs(torch.cat(by_device).numpy().astype(int) - torch.cat(by_workers).numpy().astype(int))
    assert diff.mean() < 2.0 and np.percentile(diff, 99) <= 16  # same boxes; PIL's and torch's resize round apart
    other_seed = epoch(load_dataset(recipe.replace(jpeg_decode="device")).train, seed=2)
    assert np.abs(torch.cat(other_seed).numpy().astype(int) - torch.cat(by_device).numpy().astype(int)).mean() > 5


def test_other_formats_are_decoded_by_the_workers_exactly_as_before(tmp_path):
    write_folder(tmp_path, ext="png", size=40)
    recipe = folder_recipe(tmp_path, image_size=20)
    by_workers = torch.cat(epoch(load_dataset(recipe).train))
    by_device = torch.cat(epoch(load_dataset(recipe.replace(jpeg_decode="device")).train))
    assert torch.equal(by_device, by_workers)


def test_a_jpeg_nothing_can_decode_is_skipped_and_counted_once(tmp_path):
    write_folder(tmp_path, train_per_class=40, val_per_class=1, ext="jpg", size=16)
    bad = tmp_path / "train" / "bee" / "broken.jpg"  # a JPEG's first bytes, then nothing a decoder can use
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    data = load_dataset(folder_recipe(tmp_path, image_size=16, jpeg_decode="device"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sizes = [len(b) for _ in range(2) for b in epoch(data.train, batch=1, seed=0)]  # every file, twice
    messages = [str(w.message) for w in caught if str(bad) in str(w.message)]
    assert len(messages) == 1 and messages[0].startswith("skipping unreadable image")
    assert len(sizes) == 2 * 109 and sum(sizes) == 2 * 108  # its batch comes out empty, as from the workers
    assert data.skipped_files() == [str(bad)]
