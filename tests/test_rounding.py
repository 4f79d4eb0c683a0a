"""Apportionment guarantees (docs/rounding.md), proven against an independent reference.

The reference computes capped exact shares by the textbook iteration (cap everyone whose share
exceeds their cap, re-spread, repeat) with Fractions, independently of ``water_fill``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from unittest.mock import patch

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fairalloc import rounding
from fairalloc.rounding import largest_remainder, quota_method


def reference_exact_shares(total: int, weights: list[int], caps: list[int | None]) -> list[Fraction]:
    """Capped proportional shares by repeated re-spreading (independent of fairalloc.rounding)."""
    n = len(weights)
    fixed: dict[int, Fraction] = {}
    while True:
        free = [i for i in range(n) if i not in fixed]
        rest = Fraction(total) - sum(fixed.values(), Fraction(0))
        weight = sum(weights[i] for i in free)
        shares = {i: (rest * weights[i] / weight if weight else Fraction(0)) for i in free}
        over = [i for i in free if caps[i] is not None and shares[i] > caps[i]]  # type: ignore[operator]
        if not over:
            return [fixed[i] if i in fixed else shares[i] for i in range(n)]
        for i in over:
            fixed[i] = Fraction(caps[i])  # type: ignore[arg-type]


@st.composite
def blocks(
    draw: st.DrawFn, max_accounts: int = 12, max_total: int = 60000
) -> tuple[int, list[int], list[int | None], int, list[int]]:
    n = draw(st.integers(1, max_accounts))
    weights = draw(st.lists(st.integers(0, 5000), min_size=n, max_size=n))
    assume(any(weights))
    lot = draw(st.sampled_from([1, 5, 10, 100]))
    caps: list[int | None] = draw(
        st.lists(st.one_of(st.none(), st.integers(0, 20000)), min_size=n, max_size=n)
    )
    capacity = sum(math.inf if c is None else c for w, c in zip(weights, caps) if w > 0)
    limit = int(min(capacity, max_total))
    total = draw(st.integers(0, limit))
    rank = draw(st.permutations(list(range(n))))
    return total, weights, caps, lot, list(rank)


@settings(max_examples=400, deadline=None)
@given(blocks())
def test_largest_remainder_conserves_caps_and_quota(block: tuple[int, list[int], list[int | None], int, list[int]]) -> None:
    total, weights, caps, lot, rank = block
    result = largest_remainder(total, weights, caps, lot, rank)
    alloc = result.allocations
    assert sum(alloc) == total  # conservation
    for i, exact in enumerate(reference_exact_shares(total, weights, caps)):
        if caps[i] is not None:
            assert alloc[i] <= caps[i]  # type: ignore[operator]
        # quota: the exact share rounded down or up to a lot, never further
        assert lot * math.floor(exact / lot) <= alloc[i] <= lot * math.ceil(exact / lot)
        assert result.steps[i].exact == exact


@settings(max_examples=300, deadline=None)
@given(blocks(), st.sampled_from(["smallest", "largest", "reversed"]))
def test_odd_remainder_rules_keep_every_guarantee(
    block: tuple[int, list[int], list[int | None], int, list[int]], rule: str
) -> None:
    total, weights, caps, lot, rank = block
    key = {"smallest": weights, "largest": [-w for w in weights], "reversed": [-r for r in rank]}[rule]
    alloc = largest_remainder(total, weights, caps, lot, rank, key).allocations
    assert sum(alloc) == total
    for i, exact in enumerate(reference_exact_shares(total, weights, caps)):
        assert caps[i] is None or alloc[i] <= caps[i]  # type: ignore[operator]
        assert lot * math.floor(exact / lot) <= alloc[i] <= lot * math.ceil(exact / lot)


@settings(max_examples=300, deadline=None)
@given(blocks(max_accounts=40), st.booleans())
def test_numpy_path_gives_identical_results(
    block: tuple[int, list[int], list[int | None], int, list[int]], by_size: bool
) -> None:
    total, weights, caps, lot, rank = block
    odd_key = weights if by_size else None
    with patch.object(rounding, "_NUMPY_FROM", 10**9):
        python = largest_remainder(total, weights, caps, lot, rank, odd_key)
    with patch.object(rounding, "_NUMPY_FROM", 0):
        vectorised = largest_remainder(total, weights, caps, lot, rank, odd_key)
    assert vectorised == python


@settings(max_examples=300, deadline=None)
@given(blocks(max_accounts=8, max_total=4000), st.integers(1, 1500))
def test_quota_method_is_fill_monotone(
    block: tuple[int, list[int], list[int | None], int, list[int]], more: int
) -> None:
    total, weights, caps, lot, rank = block
    capacity = sum(math.inf if c is None else c for w, c in zip(weights, caps) if w > 0)
    assume(total + more <= capacity)
    before = quota_method(total, weights, caps, lot, rank).allocations
    after = quota_method(total + more, weights, caps, lot, rank).allocations
    assert sum(before) == total and sum(after) == total + more
    assert all(b <= a for b, a in zip(before, after)), (before, after)
    assert all(c is None or a <= c for a, c in zip(after, caps))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 3000), min_size=1, max_size=10), st.integers(0, 400), st.sampled_from([1, 10, 100]))
def test_quota_method_satisfies_quota_at_whole_lots(weights: list[int], lots: int, lot: int) -> None:
    assume(any(weights))
    total_weight = sum(weights)
    alloc = quota_method(lots * lot, weights, [None] * len(weights), lot, list(range(len(weights)))).allocations
    for w, a in zip(weights, alloc):
        share = Fraction(lots * w, total_weight)
        assert math.floor(share) <= a // lot <= math.ceil(share)
        assert a % lot == 0


def test_alabama_paradox_under_largest_remainder_and_not_under_quota() -> None:
    weights, caps, rank = [6, 6, 2], [None, None, None], [0, 1, 2]
    assert largest_remainder(10, weights, caps, 1, rank).allocations == [4, 4, 2]
    assert largest_remainder(11, weights, caps, 1, rank).allocations == [5, 5, 1]  # C lost a share
    q10 = quota_method(10, weights, caps, 1, rank).allocations
    q11 = quota_method(11, weights, caps, 1, rank).allocations
    assert all(a <= b for a, b in zip(q10, q11))
    assert q11 == [5, 5, 1]


@settings(max_examples=200, deadline=None)
@given(blocks(max_total=6000), st.randoms(use_true_random=False))
def test_permuting_accounts_permutes_the_result(
    block: tuple[int, list[int], list[int | None], int, list[int]], rng: object
) -> None:
    total, weights, caps, lot, rank = block
    order = list(range(len(weights)))
    rng.shuffle(order)  # type: ignore[attr-defined]
    for method in (largest_remainder, quota_method):
        base = method(total, weights, caps, lot, rank).allocations
        shuffled = method(total, [weights[i] for i in order], [caps[i] for i in order], lot,
                          [rank[i] for i in order]).allocations
        assert shuffled == [base[i] for i in order]


def test_ties_follow_the_rank_not_the_position() -> None:
    # two equal accounts, one odd lot: the rank decides, wherever the account stands
    assert largest_remainder(300, [1, 1], [None, None], 100, [0, 1]).allocations == [200, 100]
    assert largest_remainder(300, [1, 1], [None, None], 100, [1, 0]).allocations == [100, 200]


def test_caps_that_cannot_hold_the_fill_are_refused() -> None:
    with pytest.raises(ValueError):
        largest_remainder(500, [1, 1], [100, 100], 100, [0, 1])
