"""The statistics of "does it hold up?", on plain numbers: the Student-t interval of a mean over seeds, Kendall's
tau-b of two orders with its exact permutation p-value, and the paired t-test of two recipes over the seeds both
completed. The report and the benchmarks that repeat seeds use these, so every interval is computed one way.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

CONFIDENCE = 0.95  # the interval every table and benchmark gives
NOISE_ALPHA = 0.05  # a difference with paired-t p >= 5% is "within noise"
EXACT_MAX_N = 10  # 10! = 3.6M orders: enumerated in a few seconds; above it, scipy's normal approximation


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """(mean, half-width) of the Student-t confidence interval of the mean; half-width NaN below 2 values."""
    from scipy import stats as scipy_stats

    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan
    if len(x) < 2:
        return float(x.mean()), math.nan
    half = scipy_stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(half)


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b alone (no p-value): (concordant - discordant) / sqrt(pairs untied in x * pairs untied in y)."""
    i, j = np.triu_indices(len(x), 1)
    sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    denominator = math.sqrt(np.count_nonzero(sx) * np.count_nonzero(sy))
    return float(sx @ sy) / denominator if denominator else math.nan


def kendall_tau(sweep_values: Sequence[float], confirmed_values: Sequence[float]) -> tuple[float, float]:
    """Kendall's tau-b of two orders and its two-sided p-value against "no association". For n <= EXACT_MAX_N the
    p-value is exact: the share of all n! orderings of `confirmed_values` against `sweep_values`, ties held as
    they are, whose |tau-b| is at least the observed one (the denominator is the same for every ordering, so
    |S|, the concordant minus discordant pairs, is compared). Above, scipy's normal approximation. Pairs with
    a missing value are left out; (NaN, NaN) below 2 pairs or when either order is all ties."""
    x, y = np.asarray(sweep_values, dtype=float), np.asarray(confirmed_values, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    i, j = np.triu_indices(n, 1)
    sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    denominator = math.sqrt(np.count_nonzero(sx) * np.count_nonzero(sy))
    if n < 2 or denominator == 0:
        return math.nan, math.nan
    s = float(sx @ sy)
    if n > EXACT_MAX_N:
        from scipy import stats as scipy_stats

        return s / denominator, float(scipy_stats.kendalltau(x, y, variant="b").pvalue)
    return s / denominator, _exact_p(sx, y, i, j, abs(s))


def _exact_p(sx: np.ndarray, y: np.ndarray, i: np.ndarray, j: np.ndarray, observed: float) -> float:
    """Share of the n! orderings of y with |S| >= observed (S is an integer: 0.5 absorbs float noise)."""
    ranks = np.unique(y, return_inverse=True)[1].astype(np.int8)  # ties stay ties; small ints are fast
    orders = ranks[all_orders(len(y))]
    s = np.zeros(len(orders), dtype=np.int16)
    for a, b, sign in zip(i, j, sx.astype(np.int16)):
        if sign:
            s += sign * np.sign(orders[:, a] - orders[:, b]).astype(np.int16)
    return float(np.count_nonzero(np.abs(s) >= observed - 0.5)) / len(orders)


def all_orders(n: int) -> np.ndarray:
    """Every permutation of range(n), one per row (n! x n, int8): built by inserting k into each of the k + 1
    places of every permutation of range(k), so no Python loop runs per permutation."""
    orders = np.zeros((1, 0), dtype=np.int8)
    for k in range(n):
        m = len(orders)
        grown = np.empty((m * (k + 1), k + 1), dtype=np.int8)
        for place in range(k + 1):
            rows = grown[place * m:(place + 1) * m]
            rows[:, :place], rows[:, place], rows[:, place + 1:] = orders[:, :place], k, orders[:, place:]
        orders = grown
    return orders


def paired_test(a: pd.Series | Any, b: pd.Series | Any, alpha: float = NOISE_ALPHA) -> tuple[bool, float, float, int]:
    """(True when a paired t-test on the per-seed differences a - b cannot tell them from 0 at `alpha`, its
    two-sided p, the mean difference, the pairs) over the seeds both rows completed. Paired, not Welch: seed s
    gives every recipe and the floor the same initial weights and data order, so runs of one seed are not
    independent and the seed's own luck cancels in the difference. Each row maps "seeds" and "values" to lists
    (a report's hold-up row, or a dict)."""
    from scipy import stats as scipy_stats

    mine, theirs = dict(zip(a["seeds"], a["values"])), dict(zip(b["seeds"], b["values"]))
    d = np.array([mine[s] - theirs[s] for s in sorted(set(mine) & set(theirs))], dtype=float)
    if len(d) < 2:
        return True, math.nan, float(d.mean()) if len(d) else math.nan, len(d)  # one pair shows no spread
    if np.ptp(d) < 1e-12:  # the same difference every seed: no spread to test against
        return bool(abs(d[0]) < 1e-12), 1.0 if abs(d[0]) < 1e-12 else 0.0, float(d.mean()), len(d)
    p = float(scipy_stats.ttest_1samp(d, 0.0).pvalue)
    return p >= alpha, p, float(d.mean()), len(d)
