"""Statistical building blocks: exact tails, BH, and the re-allocation Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fairalloc.forensics.tests_stats import (
    benjamini_hochberg,
    binomial_upper_tail,
    normal_upper_tail,
    permutation_product_test,
    reallocation_test,
)


@given(st.integers(1, 40), st.floats(0.01, 0.99))
def test_binomial_tail_matches_direct_sum(n: int, p: float) -> None:
    for k in range(0, n + 2):
        direct = sum(math.comb(n, x) * p**x * (1 - p) ** (n - x) for x in range(k, n + 1))
        assert math.isclose(binomial_upper_tail(k, n, p), min(direct, 1.0), rel_tol=1e-9,
                            abs_tol=1e-300)


def test_tails_reach_far() -> None:
    assert math.isclose(binomial_upper_tail(50, 50, 0.5), 0.5**50, rel_tol=1e-12)
    assert 0 < normal_upper_tail(10.0) < 1e-22


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


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(20, 120))
def test_monte_carlo_p_is_invariant_to_row_order(seed: int, n: int) -> None:
    data = np.random.default_rng(seed)
    returns = data.normal(0, 0.02, n)
    favoured = data.random(n) < 0.3
    favoured[0], favoured[1] = True, False
    order = data.permutation(n)
    a = reallocation_test(returns, favoured, 500, np.random.default_rng(7))
    b = reallocation_test(returns[order], favoured[order], 500, np.random.default_rng(7))
    assert a is not None and b is not None
    assert (a.hits_mean, a.hits_wins, a.p_mc_mean) == (b.hits_mean, b.hits_wins, b.p_mc_mean)
    assert math.isclose(a.p_normal_mean, b.p_normal_mean, rel_tol=1e-9)


def test_monte_carlo_p_never_below_its_resolution() -> None:
    returns = np.r_[np.full(30, 0.05), np.full(300, -0.01)]
    favoured = np.r_[np.ones(30, bool), np.zeros(300, bool)]
    result = reallocation_test(returns, favoured, 999, np.random.default_rng(1))
    assert result is not None
    assert result.hits_mean == 0 and result.p_mc_mean == 1 / 1000
    assert result.p_value == result.p_normal_mean < 1e-12  # beyond MC resolution
    assert result.p_binomial_wins < 1e-12


def test_monte_carlo_agrees_with_normal_approximation_under_the_null() -> None:
    data = np.random.default_rng(3)
    returns = data.normal(0, 0.02, 2000)
    favoured = data.random(2000) < 0.2
    result = reallocation_test(returns, favoured, 20_000, np.random.default_rng(5))
    assert result is not None
    assert abs(result.p_mc_mean - result.p_normal_mean) < 0.02


def test_null_p_values_are_roughly_uniform() -> None:
    data = np.random.default_rng(11)
    ps = []
    for _ in range(300):
        returns = data.normal(0, 0.02, 200)
        favoured = data.random(200) < 0.25
        result = reallocation_test(returns, favoured, 0, data)
        assert result is not None
        ps.append(result.p_normal_mean)
    assert 0.03 < np.mean(np.array(ps) <= 0.1) < 0.17


def test_permutation_product_detects_alignment() -> None:
    data = np.random.default_rng(2)
    outcomes = np.sign(data.normal(size=200))
    weights = 0.1 * outcomes + data.normal(0, 0.05, 200)
    statistic, z, draws, hits, p_normal = permutation_product_test(
        weights, outcomes, 5000, np.random.default_rng(1)
    )
    assert draws == 5000 and hits == 0 and z > 8 and p_normal < 1e-15 and statistic > 0
