"""Fill pieces (docs/rounding.md, "Fill pieces"): how close ``fairalloc.money.split`` brings each
account's average price to the block's, against the best split whole pieces allow, found here by
enumerating every split of small cases and every exchange of medium ones.

At fill price the split minimises, as far as its budget goes, the accounts' absolute deviations
from the block's average sorted largest first (lexicographically). What it guarantees: conservation
of every fill and account in whole grains; a sorted deviation vector no worse than the proportional
split's, whose largest deviation is below the largest bound of docs/rounding.md; when
``closeness`` is ``no_closer_exchange``, no exchange of one grain between two accounts improves the
objective; when ``closest``, no split does. The proportional split alone (average price, several
trade dates) keeps each account's own bound.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterator, Sequence
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from fairalloc import allocate, load_trade, policy_from_text
from fairalloc.errors import InputError
from fairalloc.money import EXACT_SPLITS, MAX_PIECE_CELLS, Closeness, Column, split

Rows = list[tuple[int, ...]]  # account -> its quantity of each fill


def columns(sizes: Sequence[int], prices: Sequence[Fraction]) -> tuple[Column, ...]:
    """Fills in the order ``split`` takes them (one trade date, no broker)."""
    return tuple(Column(f"F{c}", dt.date(2026, 3, 2), None, size, price)
                 for c, (size, price) in enumerate(zip(sizes, prices)))


def rule(units: Sequence[int], sizes: Sequence[int], prices: Sequence[Fraction], lot: int,
         closest: bool = True) -> Rows:
    """The rule's split as rows (at fill price unless ``closest`` is false: the proportional split)."""
    return as_rows(split(list(units), columns(sizes, prices), lot, closest).pieces, len(units), len(sizes))


def as_rows(pieces: dict[int, list[tuple[int, int]]], accounts: int, fills: int) -> Rows:
    rows = []
    for k in range(accounts):
        row = [0] * fills
        for c, quantity in pieces.get(k, []):
            row[c] += quantity
        rows.append(tuple(row))
    return rows


def every_split(units: Sequence[int], sizes: Sequence[int], grain: int) -> Iterator[Rows]:
    """Every split of the fills into pieces of whole grains conserving fills and accounts."""
    def row(total: int, room: Sequence[int]) -> Iterator[tuple[int, ...]]:
        if len(room) == 1:
            if total <= room[0]:
                yield (total,)
            return
        for first in range(0, min(total, room[0]) + 1, grain):
            for rest in row(total - first, room[1:]):
                yield (first, *rest)

    def rows(k: int, room: list[int]) -> Iterator[Rows]:
        if k == len(units):
            if not any(room):
                yield []
            return
        for mine in row(units[k], room):
            for rest in rows(k + 1, [r - m for r, m in zip(room, mine)]):
                yield [mine, *rest]

    yield from rows(0, list(sizes))


def deviations(units: Sequence[int], sizes: Sequence[int], prices: Sequence[Fraction], rows: Rows) -> list[Fraction]:
    """Each account's |own average price - the block's average price|, exactly."""
    block = sum((s * p for s, p in zip(sizes, prices)), Fraction(0)) / sum(sizes)
    return [abs(sum((q * p for q, p in zip(mine, prices)), Fraction(0)) / u - block) for u, mine in zip(units, rows)]


