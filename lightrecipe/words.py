"""Counts in messages: the one rule for "1 trial" and "2 trials", shared by every part that prints a count."""

from __future__ import annotations


def noun(n: int, singular: str, plural: str | None = None) -> str:
    """The noun in the number that fits `n`: noun(1, "trial") -> "trial", noun(0, "trial") -> "trials";
    `plural` for a noun whose plural is not noun + "s" (noun(2, "process", "processes"))."""
    return singular if n == 1 else plural or singular + "s"


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """`n` and its noun: counted(1, "epoch") -> "1 epoch", counted(3, "epoch") -> "3 epochs"."""
    return f"{n} {noun(n, singular, plural)}"
