"""`smoothing_groups`: the graded targets of smoothed InfoNCE, as groups of neighbour ranks and their weights.

"SIZE:WEIGHT SIZE:WEIGHT ..." reads: the SIZE negatives most similar to the query after those of the groups
before share WEIGHT / (sum of the weights) of alpha, equally. This one rule writes the smoothing targets of the
authors' code: "20:1" is top-k with k = 20; "2:1 6:1 12:1" gives the 2, then the 6, then the 12 nearest negatives
alpha/3 per group; "5:2 5:1 5:1" gives three groups of 5 alpha/2, alpha/4 and alpha/4; "1:8 1:4 1:2 1:1" puts
geometric weights on the top 4. A weight may be written as a fraction ("1/3").
"""

from __future__ import annotations

from fractions import Fraction

EXAMPLE = "2:1 6:1 12:1"

Groups = tuple[tuple[int, float], ...]  # (size, share of alpha); shares sum to 1


def parse_groups(spec: str) -> Groups:
    """The groups `spec` names, shares normalised to sum to 1; ValueError saying what is wrong."""
    groups = []
    for part in spec.split():
        size, colon, weight = part.partition(":")
        try:
            count, share = int(size), Fraction(weight)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"group {part!r} is not SIZE:WEIGHT (e.g. 6:1 or 6:1/3)") from None
        if not colon or count < 1 or share <= 0:
            raise ValueError(f"group {part!r} needs a size >= 1 and a weight > 0")
        groups.append((count, share))
    if not groups:
        raise ValueError(f"no group of neighbours (e.g. '{EXAMPLE}')")
    total = sum(share for _, share in groups)
    return tuple((count, float(share / total)) for count, share in groups)


def neighbours(groups: Groups) -> int:
    """How many nearest negatives the groups weigh."""
    return sum(count for count, _ in groups)


def rank_shares(groups: Groups, available: int) -> list[float]:
    """The share of alpha of neighbour ranks 1, 2, ..., at most `available` of them, summing to 1. When a row has
    fewer negatives than the groups name, the ranks it lacks give their shares to the ranks it has, pro rata, so
    that the target still moves all of alpha (as top-k with k above the negatives does)."""
    shares = [share / count for count, share in groups for _ in range(count)][:max(available, 0)]
    total = sum(shares)
    return [s / total for s in shares] if total > 0 else []
