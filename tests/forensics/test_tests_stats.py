"""Statistical building blocks: exact tails, BH, the within-order re-allocation Monte Carlo."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
from scipy import stats
from hypothesis import given, settings
from hypothesis import strategies as st

from fairalloc.forensics import tests_stats
from fairalloc.forensics.tests_stats import (
    MonteCarlo,
    benjamini_hochberg,
    binomial_sum_upper_tail,
    binomial_upper_tail,
    fisher_greater,
    permutation_product_test,
    pool_test,
    within_order_test,
)


def poisson_binomial_upper_tail(k: int, chances: np.ndarray) -> float:
    """The review's tail for chances given one per trial (grouped by value, as rotation does)."""
    values, counts = np.unique(chances, return_counts=True)
    return binomial_sum_upper_tail(k, values, counts.astype(np.int64))


def exact_poisson_binomial_tail(k: int, chances: list[Fraction]) -> Fraction:
    """P(X >= k) by exact rational convolution: the reference the review must match."""
    dist = [Fraction(1)]
    for q in chances:
        new = [Fraction(0)] * (len(dist) + 1)
        for i, v in enumerate(dist):
            new[i] += v * (1 - q)
            new[i + 1] += v * q
        dist = new
    return sum(dist[k:], Fraction(0))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(2, 12), min_size=1, max_size=60), st.data())
def test_poisson_binomial_tail_is_exact_to_three_digits(sizes: list[int], data: st.DataObject) -> None:
    k = data.draw(st.integers(0, len(sizes) + 1))
    chances = np.array([1.0 / n for n in sizes])
    exact = exact_poisson_binomial_tail(k, [Fraction(1, n) for n in sizes])
    got = poisson_binomial_upper_tail(k, chances)
    if exact == 0:
        assert got == 0.0
    else:
        assert math.isclose(got, float(exact), rel_tol=5e-4), (got, float(exact))


def test_poisson_binomial_far_tail_where_a_normal_approximation_fails() -> None:
    # 60 led orders of 7 accounts, expected leads below 9: 40 leads.
    exact = float(exact_poisson_binomial_tail(40, [Fraction(1, 7)] * 60))
    got = poisson_binomial_upper_tail(40, np.full(60, 1 / 7))
    assert exact < 1e-15 and math.isclose(got, exact, rel_tol=5e-4)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 9), st.integers(2, 30), st.integers(0, 25)),
                min_size=1, max_size=8), st.data())
def test_grouped_tail_is_exact_to_three_digits(groups: list[tuple[int, int, int]],
                                               data: st.DataObject) -> None:
    # Chances a/b (including 0 and 1) with repeat counts, as the rotation test groups them.
    chances = [Fraction(min(a, b), b) if a < 9 else Fraction(0) for a, b, _ in groups]
    counts = [c for _, _, c in groups]
    n = sum(counts)
    k = data.draw(st.integers(0, n + 1))
    exact = exact_poisson_binomial_tail(k, [q for q, c in zip(chances, counts, strict=True)
                                            for _ in range(c)])
    got = binomial_sum_upper_tail(k, np.array([float(q) for q in chances]),
                                  np.array(counts, dtype=np.int64))
    if exact == 0:
        assert got == 0.0
    else:
        assert math.isclose(got, float(exact), rel_tol=5e-4), (got, float(exact))


def test_grouped_tail_of_many_trials_keeps_its_precision_far_out() -> None:
    # One chance: the tail is a binomial one, which SciPy computes from the incomplete beta
    # function. 20,000 trials, tails from the middle to 3e-286 (and 0 where they underflow).
    for k in (400, 520, 700, 1_000, 1_200, 1_300, 1_400, 19_999):
        expected = float(stats.binom.sf(k - 1, 20_000, 0.02))
        got = binomial_sum_upper_tail(k, np.array([0.02]), np.array([20_000]))
        assert math.isclose(got, expected, rel_tol=1e-6), (k, got, expected)
    # Many distinct chances: SciPy's Poisson-binomial mass function (quadratic in the trials).
    data = np.random.default_rng(4)
    chances = 1.0 / data.integers(20, 80, size=2_000)
    for k in (40, 120):
        expected = float(stats.poisson_binom(chances).pmf(np.arange(k, 2_001)).sum())
        got = poisson_binomial_upper_tail(k, chances)
        assert math.isclose(got, min(expected, 1.0), rel_tol=1e-9), (k, got, expected)


