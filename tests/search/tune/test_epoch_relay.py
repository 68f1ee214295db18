"""A data-parallel trial's epochs reach Tune once each and in order, also when a restart skipped a report.

Rank 0 writes epoch e's checkpoint, then sends epoch e. A worker group restarted between the two resumes at
e + 1, so the relay sees e + 1 arrive with e never sent; the run folder's history holds e, and the relay sends it
first. `history` here is the run folder as the relay would read it at that moment.
"""

from lightrecipe.search.tune.data_parallel import EpochRelay


def row(epoch: int) -> dict:
    return {"epoch": epoch, "knn_top1": epoch / 10}


def test_an_epoch_checkpointed_but_never_sent_goes_out_before_the_next():
    folder = [row(1)]  # epoch 1 went out before the workers started (the trial re-sends what its folder holds)
    sent: list[dict] = []
    relay = EpochRelay(sent.append, lambda: list(folder))
    folder.append(row(2))
    relay.forward(row(2))
    folder += [row(3), row(4)]  # the group died after epoch 3's checkpoint, before sending it; resumed at 4
    relay.forward(row(4))
    assert [r["epoch"] for r in sent] == [2, 3, 4]
    assert sent[1] == row(3)  # the folder's own numbers for the epoch that was never sent


def test_a_repeated_epoch_goes_out_once():
    sent: list[dict] = []
    relay = EpochRelay(sent.append, lambda: [row(1), row(2)])
    relay.forward(row(2))  # already in the folder when the workers started: sent by the trial
    relay.forward(row(3))
    relay.forward(row(3))
    assert [r["epoch"] for r in sent] == [3]
