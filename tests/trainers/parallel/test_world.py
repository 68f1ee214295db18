"""Data-parallel MoCo on 2 CPU processes (gloo) against one process at the same global batch.

Each rank of a real 2-process group and one plain process run the same Trainer steps on the same views (so the
augmentation draws are equal by construction): the ranks get the strided shares of every global batch of 64.
With the same BatchNorm grouping (bn_splits counts groups in the global batch), MoCo's distributed semantics
(keys gathered and shuffled across ranks, the queue filled with every rank's keys, in-batch negatives from
every rank, SyncBatchNorm for bn_splits: 1, averaged gradients and BN statistics) make both compute the same.
A missing gather anywhere breaks one of these equalities. Then whole runs: `train()` itself (its own views,
data order, kNN monitor and probe) on 2 processes gives the one-process numbers.
"""

from __future__ import annotations

import pytest
import torch

from lightrecipe.errors import UserError
from lightrecipe.trainers.method.losses import smoothed_info_nce
from lightrecipe.trainers.method.split_bn import average_batch_norm_stats
from lightrecipe.trainers.parallel.launch import run_parallel
from lightrecipe.trainers.parallel.world import World, check_parallel
from lightrecipe.trainers.recipe import preset
from lightrecipe.trainers.run.outcome import RunStopped
from lightrecipe.trainers.run.train import STOP_POLL_STEPS, train
from lightrecipe.trainers.run.trainer import Trainer

GLOBAL_BATCH = 64
STEPS = 2
TIMEOUT_S = 120.0  # every collective of the group gives up after this, naming what it waited for
COMMON = dict(arch="mobilenetv3_small_050", image_size=32, batch_size=GLOBAL_BATCH, epochs=1, base_lr=0.5,
              warmup_epochs=0, key_momentum=0.9)
CASES = {
    # split BN inside each rank (2 groups per rank) composed with the key shuffle across ranks; a queue
    "split+queue": dict(bn_splits=4, queue_size=128, smoothing="topk", smoothing_alpha=0.2, smoothing_k=5),
    # one BN group per rank (plain BN, MoCo v2's shuffle BN across ranks); in-batch negatives, smoothed top-k
    "shuffle+in-batch": dict(bn_splits=2, queue_size=0, smoothing="topk", smoothing_alpha=0.2, smoothing_k=40,
                             symmetric=True),
    # BN over the whole global batch (SyncBatchNorm), MoCo v3 with its BN projector and predictor
    "sync+mocov3": dict(preset="mocov3", bn_splits=1, queue_size=0, proj_hidden_dim=64, proj_out_dim=32,
                        predictor_hidden_dim=64, precision="fp32"),  # fp16 rounding would swamp the comparison
}
TRAIN_SIZE = GLOBAL_BATCH * 10  # schedules over 10 steps, so the lr is not at its end


def case_recipe(name: str):
    changes = dict(COMMON, **CASES[name])
    return preset(changes.pop("preset", "digits-small"), **changes)


def global_views(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + step)
    return (torch.randn(GLOBAL_BATCH, 3, 32, 32, generator=g), torch.randn(GLOBAL_BATCH, 3, 32, 32, generator=g))


def run_steps(name: str) -> dict:
    """STEPS training steps of a case on this process's share of the views; what the tests compare."""
    world = World.current()
    trainer = Trainer.build(case_recipe(name), torch.device("cpu"), TRAIN_SIZE, world)
    losses = []
    for step in range(STEPS):
        x1, x2 = global_views(step)
        losses.append(float(trainer.optimize((world.shard(x1), world.shard(x2)), step)))
    model = trainer.model
    average_batch_norm_stats(model, world)
    out = {"losses": losses, "params": torch.cat([p.detach().flatten() for p in model.query_parameters()]),
           "key_params": torch.cat([p.detach().flatten() for p in model.key_parameters()]),
           "bn_stats": torch.cat([b.flatten() for n, b in model.backbone.state_dict().items()  # averages split groups
                                   if n.rsplit(".", 1)[-1] in ("running_mean", "running_var")])}
    if model.queue is not None:
        out["queue"] = model.queue.keys.clone()
    # this rank's own loss (not averaged over ranks) on fresh views, and the keys it was computed with
    x1, x2 = global_views(STEPS)
    with torch.no_grad():
        q = model.encode_query(world.shard(x1))
        out["keys"] = model.encode_key(world.shard(x2))
        alpha = 0.2 if case_recipe(name).smoothing != "none" else 0.0  # the trainer's schedule gives 0 without
        out["own_loss"] = float(model._directional_loss(q, out["keys"], alpha))
        out["queries"] = q
    return out


def run_cases() -> dict:
    return {name: run_steps(name) for name in CASES}


def gather_results(_rank_results=None) -> dict:
    """Rank 0's results plus every rank's, collected through the group itself (no files)."""
    world = World.current()
    mine = run_cases()
    return {"ranks": world.gather_objects(mine)}