@given(st.integers(1, 40), st.floats(0.01, 0.99))
def test_binomial_tail_matches_direct_sum(n: int, p: float) -> None:
    for k in range(1, n + 1):
        direct = sum(math.comb(n, x) * p**x * (1 - p) ** (n - x) for x in range(k, n + 1))
        assert math.isclose(binomial_upper_tail(k, n, p), min(direct, 1.0), rel_tol=1e-6,
                            abs_tol=1e-300)


def test_fisher_is_one_sided() -> None:
    assert fisher_greater(10, 0, 2, 8) < 1e-3
    assert fisher_greater(2, 8, 10, 0) > 0.99


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60))
def test_bh_is_monotone_and_bounded(values: list[float]) -> None:
    p = np.array(values)
    q = benjamini_hochberg(p)
    assert np.all(q >= p - 1e-15) and np.all(q <= 1.0)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(q[order]) >= -1e-15)


def test_bh_known_values() -> None:
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5]))
    assert np.allclose(q, [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])


def test_monte_carlo_reports_a_bound_when_no_draw_is_as_extreme() -> None:
    mc = MonteCarlo(99_999, 0)
    assert mc.is_bound and mc.p == 1e-5
    assert not MonteCarlo(1000, 3).is_bound


def _exact_within_order_p(values: list[list[float]], labels: list[list[int]]) -> float:
    """Share of all within-order permutations whose group-0 sum is at least the observed."""
    observed = sum(v for vs, ls in zip(values, labels, strict=True)
                   for v, lab in zip(vs, ls, strict=True) if lab == 0)
    sums = [0.0]
    for vs, ls in zip(values, labels, strict=True):
        options = [sum(v for v, lab in zip(p, ls, strict=True) if lab == 0)
                   for p in itertools.permutations(vs)]
        sums = [s + o for s in sums for o in options]
    return sum(s >= observed - 1e-9 for s in sums) / len(sums)


