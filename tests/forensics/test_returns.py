"""First-day returns: signed by side, exact money, missing closes counted."""

from __future__ import annotations

import pathlib

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fairalloc.forensics import history
from fairalloc.forensics.returns import exact_sum, first_day, money_text, pool_of
from tests.forensics.conftest import write_history


def test_returns_and_money_are_signed_by_side(history: pathlib.Path) -> None:
    h = history_load(history)
    fd = first_day(h.allocations, h.closes)
    # buy at 100.00, close 101.00: +1 %; sell at 102.50, close 101.25: +1.2195 %
    assert np.allclose(fd.returns, [0.01, 0.01, 1.25 / 102.5, 1.25 / 102.5])
    assert fd.money.tolist() == [60000, 60000, 62500, 62500]  # cents
    assert money_text(exact_sum(fd.money), fd.scale) == "2450.00"
    assert fd.partial.tolist() == [True, True, False, False]


def test_missing_close_is_flagged_not_guessed(tmp_path: pathlib.Path) -> None:
    folder = write_history(tmp_path, prices="symbol,date,close\nXYZ,2025-03-03,101.0001\n")
    h = history_load(folder)
    fd = first_day(h.allocations, h.closes)
    assert fd.has_close.tolist() == [True, True, False, False]
    assert np.isnan(fd.returns[2:]).all() and fd.money[2:].tolist() == [0, 0]
    assert fd.scale == 4 and fd.money[0] == 600 * 10001


def test_exact_sum_does_not_overflow() -> None:
    values = np.full(1000, 2**62, dtype=np.int64)
    assert exact_sum(values) == 1000 * 2**62
    assert exact_sum(-values) == -1000 * 2**62


def test_pool_is_the_favoured_and_their_peers() -> None:
    order = np.array([0, 0, 1, 1, 2], dtype=np.int32)
    account = np.array([0, 1, 1, 2, 3], dtype=np.int32)
    assert pool_of(np.array([True, False, False, False]), order, account).tolist() == [
        True, True, False, False]


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 5)), max_size=40),
       st.lists(st.booleans(), min_size=6, max_size=6))
def test_pool_holds_exactly_the_accounts_sharing_an_order(
        rows: list[tuple[int, int]], favoured: list[bool]) -> None:
    order = np.array([o for o, _ in rows], dtype=np.int32)
    account = np.array([a for _, a in rows], dtype=np.int32)
    expected = [favoured[b] or any(favoured[a] and any(o == p for p, c in rows if c == b)
                                   for o, a in rows) for b in range(6)]
    assert pool_of(np.array(favoured), order, account).tolist() == expected


def history_load(folder: pathlib.Path) -> history.History:
    return history.load(folder / "allocations.csv", folder / "prices.csv")
