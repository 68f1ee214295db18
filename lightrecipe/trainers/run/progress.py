"""A progress bar over epochs for `lightrecipe train`, fed by train()'s report callback."""

from __future__ import annotations

import sys
import time
from typing import Any


class EpochBar:
    """Epochs done, loss, val kNN and images/s; the clock starts when the run does, not after its first epoch."""

    def __init__(self, epochs: int):
        self.epochs = epochs
        self.bar = None  # drawn at the first epoch, so an error while the data loads prints alone
        self.started = time.time()

    def update(self, metrics: dict[str, Any]) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True, leave=True)
            self.bar.start_t = self.started  # the clock counts from the start of the run, set-up included
            if metrics["epoch"] > 1:  # resumed: earlier epochs were trained by an earlier run
                self.bar.initial = metrics["epoch"] - 1  # so the rate and time left count only this run's epochs
        self.bar.n = metrics["epoch"]
        self.bar.set_postfix(
            loss=f"{metrics['loss']:.3f}", knn=f"{metrics['knn_top1']:.3f}", ips=f"{metrics['images_per_s']:.0f}"
        )

    def __enter__(self) -> "EpochBar":
        self.started = time.time()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()  # leaves one final line
