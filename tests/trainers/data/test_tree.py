"""Listing an unlabeled tree: images at any depth, nothing else; and how a changed source is described."""

import os

import pytest

from lightrecipe.errors import UserError
from lightrecipe.trainers.data import tree

from .trees import write_tree


def test_a_nested_tree_lists_its_images_at_every_depth_and_nothing_else(tmp_path):
    written = write_tree(tmp_path)
    assert tree.list_tree(tmp_path) == written
    assert {os.path.splitext(p)[1] for p in written} == {".png", ".jpg", ".JPEG", ".webp"}


def test_a_tree_without_images_is_one_line_naming_it(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("no images here")
    with pytest.raises(UserError, match=f"data_root '{tmp_path}' holds no images; expected a folder with jpg"):
        tree.list_tree(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        tree.list_tree(tmp_path / "missing")


def test_the_fingerprint_moves_with_names_sizes_and_times_and_the_change_is_named(tmp_path):
    paths = write_tree(tmp_path, count=8)
    before = tree.stats(paths)
    old = {os.path.relpath(p, tmp_path): s for p, s in zip(paths, before)}
    first = tree.fingerprint(tmp_path, paths, before)
    os.utime(paths[0], ns=(1, 1))
    (tmp_path / "d" / "new.png").write_bytes(open(paths[1], "rb").read())
    os.remove(paths[2])
    now = tree.list_tree(tmp_path)
    stats = tree.stats(now)
    assert tree.fingerprint(tmp_path, now, stats) != first
    rel = [os.path.relpath(p, tmp_path) for p in (paths[2], paths[0])]
    assert tree.describe_change(tmp_path, old, now, stats) == (
        f"1 added (e.g. d/new.png), 1 removed (e.g. {rel[0]}), 1 modified (e.g. {rel[1]})")
