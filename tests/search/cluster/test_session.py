"""How many trials a cluster holds: worker bundles counted per node, so a data-parallel trial may span nodes."""

import pytest

from lightrecipe.errors import UserError
from lightrecipe.search.cluster.session import trials_that_fit, worker_bundles

FOUR_GPU_NODES = [{"CPU": 32.0, "GPU": 4.0}] * 4  # a cluster of 4-GPU nodes
TWO_ONE_CPU_NODES = [{"CPU": 1.0}, {"CPU": 1.0}]


@pytest.mark.parametrize("nodes,cpus,gpus,expected", [
    (FOUR_GPU_NODES, 1, 1, 16),  # GPUs bound: 4 per node
    (FOUR_GPU_NODES, 16, 1, 8),  # CPUs bound: 2 per node
    (FOUR_GPU_NODES, 1, 0.5, 32),  # fractional GPUs for one-worker trials
    (TWO_ONE_CPU_NODES, 1, 0, 2),
    (TWO_ONE_CPU_NODES, 2, 0, 0),  # no node holds 2 CPUs: a worker never spans nodes
    ([{"CPU": 8.0}], 1, 1, 0),  # no GPU anywhere
])
def test_worker_bundles_sum_what_each_node_holds(nodes, cpus, gpus, expected):
    assert worker_bundles(nodes, cpus, gpus) == expected


def test_eight_one_gpu_workers_fit_on_two_four_gpu_nodes():
    # --workers-per-trial 8 --gpus-per-trial 1 on 4-GPU nodes: the trial spans two nodes (the old rule asked one
    # node for 8 GPUs and refused); a cluster of four such nodes runs two trials at once.
    assert worker_bundles(FOUR_GPU_NODES, 1, 1) // 8 == 2
    assert worker_bundles(FOUR_GPU_NODES[:2], 1, 1) // 8 == 1


@pytest.mark.slow
def test_the_live_cluster_is_counted_and_a_trial_too_big_for_it_is_refused(ray_local):
    assert trials_that_fit(1, 0, 1) == 2  # the test session's Ray: one node of 2 CPUs
    assert trials_that_fit(1, 0, 2) == 1  # a 2-worker trial holds the whole node: one at a time
    with pytest.raises(UserError, match=r"a trial needs 3 worker\(s\) of 1 CPU .* but the cluster holds 2"):
        trials_that_fit(1, 0, 3)