@pytest.fixture(scope="module")
def runs():
    torch.set_num_threads(1)
    single = run_cases()  # no process group: one process at the global batch
    ranks = run_parallel(gather_results, 2, device="cpu", timeout_s=TIMEOUT_S)["ranks"]
    return single, ranks


def close(a, b, rel=3e-5) -> bool:
    """Equal up to float rounding: |a - b| <= rel * |b| in L2 over the whole tensor (gradients summed in
    another order drift by ~1e-6 relative over two steps; a missing gather changes values by 1e-2 and more)."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return a.shape == b.shape and float((a - b).norm()) <= rel * float(b.norm()) + 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_two_processes_match_one_at_the_same_global_batch(runs, name):
    single, ranks = runs
    one, r0, r1 = single[name], ranks[0][name], ranks[1][name]
    assert close(r0["losses"], one["losses"]) and r0["losses"] == r1["losses"], (r0["losses"], one["losses"])
    for key in ("params", "key_params", "bn_stats"):
        assert torch.equal(r0[key], r1[key]), f"{key} differ between ranks"
        assert close(r0[key], one[key]), f"{key}: relative difference {(r0[key] - one[key]).norm() / one[key].norm():.2e}"


@pytest.mark.slow
def test_queue_is_identical_on_every_rank_and_holds_every_rank_keys(runs):
    single, ranks = runs
    q0, q1, one = (r["split+queue"]["queue"] for r in (ranks[0], ranks[1], single))
    assert torch.equal(q0, q1), "the ranks' queues differ: keys were pushed without gathering them"
    pushed = STEPS * GLOBAL_BATCH  # rows 0..127: both steps' keys, image p of a global batch at row p
    for rank in (0, 1):  # rank r's images sit at positions r, r + 2, ...
        assert close(q0[rank:pushed:2], one[rank:pushed:2]), f"rank {rank}'s keys are missing from the queue"


@pytest.mark.slow
def test_in_batch_negatives_and_top_k_come_from_every_rank(runs):
    single, ranks = runs
    for name in ("shuffle+in-batch", "sync+mocov3"):
        one = single[name]
        for rank in (0, 1):
            mine = ranks[rank][name]
            assert close(mine["keys"], one["keys"]), f"{name}: rank {rank} does not hold every rank's keys"
            own = torch.arange(GLOBAL_BATCH)[rank::2]
            exclude = own.view(-1, 1) == torch.arange(GLOBAL_BATCH).view(1, -1)
            recipe = case_recipe(name)
            alpha = 0.2 if recipe.smoothing != "none" else 0.0
            expected = smoothed_info_nce(mine["queries"], one["keys"][rank::2], one["keys"], alpha=alpha,
                                         temperature=recipe.temperature, k_nn=recipe.smoothing_k, exclude=exclude)
            local_only = smoothed_info_nce(mine["queries"], mine["keys"][rank::2], mine["keys"][rank::2],
                                           alpha=alpha, temperature=recipe.temperature, k_nn=recipe.smoothing_k,
                                           exclude=torch.eye(len(own), dtype=torch.bool))
            assert close(mine["own_loss"], expected), f"{name}: rank {rank}'s loss does not use all 64 negatives"
            assert not close(mine["own_loss"], local_only)  # the test can tell the two apart


def test_recipe_rules_that_depend_on_the_process_count():
    check_parallel(preset("digits-small", batch_size=64, bn_splits=4), 2)
    check_parallel(preset("digits-small", batch_size=64, bn_splits=1), 4)
    with pytest.raises(UserError, match="'batch_size' \\(66\\).*multiple of 4"):
        check_parallel(preset("digits-small", batch_size=66, bn_splits=2, queue_size=0), 4)
    with pytest.raises(UserError, match="'bn_splits' \\(2\\).*multiple of the 4 processes"):
        check_parallel(preset("digits-small", batch_size=64, bn_splits=2), 4)


def test_strided_gather_layout_without_a_group():
    world = World()
    x = torch.arange(10)
    assert torch.equal(world.gather(x), x) and torch.equal(world.shard(x), x)
    assert torch.equal(World(1, 2).shard(x), torch.tensor([1, 3, 5, 7, 9]))
    assert World(1, 2).own_positions(2, 4, torch.device("cpu")).nonzero().tolist() == [[0, 1], [1, 3]]


def collect_rows(total: int):
    """Each rank's strided share of rows 0..total-1 (a row holds its own index), collected on rank 0."""
    world = World.current()
    mine = torch.arange(total, dtype=torch.float64)[world.rank::world.size].view(-1, 1).repeat(1, 3)
    return {"rank0": world.rows_on_rank0(mine, total),
            "elsewhere": world.gather_objects(world.rows_on_rank0(mine, total) is None)}


