"""`lightrecipe bench latency`: a real measurement of a small backbone, and bad input as one line, exit 2."""

from __future__ import annotations

import json

import pytest
import torch

from lightrecipe import cli
from lightrecipe.trainers import latency


def test_latency_times_batch_one_and_a_serving_batch_in_the_faster_memory_format():
    before = torch.get_num_threads()
    row = latency.measure("resnet10t", image_size=32, threads=1, runs=5, warmup=1)
    assert row["arch"] == "resnet10t" and row["device"] == "cpu" and row["threads"] == 1
    assert row["device_name"]  # the chip, so a number can be traced to a machine
    assert row["memory_format"] in ("nchw", "channels_last")
    assert 0 < row["batch1_ms_median"] <= row["batch1_ms_p90"]
    assert row["serving_batch"] == latency.SERVING_BATCH and row["serving_images_per_s"] > 0
    assert torch.get_num_threads() == before  # the caller's (a sweep driver's) threads are left as they were


def test_the_command_prints_one_json_line(capsys):
    assert cli.main(["bench", "latency", "--arch", "resnet10t", "--image-size", "16", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["image_size"] == 16


@pytest.mark.parametrize("argv, says", [
    (["--arch", "resnet10"], "--arch is 'resnet10', not a timm model"),
    (["--arch", "resnet10t", "--device", f"cuda:{torch.cuda.device_count()}"], "CUDA devices visible here; valid: cpu"),
    (["--arch", "resnet10t", "--device", "tpu"], "valid: cpu, cuda, cuda:N"),
    (["--arch", "resnet10t", "--threads", "0"], "--threads must be at least 1"),
])
def test_a_bad_arch_or_a_device_that_is_not_there_is_one_line_exit_2(argv, says, capsys):
    assert cli.main(["bench", "latency", *argv]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1
