"""`lightrecipe prepare`: a cache of real files is read through data_root like its source, reused when complete,
written again (and the reason named) when the source changed or it is stale, never left half written."""

import json
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from lightrecipe.cli import main
from lightrecipe.errors import UserError
from lightrecipe.trainers.data import cache as fmt
from lightrecipe.trainers.data.datasets import load_dataset
from lightrecipe.trainers.data.prepare import prepare
from lightrecipe.trainers.recipe import Recipe

from .test_image_folder import write_folder
from .trees import write_tree

CPU = torch.device("cpu")
QUIET = dict(workers=1, say=lambda line: None)


def test_an_imagefolder_cache_keeps_labels_and_splits_and_gives_the_same_views(tmp_path):
    write_folder(tmp_path / "src", size=40)
    prepare(tmp_path / "src", tmp_path / "cache", 40, **QUIET)
    recipe = Recipe(dataset="imagefolder", data_root=str(tmp_path / "src"), num_workers=0, image_size=32)
    files, cached = load_dataset(recipe), load_dataset(recipe.replace(data_root=str(tmp_path / "cache")))
    for a, b in zip(files._splits(), cached._splits()):
        assert a.paths == b.paths and a.labels.tolist() == b.labels.tolist()
    x_files = torch.cat([x for x, _ in files.test.batches(9, shuffle=False, drop_last=False, device=CPU)])
    x_cache = torch.cat([x for x, _ in cached.test.batches(9, shuffle=False, drop_last=False, device=CPU)])
    assert (x_files.float() - x_cache.float()).abs().mean() < 2.0  # square 40 px files: the same resize, once more
    pairs = next(cached.train.training_batches(8, device=CPU, generator=torch.Generator().manual_seed(0),
                                               crop_scale=(0.2, 1.0), seed=0))
    assert pairs.shape == (8, 2, 3, 32, 32) and pairs.float().std() > 0


def test_an_unlabeled_cache_stores_every_image_of_a_nested_tree_at_the_asked_shorter_side(tmp_path):
    images = write_tree(tmp_path / "tree")
    manifest = prepare(tmp_path / "tree", tmp_path / "cache", 16, **QUIET)
    assert (manifest["kind"], manifest["images"], manifest["skipped"]) == ("unlabeled", len(images), [])
    with np.load(tmp_path / "cache" / fmt.INDEX_FILE) as index:
        assert np.minimum(index["heights"], index["widths"]).tolist() == [16] * len(images)
        assert [str(tmp_path / "tree" / p) for p in index["paths"]] == images
    assert manifest["bytes"] == os.path.getsize(tmp_path / "cache" / fmt.PIXELS_FILE)
    write_folder(tmp_path / "labeled")
    data = load_dataset(Recipe(dataset="unlabeled", data_root=str(tmp_path / "cache"), num_workers=0,
                               eval_root=str(tmp_path / "labeled"), image_size=16))
    assert data.train.paths == images


def test_a_complete_cache_is_reused_and_a_changed_source_is_named_and_written_again(tmp_path):
    images = write_tree(tmp_path / "tree", count=8)
    said = []
    prepare(tmp_path / "tree", tmp_path / "cache", 16, workers=1, say=said.append)
    written = os.stat(tmp_path / "cache" / fmt.PIXELS_FILE).st_mtime_ns
    again = prepare(tmp_path / "tree", tmp_path / "cache", 16, workers=1, say=said.append)
    assert again["reused"] and said[-1].startswith(f"reusing the complete cache '{tmp_path / 'cache'}' (8 images")
    assert os.stat(tmp_path / "cache" / fmt.PIXELS_FILE).st_mtime_ns == written
    os.utime(images[0], ns=(10**9, 10**9))
    Image.open(images[1]).save(tmp_path / "tree" / "d" / "new.png")
    changed = prepare(tmp_path / "tree", tmp_path / "cache", 16, workers=1, say=said.append)
    assert said[-2] == (f"cache '{tmp_path / 'cache'}': the source changed since it was written: 1 added (e.g. "
                        f"d/new.png), 1 modified (e.g. {os.path.relpath(images[0], tmp_path / 'tree')}); "
                        "preparing it again")
    assert not changed["reused"] and changed["images"] == 9


