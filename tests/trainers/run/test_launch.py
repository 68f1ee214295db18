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