def test_within_order_monte_carlo_agrees_with_full_enumeration() -> None:
    values = [[3.0, -1.0, -2.0], [1.5, -0.5], [2.0, 0.0, -1.0, -1.0], [0.7, -0.7]]
    labels = [[0, -1, -1], [0, -1], [0, 0, -1, -1], [-1, 0]]
    exact = _exact_within_order_p(values, labels)
    flat = np.array([v for vs in values for v in vs])
    order = np.array([i for i, vs in enumerate(values) for _ in vs], dtype=np.int64)
    lab = np.array([x for ls in labels for x in ls], dtype=np.int64)
    result = within_order_test(flat, order, lab, 1, 50_000, np.random.default_rng(3))
    hits_share = result.hits[0] / result.draws
    assert abs(hits_share - exact) < 4 * math.sqrt(exact * (1 - exact) / result.draws) + 1e-4
    # The exact mean and variance of the permutation distribution.
    assert math.isclose(result.mean[0], 0.5, abs_tol=1e-9)  # Σ m × mean per order


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_within_order_result_does_not_depend_on_row_order(seed: int) -> None:
    data = np.random.default_rng(seed)
    order = np.repeat(np.arange(30), data.integers(2, 6, size=30)).astype(np.int64)
    values = data.normal(size=order.size)
    labels = np.where(data.random(order.size) < 0.3, 0, -1).astype(np.int64)
    a = within_order_test(values, order, labels, 1, 300, np.random.default_rng(1))
    shuffle = data.permutation(order.size)
    b = within_order_test(values[shuffle], order[shuffle], labels[shuffle], 1, 300,
                          np.random.default_rng(1))
    assert math.isclose(a.observed[0], b.observed[0], rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(a.sd[0], b.sd[0], rel_tol=1e-9, abs_tol=1e-12)


def test_within_order_is_one_sided() -> None:
    data = np.random.default_rng(5)
    order = np.repeat(np.arange(60), 5).astype(np.int64)
    values = data.normal(size=order.size)
    labels = np.tile(np.array([0, -1, -1, -1, -1]), 60).astype(np.int64)
    values[labels == 0] = np.abs(values[labels == 0]) + 1.0  # the group always does best
    winner = within_order_test(values, order, labels, 1, 2000, np.random.default_rng(2))
    loser = within_order_test(-values, order, labels, 1, 2000, np.random.default_rng(2))
    assert winner.result(0).is_bound and winner.result(0).p < 1e-3
    assert loser.result(0).p > 0.99


def test_within_order_draws_respect_the_work_budget() -> None:
    order = np.repeat(np.arange(100), 4).astype(np.int64)
    values = np.random.default_rng(1).normal(size=400)
    labels = np.tile(np.array([0, -1, -1, -1]), 100).astype(np.int64)
    result = within_order_test(values, order, labels, 1, 10_000, np.random.default_rng(1),
                               work_budget=40_000)
    assert result.draws == 100


def test_pool_test_combines_monte_carlo_and_fisher() -> None:
    returns = np.r_[np.full(30, 0.05), np.full(300, -0.01)]
    favoured = np.r_[np.ones(30, bool), np.zeros(300, bool)]
    result = pool_test(returns, favoured, 999, np.random.default_rng(1))
    assert result is not None
    assert result.monte_carlo.is_bound and result.monte_carlo.p == 1 / 1000
    assert result.p_fisher_wins < 1e-12
    assert result.p_value == 2 * result.p_fisher_wins


def test_permutation_product_detects_alignment() -> None:
    data = np.random.default_rng(2)
    outcomes = np.sign(data.normal(size=200))
    weights = 0.1 * outcomes + data.normal(0, 0.05, 200)
    statistic, mc = permutation_product_test(weights, outcomes, 5000, np.random.default_rng(1))
    assert mc.draws == 5000 and mc.hits == 0 and mc.is_bound and statistic > 0


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 400), st.data(), st.sampled_from([10, -3]))
def test_random_subsets_are_those_of_the_smallest_keys(n: int, data: st.DataObject,
                                                       margin: int) -> None:
    # The m rows with the smallest of n uniform keys per draw, also when the cut-off is set so
    # low (margin -3) that some draws have fewer rows below it and search all their keys.
    m = data.draw(st.integers(1, n - 1))
    values = np.random.default_rng(n).normal(size=n)
    draws = 50
    expected_keys = np.random.default_rng(7).random((draws, n))
    expected = values[np.argpartition(expected_keys, m - 1, axis=1)[:, :m]].sum(axis=1)
    saved = tests_stats.KEY_MARGIN_SDS
    tests_stats.KEY_MARGIN_SDS = margin
    try:
        got = tests_stats._subset_sums(values, m, draws, np.random.default_rng(7))
    finally:
        tests_stats.KEY_MARGIN_SDS = saved
    assert np.allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_labelled_draws_follow_the_permutation_distribution() -> None:
    # Three orders of four rows with one, two and three labelled rows (the last drawn by its
    # complement): the draws' distribution is the exact one of shuffling each order.
    vals = np.array([[3.0, -1.0, 0.5, -2.5], [1.0, 2.0, -4.0, 1.0], [0.3, -0.7, 2.2, -1.8]])
    labelled = np.array([[True, False, False, False], [False, True, True, False],
                         [True, True, False, True]])
    exact: dict[float, int] = {}
    per_order = [[round(sum(v[i] for i in range(4) if lab[p[i]]), 9)
                  for p in itertools.permutations(range(4))]
                 for v, lab in zip(vals, labelled, strict=True)]
    for combo in itertools.product(*per_order):
        key = round(sum(combo), 9)
        exact[key] = exact.get(key, 0) + 1
    total = sum(exact.values())
    draws = 40_000
    got = np.round(tests_stats._labelled_sums(vals, labelled, draws, np.random.default_rng(5)), 9)
    assert set(np.unique(got)) <= set(exact)
    for value, count in exact.items():
        share = count / total
        assert abs(float(np.mean(got == value)) - share) < 5 * math.sqrt(share / draws) + 1e-4
    for cut in sorted(exact)[::3]:
        share = sum(c for v, c in exact.items() if v <= cut) / total
        assert abs(float(np.mean(got <= cut)) - share) < 5 * math.sqrt(share * (1 - share) / draws) + 1e-4
