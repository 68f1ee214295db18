"""A progress bar over epochs for `lightrecipe train`, fed by train()'s report callback."""

from __future__ import annotations

import sys
from typing import Any


class EpochBar:
    def __init__(self, epochs: int):
        self.epochs = epochs
        self.bar = None  # made at the first epoch, so an early error prints alone

    def update(self, metrics: dict[str, Any]) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True, leave=True)
        # A resumed run starts past epoch 1: jump the bar to where the run is.
        self.bar.n = metrics["epoch"]
        self.bar.set_postfix(
            loss=f"{metrics['loss']:.3f}", knn=f"{metrics['knn_top1']:.3f}", ips=f"{metrics['images_per_s']:.0f}"
        )

    def __enter__(self) -> "EpochBar":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
