"""The ground statistics: the t-interval by its formula, Kendall's tau-b with the exact p of every ordering."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from lightrecipe import stats
from tests.reports.confirmdb import literal_interval


def test_t_interval_matches_the_formula_and_has_no_width_for_one_value():
    mean, half = stats.t_interval([0.78, 0.80, 0.79])
    assert (mean, half) == pytest.approx(literal_interval([0.78, 0.80, 0.79]))
    assert math.isnan(stats.t_interval([0.5])[1]) and stats.t_interval([0.5])[0] == 0.5


def literal_exact_p(x, y):
    """The exact p written out: every ordering of y, its tau-b by the definition, the share at least as extreme."""
    def tau_b(a, b):
        pairs = list(itertools.combinations(range(len(a)), 2))
        s = sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i, j in pairs)
        return s / math.sqrt(sum(a[i] != a[j] for i, j in pairs) * sum(b[i] != b[j] for i, j in pairs))
    observed = abs(tau_b(x, y))
    orders = list(itertools.permutations(y))
    return sum(abs(tau_b(x, o)) >= observed - 1e-12 for o in orders) / len(orders)


def test_kendall_tau_is_tau_b_with_the_exact_p_of_the_orders_with_ties_held():
    # x ties its last two: S = 2 of 3 pairs, tau-b = 2 / sqrt(2 * 3); of the 6 orders of y, 4 reach |S| = 2
    assert stats.kendall_tau([1, 2, 2], [1, 2, 3]) == pytest.approx((2 / math.sqrt(6), 2 / 3))
    # the README's ResNet-10-T line: sweep 143, 142, 142, 137 of 145 val images, confirmed 97.7, 97.7, 97.5, 96.1;
    # scipy's normal approximation gave p = 0.13, the exact p with both ties held is 1/3
    tau, p = stats.kendall_tau([143, 142, 142, 137], [97.7, 97.7, 97.5, 96.1])
    assert tau == pytest.approx(0.8) and p == pytest.approx(1 / 3)
    for x, y in [((1, 1, 2, 3, 3), (2, 1, 3, 3, 5)), ((4, 3, 2, 1, 0, 0), (1, 1, 2, 0, 3, 3))]:
        assert stats.kendall_tau(x, y)[1] == pytest.approx(literal_exact_p(np.array(x), np.array(y)))
    assert math.isnan(stats.kendall_tau([1, 1, 1], [1, 2, 3])[0])  # one order all ties: no tau-b


def test_the_orders_enumerated_are_every_permutation_once():
    assert sorted(map(tuple, stats.all_orders(5).tolist())) == sorted(itertools.permutations(range(5)))