def test_a_stale_cache_is_refused_by_name_and_prepare_rewrites_it(tmp_path):
    write_tree(tmp_path / "tree", count=8)
    write_folder(tmp_path / "labeled")
    prepare(tmp_path / "tree", tmp_path / "cache", 16, **QUIET)
    recipe = Recipe(dataset="unlabeled", data_root=str(tmp_path / "cache"), eval_root=str(tmp_path / "labeled"),
                    num_workers=0, image_size=32)
    with pytest.raises(UserError, match=re.escape(f"data_root '{tmp_path / 'cache'}' is a cache at 16 px (shorter "
                                                  "side); the recipe's image_size is 32: prepare it again with --size 32")):
        load_dataset(recipe)
    manifest_file = tmp_path / "cache" / fmt.CACHE_FILE
    manifest_file.write_text(json.dumps({**json.loads(manifest_file.read_text()), "version": 0}))
    with pytest.raises(UserError, match="has format version 0; this lightrecipe reads version 1"):
        load_dataset(recipe.replace(image_size=16))
    said = []
    prepare(tmp_path / "tree", tmp_path / "cache", 16, workers=1, say=said.append)
    assert said[0].endswith("written by another format version; preparing it again")
    assert load_dataset(recipe.replace(image_size=16)).train.paths


def test_unreadable_files_are_skipped_and_counted_and_too_many_leave_no_cache(tmp_path, capsys):
    images = write_tree(tmp_path / "tree", count=120)
    with open(images[5], "wb") as fh:
        fh.write(b"\x89PNG broken")
    manifest = prepare(tmp_path / "tree", tmp_path / "cache", 16, **QUIET)
    assert manifest["images"] == 119 and manifest["skipped"] == [os.path.relpath(images[5], tmp_path / "tree")]
    assert f"skipping unreadable image '{images[5]}'" in capsys.readouterr().err
    with open(images[6], "wb") as fh:
        fh.write(b"neither")
    with pytest.raises(UserError, match="2 of 120 image files cannot be read .more than 1%.*no cache was written"):
        prepare(tmp_path / "tree", tmp_path / "other", 16, **QUIET)
    assert not (tmp_path / "other").exists() and not (tmp_path / "other.partial").exists()


def test_an_interrupted_prepare_leaves_no_cache_and_the_next_one_completes(tmp_path):
    """What a killed prepare leaves is a `.partial` folder beside the target, never the target itself."""
    write_tree(tmp_path / "tree", count=8)
    partial = tmp_path / "cache.partial"
    partial.mkdir()
    (partial / fmt.PIXELS_FILE).write_bytes(b"\0" * 100)  # a killed prepare's half-written pixels
    assert not fmt.is_cache(tmp_path / "cache")
    manifest = prepare(tmp_path / "tree", tmp_path / "cache", 16, **QUIET)
    assert manifest["images"] == 8 and not partial.exists() and fmt.is_cache(tmp_path / "cache")


@pytest.mark.parametrize("argv,message", [
    (["prepare", "{tmp}/nowhere", "--out", "{tmp}/c", "--size", "32"], "source '{tmp}/nowhere' does not exist"),
    (["prepare", "{tmp}/tree", "--out", "{tmp}/c", "--size", "4"], "--size 4 is outside what a recipe's"),
    (["prepare", "{tmp}/tree", "--out", "{tmp}/tree", "--size", "32"], "--out '{tmp}/tree' lies inside the source"),
    (["prepare", "{tmp}/empty", "--out", "{tmp}/c", "--size", "32"], "data_root '{tmp}/empty' holds no images"),
])
def test_bad_prepare_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    write_tree(tmp_path / "tree", count=4)
    (tmp_path / "empty" / "x").mkdir(parents=True)
    (tmp_path / "empty" / "x" / "notes.txt").write_text("no images")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lightrecipe: error: " + message.format(tmp=tmp_path))