@pytest.mark.slow
@pytest.mark.parametrize("total", [6, 7])  # equal shares, and one rank a row short
def test_rows_reach_rank_0_in_global_order_none_dropped_or_repeated(total):
    out = run_parallel(collect_rows, 2, args=(total,), device="cpu", timeout_s=TIMEOUT_S)
    assert out["rank0"][:, 0].tolist() == list(range(total))
    assert out["elsewhere"] == [False, True]  # rank 1 holds nothing: scoring happens once


# One epoch of 3 steps of the digits preset (216 training images at batch 64), with train()'s own augmentation, data
# order, kNN monitor and probe. Longer runs drift apart as any two runs do that differ in float rounding: early
# MoCo on digits amplifies a 1e-8 difference in the weights about 30-fold per step, whether it comes from 2
# processes or from 2 threads instead of 1 in one process (benchmarks/bench_nproc_accuracy.py compares both).
KNN_ROUNDING = 0.01  # top-1 on ~360 images: 3 images
WHOLE_RUN = dict(epochs=1, warmup_epochs=0.0, bn_splits=4, queue_size=128, data_fraction=0.2, probe_weight_decay=1e-4)


def train_digits(workdir: str, seed: int) -> dict:
    torch.set_num_threads(1)
    return train(preset("digits-small", seed=seed, **WHOLE_RUN), workdir=workdir, device="cpu")


@pytest.mark.slow
def test_train_on_two_processes_gives_the_one_process_run(tmp_path):
    """Every rank draws the global batch's augmentation and keeps its rows, so 2 processes train on the views
    one process trains on (before, each rank drew its own: another run of the recipe, not the same one)."""
    one = train_digits(str(tmp_path / "one"), seed=1)
    two = run_parallel(train_digits, 2, args=(str(tmp_path / "two"), 1), device="cpu", timeout_s=TIMEOUT_S)
    assert close(two["loss"], one["loss"], rel=1e-5), (two["loss"], one["loss"])  # the mean over every rank's images
    assert close(two["feature_rank"], one["feature_rank"], rel=1e-3), (two["feature_rank"], one["feature_rank"])
    # The features agree to float rounding, which still moves a kNN vote at a near tie: 2 of 359 val images
    # here; different views move the loss by 1e-3 of itself, far outside the bound above.
    for key in ("knn_top1", "test_knn_top1"):
        assert abs(two[key] - one[key]) <= KNN_ROUNDING, (key, two[key], one[key])


def fail_on(ranks: tuple[int, ...], message: str) -> int:
    """World.agree around a step that raises the user's error on `ranks` ({rank} in `message`: each its own)."""
    world = World.current()

    def attempt() -> int:
        if world.rank in ranks:
            raise UserError(message.format(rank=world.rank))
        return world.rank

    return world.agree(attempt)


@pytest.mark.slow
def test_a_user_error_on_one_rank_stops_every_rank_with_its_line():
    """Rank 1 alone lacks the data: rank 0 raises rank 1's line instead of waiting in the next collective."""
    with pytest.raises(UserError, match=r"^rank 1 of 2 \(on .+\): data_root '/data/1' does not exist$"):
        run_parallel(fail_on, 2, args=((1,), "data_root '/data/{rank}' does not exist"), device="cpu",
                     timeout_s=TIMEOUT_S)
    with pytest.raises(UserError, match=r"^data_root '/data' does not exist$"):  # every rank alike: as one process
        run_parallel(fail_on, 2, args=((0, 1), "data_root '/data' does not exist"), device="cpu", timeout_s=TIMEOUT_S)
    assert run_parallel(fail_on, 2, args=((), ""), device="cpu", timeout_s=TIMEOUT_S) == 0


def train_until_asked(workdir: str, ask_at: int) -> dict:
    """train() whose stop check (asked on rank 0 only) says yes on its `ask_at`-th question."""
    asked = []

    def stop() -> bool:
        asked.append(True)
        return len(asked) >= ask_at

    torch.set_num_threads(1)
    recipe = preset("digits-small", epochs=1, warmup_epochs=0.0, bn_splits=4, probe_weight_decay=1e-4)
    try:
        train(recipe, workdir=workdir, device="cpu", stop=stop)
    except RunStopped as stopped:
        return {"stopped": str(stopped), "asked": len(asked), "world": World.current().size}
    return {"stopped": "", "asked": len(asked)}


@pytest.mark.slow
def test_a_stop_check_ends_every_rank_at_the_same_step_within_the_epoch(tmp_path):
    """Rank 0 is asked every STOP_POLL_STEPS steps and its answer reaches every rank: both leave train() at
    step 10 of the 16-step epoch, before its checkpoint, instead of at the epoch's end (or hanging, one rank
    waiting for the other in a collective)."""
    out = run_parallel(train_until_asked, 2, args=(str(tmp_path / "run"), 2), device="cpu", timeout_s=TIMEOUT_S)
    assert out == {"stopped": f"stopped in epoch 1, at step {STOP_POLL_STEPS}", "asked": 2, "world": 2}
    assert not (tmp_path / "run" / "checkpoint.pt").exists() and not (tmp_path / "run" / "metrics.json").exists()
