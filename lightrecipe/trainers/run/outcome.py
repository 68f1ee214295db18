"""How a run ends, as `train()` returns it in `metrics["state"]`. A sweep adds the states only it can give (a
trial ASHA pruned, one that failed, one still running: search/store/records.py)."""

COMPLETE = "complete"  # every epoch trained, then scored (kNN, linear probe)
DIVERGED = "diverged"  # the loss or the weights went non-finite; the run stopped at that epoch, unscored


class RunStopped(Exception):
    """Raised by train() on every rank at the same step when its `stop` check said so (a sweep stopped the trial).
    The run folder keeps its last finished epoch: train() on the folder again resumes from there."""
