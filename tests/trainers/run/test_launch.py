"""`lightrecipe train --nproc N` on the path ImageNet users take: an image folder read by DataLoader workers."""

from pathlib import Path

import pytest
import torch

from lightrecipe.trainers.data.datasets import load_dataset
from lightrecipe.trainers.data.digits_folder import write_digits_folder
from lightrecipe.trainers.recipe import preset
from lightrecipe.trainers.run.launch import launch
from lightrecipe.trainers.run.train import train

KNN_ROUNDING = 0.01  # float rounding moves a kNN vote at a near tie (tests/trainers/parallel/test_world.py)


def break_file(path: str) -> str:
    Path(path).write_bytes(b"\xff\xd8 not a jpeg any more")
    return path


def train_one_thread(recipe, workdir):
    torch.set_num_threads(1)  # as each of the 2 processes on this machine's 2 cores
    return train(recipe, workdir=workdir, device="cpu")


@pytest.mark.slow
def test_two_processes_on_an_image_folder_with_unreadable_files_give_the_one_process_run(tmp_path):
    """The ImageNet user's path: an image folder read by DataLoader workers (a rank started as a daemon may not
    start them), with two unreadable files, one in the kNN memory bank (not trained on) and one in the test set.
    Each rank meets its own bad file; rows are placed by position before the bad ones are dropped, so the
    scores are one process's: nothing labelled 0 enters the bank, no real row is cut."""
    folder = write_digits_folder(tmp_path / "digits")
    recipe = preset("digits-small", dataset="imagefolder", data_root=str(folder), epochs=1, batch_size=32,
                    queue_size=64, data_fraction=0.07, num_workers=1, probe_weight_decay=1e-4)
    data = load_dataset(recipe)
    trained = set(data.train.paths)
    bad = [break_file(next(p for p in data.memory.paths[1::2] if p not in trained)), break_file(data.test.paths[0])]
    threads = torch.get_num_threads()
    try:
        one = train_one_thread(recipe, tmp_path / "one")
    finally:
        torch.set_num_threads(threads)
    two = launch(recipe, workdir=tmp_path / "two", nproc=2, device="cpu")
    assert two["state"] == "complete" and two["epochs_run"] == 1
    assert one["skipped_files"] == two["skipped_files"] == 2, bad  # every rank's skipped files, pooled
    assert one["test_images"] == two["test_images"] == len(data.test) - 1
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5)
    for key in ("knn_top1", "test_knn_top1"):
        assert abs(two[key] - one[key]) <= KNN_ROUNDING, (key, two[key], one[key])


class _StopAfterFirstEpoch(Exception):
    pass


def _stop_after_first_epoch(row):
    raise _StopAfterFirstEpoch


def _train_in_own_folder(recipe_dict, folders):
    """Each rank trains in its own folder: what ranks see when a shared file system shows them different files."""
    from lightrecipe.trainers.parallel.world import World
    from lightrecipe.trainers.recipe import Recipe
    from lightrecipe.trainers.run.train import train

    return train(Recipe.from_dict(recipe_dict), workdir=folders[World.current().rank], device="cpu")


@pytest.mark.slow
def test_rank_0_decides_where_a_run_resumes_for_every_rank(tmp_path):
    from lightrecipe.trainers.parallel.launch import run_parallel
    from lightrecipe.trainers.run.train import train

    recipe = preset("digits-small", epochs=2, batch_size=32, queue_size=64, data_fraction=0.15, probe_epochs=5)
    stale = tmp_path / "stale"  # a checkpoint at epoch 1 that only rank 1 sees
    with pytest.raises(_StopAfterFirstEpoch):
        train(recipe, workdir=stale, device="cpu", report=_stop_after_first_epoch)
    metrics = run_parallel(_train_in_own_folder, 2, args=(recipe.to_dict(), [str(tmp_path / "fresh"), str(stale)]),
                           device="cpu", timeout_s=120.0)
    # rank 0 saw no checkpoint, so both ranks trained epochs 1 and 2 (rank 1 starting at 2 would hang the group)
    assert metrics["state"] == "complete" and metrics["epochs_run"] == 2
