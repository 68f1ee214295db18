"""`lightrecipe train --nproc N` on the path ImageNet users take: an image folder read by DataLoader workers."""

import pytest

from lightrecipe.trainers.data.digits_folder import write_digits_folder
from lightrecipe.trainers.recipe import preset
from lightrecipe.trainers.run.launch import launch


@pytest.mark.slow
def test_two_processes_train_on_an_image_folder_with_loader_workers(tmp_path):
    # Each rank's DataLoader starts a worker process: a rank started as a daemon may not (the old launcher's
    # "daemonic processes are not allowed to have children").
    folder = write_digits_folder(tmp_path / "digits")
    recipe = preset("digits-small", dataset="imagefolder", data_root=str(folder), epochs=1, batch_size=32,
                    queue_size=64, data_fraction=0.2, num_workers=1, probe_epochs=5)
    metrics = launch(recipe, workdir=tmp_path / "run", nproc=2, device="cpu")
    assert metrics["state"] == "complete" and metrics["epochs_run"] == 1
    assert 0.0 < metrics["knn_top1"] <= 1.0


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
