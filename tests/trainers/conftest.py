"""Trainer tests run single-threaded: CPU results are bit-identical only at a fixed thread count (reduction
order), and on 2 shared, busy cores two threads made small-tensor tests up to 10x slower (53 s vs 6 s)."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _back_to_one_thread(_one_thread):
    """`lightrecipe train` called in-process (cli.main) takes every core; the next test starts on one again."""
    yield
    torch.set_num_threads(1)
