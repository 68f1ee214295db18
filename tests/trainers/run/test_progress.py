"""The training progress bar: nothing drawn before the first epoch, a clock from the start, resumed runs' rates."""

import time

from lightrecipe.trainers.run.progress import EpochBar

METRICS = {"loss": 1.0, "knn_top1": 0.5, "images_per_s": 100.0}


def test_nothing_is_drawn_before_the_first_epoch_so_an_early_error_prints_alone(capsys):
    with EpochBar(4):
        pass
    assert capsys.readouterr().err == ""


def test_the_clock_counts_from_the_start_and_a_resumed_run_rates_only_its_own_epochs(capsys):
    with EpochBar(4) as bar:
        started = bar.started
        time.sleep(0.05)  # set-up before the first epoch ends
        bar.update({**METRICS, "epoch": 3})  # resumed after epoch 2
        assert bar.bar.start_t == started and bar.bar.initial == 2 and bar.bar.n == 3
    assert "3/4" in capsys.readouterr().err
