"""Which confirmed recipe won: the one rule that the report, `lightrecipe confirm`'s printout and `--warm-start`
(confirmed winners first) all take, so that they never name different winners.

A recipe that completed every planned seed ranks before one that did not (a failed seed is a failure of the
recipe); then the higher mean confirmed value, the higher sweep value, the earlier sweep trial. Values are
compared as the images they stand for (`as_images`), so that a tie is a tie whatever order float addition took.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

FLOAT_DIGITS = 9  # ties without the split size: far coarser than float noise (1e-16), finer than 1 image in 10^8


def as_images(fraction: Any, images: float, seeds: int = 1) -> Any:
    """A score as the images it stands for: a mean over `seeds` of correct-image counts on a split of `images`,
    rounded to 1/seeds image (the finest step such a mean takes); two recipes with the same counts then compare
    equal. Without the split size (runs that predate `val_images`): the fraction rounded to FLOAT_DIGITS. Works
    on numbers and arrays."""
    x = np.asarray(fraction, dtype=float)
    if np.isfinite(images) and images > 0:
        return np.round(x * images * max(seeds, 1)) / max(seeds, 1)
    return np.round(x, FLOAT_DIGITS)


@dataclass(frozen=True)
class Standing:
    """What ranks one confirmed recipe; `confirmed` and `short` in `as_images` units, NaN when unknown."""

    all_seeds: bool  # every planned seed completed
    confirmed: float  # mean confirmed value
    short: float  # the value of its trial in the sweep (the short schedule)
    source_trial: int  # its trial number in the sweep

    def sort_key(self) -> tuple:
        return (not self.all_seeds, _higher_first(self.confirmed), _higher_first(self.short), self.source_trial)


def _higher_first(value: float) -> tuple[int, float]:
    """Sorts a value in descending order with a missing (NaN) value last."""
    return (0, -value) if math.isfinite(value) else (1, 0.0)


def winner_first(standings: Sequence[Standing]) -> list[int]:
    """The positions of `standings`, the winner first."""
    return sorted(range(len(standings)), key=lambda i: standings[i].sort_key())
