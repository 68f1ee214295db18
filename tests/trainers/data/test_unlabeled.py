"""`dataset: unlabeled`: a nested tree with junk is trained on, a labeled ImageNet-layout folder scores it."""

import re

import pytest
import torch

from lightrecipe.errors import UserError
from lightrecipe.trainers.data.datasets import load_dataset
from lightrecipe.trainers.recipe import Recipe

from .test_image_folder import write_folder
from .trees import write_tree

CPU = torch.device("cpu")


def unlabeled_recipe(tree, labeled, **changes) -> Recipe:
    return Recipe(dataset="unlabeled", data_root=str(tree), eval_root=str(labeled),
                  **{"num_workers": 0, "batch_size": 8, "bn_splits": 4, "queue_size": 0, **changes})


def test_the_tree_is_trained_on_and_the_labeled_folder_scores_as_imagefolder_would(tmp_path):
    images = write_tree(tmp_path / "tree")
    write_folder(tmp_path / "labeled")
    data = load_dataset(unlabeled_recipe(tmp_path / "tree", tmp_path / "labeled"))
    folder = load_dataset(Recipe(dataset="imagefolder", data_root=str(tmp_path / "labeled"), num_workers=0))
    assert data.train.paths == images  # every image at every depth, no junk
    assert data.memory.paths == folder.memory.paths and data.val.paths == folder.val.paths
    assert data.test.paths == folder.test.paths and data.num_classes == 3
    pairs = next(data.train.training_batches(8, device=CPU, generator=torch.Generator().manual_seed(0),
                                             crop_scale=(0.2, 1.0), seed=0))
    assert pairs.shape == (8, 2, 3, 32, 32) and pairs.dtype == torch.uint8 and pairs.float().std() > 0


def test_data_fraction_thins_the_unlabeled_images_into_nested_subsets(tmp_path):
    write_tree(tmp_path / "tree", count=40)
    write_folder(tmp_path / "labeled")
    half = load_dataset(unlabeled_recipe(tmp_path / "tree", tmp_path / "labeled", data_fraction=0.5))
    quarter = load_dataset(unlabeled_recipe(tmp_path / "tree", tmp_path / "labeled", data_fraction=0.25))
    assert (len(half.train), len(quarter.train)) == (20, 10)
    assert set(quarter.train.paths) < set(half.train.paths)
    assert len(half.memory) == len(quarter.memory) == 33  # the bank is scored alike at every fraction


@pytest.mark.parametrize("make,message", [
    (lambda root: None, "eval_root '{root}/labeled' does not exist; expected eval_root/train/<class>/"),
    (lambda root: (root / "labeled" / "train").mkdir(parents=True),
     "'{root}/labeled/train' has no class folders; expected eval_root/train/<class>/"),
])
def test_an_eval_root_that_is_not_an_imagenet_folder_is_one_line(tmp_path, make, message):
    write_tree(tmp_path / "tree")
    make(tmp_path)
    with pytest.raises(UserError, match=re.escape(message.format(root=tmp_path))):
        load_dataset(unlabeled_recipe(tmp_path / "tree", tmp_path / "labeled"))


def test_the_recipe_names_a_missing_or_misplaced_eval_root():
    with pytest.raises(UserError, match="recipe field 'eval_root' is empty; dataset 'unlabeled' needs"):
        Recipe(dataset="unlabeled", data_root="/x")
    with pytest.raises(UserError, match="recipe field 'eval_root' is set but dataset is 'imagefolder'"):
        Recipe(dataset="imagefolder", data_root="/x", eval_root="/y")