def bound(quantity: int, sizes: Sequence[int], prices: Sequence[Fraction], grain: int) -> Fraction:
    """docs/rounding.md: grain / quantity x sum over consecutive fills c, c+1 of B_c |p_c - p_(c+1)|,
    B_c = sum over j <= c of R_(c+1) / R_(j+1), R_c the size of fills c onwards (grains)."""
    after = [sum(sizes[c:]) // grain for c in range(len(sizes))] + [0]
    total = Fraction(0)
    for c in range(len(sizes) - 1):
        weight = sum(Fraction(after[c + 1], after[j + 1]) for j in range(c + 1))
        total += weight * abs(prices[c] - prices[c + 1])
    return total * grain / quantity


@st.composite
def small_cases(draw: st.DrawFn) -> tuple[list[int], list[int], list[Fraction], int]:
    """Up to 4 fills and up to 3 accounts, in lots of 1 or 100; prices around 10 in cents."""
    lot = draw(st.sampled_from([1, 100]))
    sizes = [draw(st.integers(1, 4)) for _ in range(draw(st.integers(1, 4)))]
    accounts = draw(st.integers(1, min(3, sum(sizes))))
    cuts = sorted(draw(st.sets(st.integers(1, sum(sizes) - 1), min_size=accounts - 1, max_size=accounts - 1))
                  ) if accounts > 1 else []
    units = [(b - a) * lot for a, b in zip([0, *cuts], [*cuts, sum(sizes)])]
    prices = [Fraction(draw(st.integers(950, 1050)), 100) for _ in sizes]
    return units, [s * lot for s in sizes], prices, lot


def vector(deviations: Sequence[Fraction]) -> list[Fraction]:
    """The objective: the deviations sorted largest first (compared lexicographically)."""
    return sorted(deviations, reverse=True)


def searched(units: Sequence[int], sizes: Sequence[int], grain: int) -> bool:
    """Whether the exact search runs: the splits of every allocation but the last into pieces of
    the fills number at most EXACT_SPLITS (docs/rounding.md)."""
    count = 1
    for u in [u for u in units if u][:-1]:
        count *= math.comb(u // grain + len(sizes) - 1, len(sizes) - 1)
    return count <= EXACT_SPLITS


def closer_exchange(units: Sequence[int], sizes: Sequence[int], prices: Sequence[Fraction], rows: Rows,
                    grain: int) -> tuple[int, int, int, int] | None:
    """An exchange of one grain between two accounts (a gives one of fill c and takes one of fill
    d from b) that makes the sorted deviations lexicographically smaller, if there is one."""
    now = vector(deviations(units, sizes, prices, rows))
    for a, b in itertools.permutations(range(len(units)), 2):
        for c, d in itertools.permutations(range(len(sizes)), 2):
            if rows[a][c] >= grain and rows[b][d] >= grain:
                changed = [list(row) for row in rows]
                changed[a][c] -= grain
                changed[a][d] += grain
                changed[b][d] -= grain
                changed[b][c] += grain
                if vector(deviations(units, sizes, prices, [tuple(row) for row in changed])) < now:
                    return a, b, c, d
    return None


def conserved(units: Sequence[int], sizes: Sequence[int], rows: Rows, grain: int) -> bool:
    return ([sum(row) for row in rows] == list(units) and [sum(column) for column in zip(*rows)] == list(sizes)
            and all(q >= 0 and q % grain == 0 for row in rows for q in row))


@settings(max_examples=400, deadline=None)
@given(small_cases())
def test_on_small_cases_the_split_is_the_closest_or_no_exchange_is_closer(
        case: tuple[list[int], list[int], list[Fraction], int]) -> None:
    """Against every split of the case: the rule's split is one of them (it conserves fills and
    accounts in whole grains); when the exact search runs, no split has a lexicographically smaller
    sorted vector of deviations (so none a smaller largest deviation); else no exchange of one grain
    improves it. Always: it is no worse than the proportional split, whose deviations are each
    within their bound, so its largest deviation is below the largest bound."""
    units, sizes, prices, lot = case
    grain = math.gcd(lot, *sizes, *units)
    cut = split(units, columns(sizes, prices), lot, True)
    mine = as_rows(cut.pieces, len(units), len(sizes))
    splits = list(every_split(units, sizes, grain))
    assert mine in splits
    ours = deviations(units, sizes, prices, mine)
    best = min(vector(deviations(units, sizes, prices, rows)) for rows in splits)
    if searched(units, sizes, grain):
        assert cut.closeness is Closeness.CLOSEST
        assert vector(ours) == best
    else:
        assert cut.closeness is Closeness.NO_CLOSER_EXCHANGE
        assert best <= vector(ours)
    assert closer_exchange(units, sizes, prices, mine, grain) is None
    proportional = deviations(units, sizes, prices, rule(units, sizes, prices, lot, closest=False))
    limits = [bound(u, sizes, prices, grain) for u in units]
    for deviation, limit in zip(proportional, limits):
        assert deviation < limit or deviation == limit == 0
    assert vector(ours) <= vector(proportional)
    assert max(ours) < max(limits) or max(ours) == 0


@st.composite
def medium_cases(draw: st.DrawFn) -> tuple[list[int], list[int], list[Fraction], int]:
    """Up to 6 fills of up to 30 lots and up to 12 accounts; prices around 100 in cents, some equal."""
    lot = draw(st.sampled_from([1, 100]))
    sizes = [draw(st.integers(1, 30)) for _ in range(draw(st.integers(2, 6)))]
    accounts = draw(st.integers(2, min(12, sum(sizes))))
    cuts = sorted(draw(st.sets(st.integers(1, sum(sizes) - 1), min_size=accounts - 1, max_size=accounts - 1)))
    units = [(b - a) * lot for a, b in zip([0, *cuts], [*cuts, sum(sizes)])]
    levels = draw(st.lists(st.integers(9900, 10100), min_size=1, max_size=len(sizes)))
    prices = [Fraction(draw(st.sampled_from(levels)), 100) for _ in sizes]
    return units, [s * lot for s in sizes], prices, lot


@settings(max_examples=150, deadline=None)
@given(medium_cases())
def test_no_exchange_of_one_grain_brings_the_split_closer(
        case: tuple[list[int], list[int], list[Fraction], int]) -> None:
    """Beyond the exact search, against every exchange of one grain between two accounts: none
    makes the sorted deviations lexicographically smaller (the budget suffices at this size); the
    split conserves fills and accounts in whole grains and is no worse than the proportional split."""
    units, sizes, prices, lot = case
    grain = math.gcd(lot, *sizes, *units)
    cut = split(units, columns(sizes, prices), lot, True)
    mine = as_rows(cut.pieces, len(units), len(sizes))
    assert conserved(units, sizes, mine, grain)
    assert cut.closeness in (Closeness.CLOSEST, Closeness.NO_CLOSER_EXCHANGE)
    assert closer_exchange(units, sizes, prices, mine, grain) is None
    ours = deviations(units, sizes, prices, mine)
    proportional = deviations(units, sizes, prices, rule(units, sizes, prices, lot, closest=False))
    assert vector(ours) <= vector(proportional)
    limits = [bound(u, sizes, prices, grain) for u in units]
    assert max(ours) < max(limits) or max(ours) == 0


def test_a_large_block_stops_at_the_budget_no_worse_than_proportional() -> None:
    """3,000 accounts over four fills: the exchange pass stops at its budget; the pieces still
    conserve fills and accounts and are no worse than the proportional split."""
    units = [1 + (i * 7919 + 1) % 50 for i in range(3000)]
    sizes = [sum(units) // 4] * 3
    sizes.append(sum(units) - sum(sizes))
    prices = [Fraction(9995 + (c * 37) % 50, 100) for c in range(4)]
    cut = split(units, columns(sizes, prices), 1, True)
    assert cut.closeness is Closeness.BUDGET_REACHED
    mine = as_rows(cut.pieces, len(units), len(sizes))
    assert conserved(units, sizes, mine, 1)
    ours = deviations(units, sizes, prices, mine)
    proportional = deviations(units, sizes, prices, rule(units, sizes, prices, 1, closest=False))
    assert vector(ours) < vector(proportional)


GRID_PRICES = (Fraction(10), Fraction(11), Fraction(12))
GRID_CASES, GRID_CLOSEST, GRID_PROPORTIONAL = 1902, 1902, 1570
"""What the grid gives today (docs/rounding.md quotes it): a change of the rule changes these."""


def grid() -> Iterator[tuple[list[int], list[int], list[Fraction]]]:
    """Every case of 1 to 3 fills of 1 or 2 units each at 10, 11 or 12, among 2 or 3 accounts."""
    for fills in (1, 2, 3):
        for sizes in itertools.product((1, 2), repeat=fills):
            total = sum(sizes)
            for accounts in (2, 3):
                for cuts in itertools.combinations(range(1, total), accounts - 1):
                    units = [b - a for a, b in zip([0, *cuts], [*cuts, total])]
                    for prices in itertools.product(GRID_PRICES, repeat=fills):
                        yield units, list(sizes), list(prices)


def test_on_every_small_case_the_rule_is_the_closest_split() -> None:
    """The figures docs/rounding.md quotes, on the fixed grid: how many cases there are, in how
    many the fill-price split's largest deviation is the smallest any split allows (all: its sorted
    deviations are the smallest), and in how many the proportional split's alone is."""
    cases = closest = proportional = 0
    for units, sizes, prices in grid():
        splits = [deviations(units, sizes, prices, rows) for rows in every_split(units, sizes, 1)]
        best = min(vector(d) for d in splits)
        ours = deviations(units, sizes, prices, rule(units, sizes, prices, 1))
        assert vector(ours) == best
        cases += 1
        closest += max(ours) == best[0]
        proportional += max(deviations(units, sizes, prices, rule(units, sizes, prices, 1, closest=False))) == best[0]
    assert (cases, closest, proportional) == (GRID_CASES, GRID_CLOSEST, GRID_PROPORTIONAL)


def test_the_proportional_split_is_not_always_the_closest() -> None:
    """Three fills of 1 at 11, 10 and 12 (block 11) to accounts of 1 and 2: the proportional split
    gives the first fill's piece to the larger account (larger remainder), then the 10 to the first
    by account id, so the one-share account averages 10; at fill price the exchange of the 10 for
    the 11 puts both at the block's average."""
    units, sizes, prices = [1, 2], [1, 1, 1], [Fraction(11), Fraction(10), Fraction(12)]
    assert rule(units, sizes, prices, 1, closest=False) == [(0, 1, 0), (1, 0, 1)]
    assert deviations(units, sizes, prices, rule(units, sizes, prices, 1, closest=False)) == [1, Fraction(1, 2)]
    assert rule(units, sizes, prices, 1) == [(1, 0, 0), (0, 1, 1)]
    assert deviations(units, sizes, prices, rule(units, sizes, prices, 1)) == [0, 0]


# -- the bound on the work -------------------------------------------------------------------------
def _fill_price_trade(accounts: int, fills: int) -> dict[str, object]:
    intended = [100 * (1 + i % 7) for i in range(accounts)]
    statement = [{"account": f"A{i:05d}", "intended": quantity} for i, quantity in enumerate(intended)]
    total = sum(intended)
    sizes = [100] * (fills - 1) + [total - 100 * (fills - 1)]
    return {
        "order": {"id": "BIG", "symbol": "XYZ", "side": "buy", "quantity": total, "trade_date": "2026-03-02",
                  "entered_at": "2026-03-02T14:30:00Z"},
        "statement": {"recorded_at": "2026-03-02T14:00:00Z", "recorded_by": "pm", "accounts": statement},
        "fills": [{"id": f"F{j:05d}", "quantity": size, "price": f"{100 + j % 9}.{j % 100:02d}",
                   "executed_at": "2026-03-02T14:31:00Z"} for j, size in enumerate(sizes)],
    }


FILL_PRICE_POLICY = """
fairalloc: 1
id: fill-price
version: 1
effective: 2026-01-01
owner: tests
method: pro_rata
rounding: {lot: 100, method: largest_remainder}
price: {allocation: fill}
"""


def test_pieces_beyond_the_limit_are_refused_before_any_cut() -> None:
    """2,500 accounts and 2,001 fills is 5,002,500 pairs, one fill past the limit: refused with
    its code at /fills at once, where cutting it would take about half a minute."""
    assert 2_500 * 2_001 > MAX_PIECE_CELLS >= 2_500 * 2_000
    policy = policy_from_text(FILL_PRICE_POLICY)
    trade = load_trade(_fill_price_trade(2_500, 2_001))
    try:
        allocate(policy, trade)
    except InputError as error:
        (diagnostic,) = error.diagnostics
        assert diagnostic.code == "trade-too-many-pieces"
        assert diagnostic.location is not None and diagnostic.location.pointer == "/fills"
    else:
        raise AssertionError("a trade past the limit was cut into pieces")
