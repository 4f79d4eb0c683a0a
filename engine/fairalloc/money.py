"""Stage 7 — settlement: the prices each account receives its shares at, and the cash it owes.

After the method has decided every account's quantity, this stage decides, once for both books
(it reads only the allocated column of integer units):

* **pieces** — at fill price (``price.allocation: fill``) each account receives pieces of real
  fills; at average price, a multi-day order is allocated per trade date (and per executing broker
  when ``price.by_broker`` says so), each day's pieces at that day's average. Pieces conserve every
  fill's (or day's) quantity and every account's allocation; see :func:`split` for how they are
  chosen and what they guarantee;
* **costs** — every named commission or fee of the trade (per order and per fill) is shared in
  whole cents in proportion to each account's quantity or notional, times its schedule; the cents
  left by rounding down go by the policy's residual rule (:func:`share_cents`);
* **money** — each account's gross (quantity x the prices it receives), its costs, the CME Rule 553
  credit when the average price is rounded that way, and its net.

Everything is exact: quantities are integer units, prices and money :class:`~fractions.Fraction`
or integer cents, never binary floats. The stage is a pure function of its inputs, and nothing is
added to a result whose policy and trade use none of it.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import itertools
import math
from collections.abc import Callable, Iterator
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

import msgspec

from fairalloc.errors import Code, Diagnostic, InputError, Location, RefusedError
from fairalloc.numbers import EXACT, decimal_text, present, present_text, to_units
from fairalloc.options import CME_553, RESIDUALS, CostBasis, PriceAllocation, Residual
from fairalloc.plan import Costs, CostShare, Policy
from fairalloc.trade import Clearing, Trade


class Column(msgspec.Struct, frozen=True):
    """What pieces are cut from: one fill (fill price), or the fills of one trade date and broker
    (average price); ``price`` is the fill's price or the group's exact average."""

    fill: str | None
    trade_date: dt.date
    broker: str | None
    units: int
    price: Fraction


class CostLine(msgspec.Struct, frozen=True):
    """One named cost: the trade's total and each account's share, in the currency's smallest unit."""

    name: str
    total: int
    share: CostShare
    cents: list[int]  # by position
    weights: list[int]  # by position: basis x schedule, in one common unit

    def explain(self, k: int, precision: int, residual: Residual) -> str:
        """How account ``k``'s share of this cost came about, in words."""
        whole = sum(self.weights)
        exact = Fraction(self.total * self.weights[k], whole) if whole else Fraction(0)
        basis = str(self.share.basis) + (f" x account.{self.share.schedule}" if self.share.schedule else "")
        words = (f"{_cash(self.cents[k], precision)} of {_cash(self.total, precision)} by {basis}: exact share "
                 f"{_exact(exact / 10**precision)}")
        if self.cents[k] > exact:
            words += f", rounded down, +1 cent by the residual rule ({RESIDUALS[residual].words})"
        elif self.cents[k] < exact:
            words += ", rounded down"
        return words


class Settlement(msgspec.Struct, frozen=True):
    """The pieces, costs and clearing instructions of one allocation (accounts by position)."""

    allocation: PriceAllocation
    columns: tuple[Column, ...]
    pieces: dict[int, list[tuple[int, int]]] | None  # position -> (column, units); None: one column
    costs: tuple[CostLine, ...]
    precision: int  # decimals of the currency
    residual: Residual | None
    clearing: dict[int, Clearing]
    side: str
    block_price: Fraction | None
    cme_553: bool  # the average price rounds by CME Rule 553; the difference is credited
    closeness: Closeness | None  # at fill price, what the pieces split achieves


def own_average(settlement: Settlement, k: int) -> Fraction | None:
    """The exact average price of account ``k``'s pieces (``None``: it has none)."""
    own = (settlement.pieces or {}).get(k)
    if not own:
        return None
    columns = settlement.columns
    return sum((u * columns[c].price for c, u in own), Fraction(0)) / sum(u for _, u in own)


def settle(policy: Policy, trade: Trade, ids: list[str], units: list[int], scale: int, lot: int,
           taken: dict[int, list[tuple[str, int]]] | None, file: str) -> Settlement | None:
    """The settlement of an allocation of ``units`` (by position), or ``None`` when the policy and
    the trade use none of it. ``taken``: the fills price/time gave each account."""
    pricing = policy.pricing
    costs = pricing.costs
    clearing = _clearing(trade, ids)
    if (pricing.allocation is PriceAllocation.AVERAGE and costs is None and not clearing
            and policy.price_rounding != CME_553 and _days(trade, scale, pricing.by_broker) < 2):
        return None
    per_fill = pricing.allocation is PriceAllocation.FILL or taken is not None
    columns = _columns(trade, scale, per_fill, pricing.by_broker)
    pieces: dict[int, list[tuple[int, int]]] | None = None
    closeness: Closeness | None = None
    if taken is not None:
        where = {column.fill: c for c, column in enumerate(columns)}
        pieces = {k: [(where[fill], u) for fill, u in fills] for k, fills in taken.items()}
    elif pricing.allocation is PriceAllocation.FILL or len(columns) > 1:
        if len(units) * len(columns) > MAX_PIECE_CELLS:
            raise InputError(Diagnostic(
                Code.TRADE_TOO_MANY_PIECES,
                f"cutting {len(columns):,} {'fills' if per_fill else 'trade dates and brokers'} into pieces for "
                f"{len(units):,} accounts is {len(units) * len(columns):,} account-fill pairs, more than "
                f"{MAX_PIECE_CELLS:,}", Location(file, pointer="/fills"),
                "allocate at the average price, or split the block into smaller ones"))
        cut = split(units, columns, lot, pricing.allocation is PriceAllocation.FILL)
        pieces, closeness = cut.pieces, cut.closeness
    block = _average(columns)
    precision = costs.precision if costs is not None else 2
    lines = () if costs is None else _costs(costs, policy, trade, ids, units, columns, pieces, file)
    return Settlement(pricing.allocation, columns, pieces, lines, precision,
                      costs.residual if costs is not None else None, clearing, trade.order.side, block,
                      policy.price_rounding == CME_553, closeness)


def _columns(trade: Trade, scale: int, per_fill: bool, by_broker: bool) -> tuple[Column, ...]:
    """The fills (``per_fill``) or their groups by trade date (and broker), in a canonical order."""
    day = trade.order.trade_date
    if per_fill:
        fills = sorted(trade.fills, key=lambda f: (f.trade_date or day, f.executed_at, f.id))
        return tuple(Column(f.id, f.trade_date or day, f.broker, to_units(f.quantity, scale), Fraction(f.price))
                     for f in fills)
    groups: dict[tuple[dt.date, str], list[int | Fraction]] = {}
    for fill in trade.fills:
        key = (fill.trade_date or day, (fill.broker or "") if by_broker else "")
        units = to_units(fill.quantity, scale)
        total = groups.setdefault(key, [0, Fraction(0)])
        total[0] = int(total[0]) + units
        total[1] = Fraction(total[1]) + units * Fraction(fill.price)
    return tuple(Column(None, date, broker or None, int(q), Fraction(v) / int(q))
                 for (date, broker), (q, v) in sorted(groups.items()) if q)


def _days(trade: Trade, scale: int, by_broker: bool) -> int:
    """How many columns ``_columns(trade, scale, False, by_broker)`` has (groups that take part),
    without their prices."""
    day = trade.order.trade_date
    groups: dict[tuple[dt.date, str], int] = {}
    for fill in trade.fills:
        key = (fill.trade_date or day, (fill.broker or "") if by_broker else "")
        groups[key] = groups.get(key, 0) + to_units(fill.quantity, scale)
    return sum(1 for units in groups.values() if units)


def _average(columns: tuple[Column, ...]) -> Fraction | None:
    total = sum(column.units for column in columns)
    return sum((column.units * column.price for column in columns), Fraction(0)) / total if total else None


def _clearing(trade: Trade, ids: list[str]) -> dict[int, Clearing]:
    if not trade.statement.columns.clearing:
        return {}
    found = {account.account: account.clearing for account in trade.statement.accounts if account.clearing}
    if not found:
        return {}
    return {k: found[account] for k, account in enumerate(ids) if account in found}


class Closeness(StrEnum):
    """What the fill-price pieces are known to achieve (docs/rounding.md, "Fill pieces")."""

    CLOSEST = "closest"  # no split of whole grains is closer: the exact search ran
    NO_CLOSER_EXCHANGE = "no_closer_exchange"  # no exchange of one grain between two accounts is closer
    BUDGET_REACHED = "budget_reached"  # the exchange pass stopped at its budget: no worse than proportional


class Split(msgspec.Struct, frozen=True):
    """Each account's pieces (position -> (column, units)) and, at fill price, what they achieve."""

    pieces: dict[int, list[tuple[int, int]]]
    closeness: Closeness | None


MAX_PIECE_CELLS = 5_000_000
"""Accounts times fills (or trade-date and broker groups) that pieces are cut for at most: the cut
costs time and memory in proportion (about 5 µs a pair on a 2-core machine), so a trade beyond it
is refused before any work (``trade-too-many-pieces``), as documents beyond their size are."""

EXACT_SPLITS = 10_000
"""The exact search runs when the splits it enumerates (the ways of cutting every account's
allocation but the last into pieces of the fills) number at most this."""

WORK_PER_ITEM = 16
"""The exchange pass's budget: :data:`WORK_FLOOR` plus this many units of work for each account,
fill and piece of the proportional split (a unit: one account of a sweep, one pair of accounts
considered, one exchange tested)."""

PATIENCE = 64
"""In a quick sweep of the exchange pass, an account stops trying the holders of a column (and
the accounts for its mirror exchange) after this many tried in a row in vain; a full sweep tries
them all, and only a sweep that cut no scan short and made no exchange ends the pass."""

WORK_FLOOR = 65_536
"""The part of the exchange pass's budget every block has, however small (a few tens of
milliseconds of work)."""


def split(units: list[int], columns: tuple[Column, ...], lot: int, closest: bool) -> Split:
    """Cut every account's allocation into pieces of the columns, conserving both: the pieces of
    a column add up to its quantity, an account's pieces to its allocation.

    Pieces are whole multiples of the largest quantity dividing the lot, every column and every
    allocation (a grain): whole lots when the fills and allocations are whole lots. First the
    proportional split: columns are taken in order; each account's piece of a column is its exact
    share of what remains (its remaining need x the column / all that remains), rounded down or up,
    so every piece is within one grain of that share, none exceeds what the account still needs, and
    the last column gives each account exactly what it still needs. The spare grains of a column go
    first to the accounts whose average so far lies furthest on the other side of the block's (for a
    column above the block's average, the accounts that have paid least), then to the largest
    fraction, then in account id order. Its guarantee is the bound on each account's deviation from
    the block's average that docs/rounding.md ("Fill pieces") proves.

    With ``closest`` (fill price) the split is then brought closer to the block's average: the
    objective is the accounts' absolute deviations sorted largest first, compared lexicographically
    (the largest deviation first, then the next, ...). The exchange pass (:func:`_exchange`) makes
    one-grain exchanges between two accounts while one strictly improves it, within a budget of
    :data:`WORK_FLOOR` plus :data:`WORK_PER_ITEM` units of work per account, fill and piece; small cases (at most
    :data:`EXACT_SPLITS` splits) are then searched exactly (:func:`_search`). ``closeness`` says
    which guarantee holds. Deterministic: accounts are taken by position (account id order) and
    columns in their canonical order, never in input order.
    """
    grain = math.gcd(lot, *(column.units for column in columns), *units)
    need = [u // grain for u in units]
    sizes = [column.units // grain for column in columns]
    rows = _proportional(need, sizes, columns)
    closeness: Closeness | None = None
    accounts = [k for k, n in enumerate(need) if n]
    if closest and (len(columns) == 1 or not accounts):
        closeness = Closeness.CLOSEST  # every account at the block's average, or none to place
    elif closest:
        scale = math.lcm(*(column.price.denominator for column in columns))
        prices = [column.price.numerator * (scale // column.price.denominator) for column in columns]
        total, value = sum(sizes), sum(s * p for s, p in zip(sizes, prices))
        weights = [total * p - value for p in prices]  # a grain's money above the block's average, x total x scale
        budget = WORK_FLOOR + WORK_PER_ITEM * (len(accounts) + len(columns) + sum(len(rows[k]) for k in accounts))
        closeness = Closeness.NO_CLOSER_EXCHANGE if _exchange(rows, need, weights, accounts, budget) \
            else Closeness.BUDGET_REACHED
        if _search(rows, need, sizes, weights, accounts):
            closeness = Closeness.CLOSEST
    pieces = {k: [(c, g * grain) for c, g in sorted(row.items()) if g] for k, row in rows.items()}
    return Split(pieces, closeness)


def _proportional(grains: list[int], sizes: list[int], columns: tuple[Column, ...]) -> dict[int, dict[int, int]]:
    """The proportional split, in grains: account position -> column -> grains."""
    need = {k: n for k, n in enumerate(grains) if n}
    remaining = sum(sizes)
    block = _average(columns) or Fraction(0)
    drift = {k: Fraction(0) for k in need}  # money above the block's average, so far (per grain)
    rows: dict[int, dict[int, int]] = {k: {} for k in need}
    for c, (column, size) in enumerate(zip(columns, sizes)):
        floors: dict[int, int] = {}
        spare: list[tuple[int, int]] = []
        for k, wanted in need.items():
            base, rem = divmod(wanted * size, remaining)
            floors[k] = base
            if rem:
                spare.append((k, rem))
        left = size - sum(floors.values())
        if left:
            side = (column.price > block) - (column.price < block)
            if side:
                spare.sort(key=lambda item: (side * drift[item[0]] / grains[item[0]], -item[1], item[0]))
            else:
                spare.sort(key=lambda item: (-item[1], item[0]))
            for k, _ in spare[:left]:
                floors[k] += 1
        for k, taken in floors.items():
            if taken:
                rows[k][c] = taken
                need[k] -= taken
                drift[k] += taken * (column.price - block)
        remaining -= size
    return rows


def _exchange(rows: dict[int, dict[int, int]], need: list[int], weights: list[int], accounts: list[int],
              budget: int) -> bool:
    """Make one-grain exchanges between two accounts while one strictly improves the objective;
    ``True`` when a sweep that cut no scan short found none (no exchange brings the split closer),
    ``False`` when the budget ran out first.

    Account *k*'s money ``D_k`` (its grains x ``weights``) is its deviation times its grains, so
    its deviation compares as ``|D_k| / need[k]``. An exchange changes two accounts' deviations
    only, and the objective (all deviations sorted largest first) improves exactly when their
    pair, sorted, improves lexicographically; the further account *a* of an improving pair either
    comes nearer (it takes a grain of a target column, :func:`_targets`, giving up at least that
    column's gap, and *b* stays within *a*'s deviation) or goes to its mirror deviation while *b*,
    with more money on *a*'s other side than *a* has, comes nearer. A sweep takes every account *a*
    from the largest deviation down and tries, first, for each target column, its holders from the
    largest allocation down until none smaller can take the gap, then the accounts with more money
    on the other side (as at the sweep's start, and those changed since); each pair tried makes its
    best exchange (:func:`_improve`) if that improves. Quick sweeps cut a scan short after
    :data:`PATIENCE` partners tried in vain in a row; a quick sweep that made no exchange but cut
    one short is followed by a full sweep. Work counts a sweep's accounts, every pair considered
    and every exchange tested.
    """
    money = {k: sum(g * weights[c] for c, g in rows[k].items()) for k in accounts}

    def by_size(k: int) -> tuple[int, int]:  # the partners' order: largest allocation first
        return -need[k], k

    holders: list[list[int]] = [[] for _ in weights]  # the accounts holding each column, by size
    for k in sorted(accounts, key=by_size):
        for c in rows[k]:
            holders[c].append(k)
    work, patience = 0, PATIENCE
    while True:
        work += len(accounts)  # the sweep's own sorting
        if work > budget:
            return False
        moved: dict[int, None] = {}  # the accounts an exchange of this sweep changed, in order
        cut = False  # whether patience cut a scan short: the sweep was not full
        ranked = sorted(accounts, key=lambda k: (money[k], k))  # by money at the sweep's start
        values = [money[k] for k in ranked]
        for a in _by_deviation(accounts, money, need):
            # closer: a nearer the block's average, taking a grain of a target column d from a b
            # within a's deviation that can take the gap; b by allocation, largest first
            targets, t = _targets(rows[a], weights, money[a]), 0
            tried: set[int] = set()
            while t < len(targets):
                d, gap = targets[t]
                t += 1
                idle = 0  # partners tried in vain in a row
                for b in holders[d]:
                    big, size, side = abs(money[a]), need[a], (1 if money[a] > 0 else -1)
                    if gap * size > 2 * big * need[b]:
                        break  # no b this small can take the gap
                    if patience and idle > patience:
                        cut = True
                        break
                    work += 1
                    idle += 1
                    if work > budget:
                        return False
                    if (b == a or b in tried or abs(money[b]) * size > big * need[b]
                            or gap * size > big * need[b] - side * money[b] * size):
                        continue  # itself; tried; further than a (its own sweep covers the pair); cannot take the gap
                    tried.add(b)
                    work += len(rows[a]) * len(rows[b])
                    if work > budget:
                        return False
                    exchange = _improve(rows, need, weights, money, a, b)
                    if exchange is not None:
                        moved[a] = moved[b] = None
                        c, e = exchange
                        for k, gave, took in ((a, c, e), (b, e, c)):
                            _holding(holders[gave], k, by_size, bool(rows[k].get(gave)))
                            _holding(holders[took], k, by_size, True)
                        targets, t = _targets(rows[a], weights, money[a]), 0
                        tried.clear()
                        break
            # the mirror: a to its mirror deviation, b nearer; b with more money on a's other side than a has
            big, side = abs(money[a]), (1 if money[a] > 0 else -1)
            if not any(side * (weights[c] - w) == 2 * big for c in rows[a] for w in weights) or not big:
                continue
            if side > 0:
                beyond = ranked[:bisect.bisect_left(values, -big)]
            else:
                beyond = ranked[bisect.bisect_right(values, big):]
            for idle, b in enumerate([*beyond, *moved]):
                if patience and idle > patience:
                    cut = True
                    break
                big, size, side = abs(money[a]), need[a], (1 if money[a] > 0 else -1)
                work += 1
                if work > budget:
                    return False
                if b == a or -side * money[b] <= big or abs(money[b]) * size > big * need[b]:
                    continue
                work += len(rows[a]) * len(rows[b])
                if work > budget:
                    return False
                if _improve(rows, need, weights, money, a, b) is not None:
                    moved[a] = moved[b] = None
        if not moved and not cut:
            return True
        patience = PATIENCE if moved else 0  # after a quick sweep that made none, a full sweep


def _holding(column: list[int], k: int, by_size: Callable[[int], tuple[int, int]], holds: bool) -> None:
    """Keep account ``k`` in the sorted list of a column's holders exactly when it ``holds`` it."""
    at = bisect.bisect_left(column, by_size(k), key=by_size)
    listed = at < len(column) and column[at] == k
    if holds and not listed:
        column.insert(at, k)
    elif listed and not holds:
        del column[at]


def _targets(row: dict[int, int], weights: list[int], money: int) -> list[tuple[int, int]]:
    """The columns *d* a grain of which an account with ``row`` and ``money`` can take for one of
    its own columns *c* and come nearer the block's average (it gives up more than nothing and less
    than twice its money), each with the least money that gives up, in column order."""
    side = 1 if money > 0 else -1
    targets = []
    for d, w in enumerate(weights):
        gaps = [side * (weights[c] - w) for c in row if 0 < side * (weights[c] - w) < 2 * abs(money)]
        if gaps:
            targets.append((d, min(gaps)))
    return targets


def _by_deviation(accounts: list[int], money: dict[int, int], need: list[int]) -> list[int]:
    """The accounts by deviation (``|money| / need``), largest first, equal ones by position: sorted
    by the deviation to 64 binary places, then, where those are equal, exactly (integers only)."""
    order = sorted(accounts, key=lambda k: (-((abs(money[k]) << 64) // need[k]), k))
    def further(a: int, b: int) -> int:
        return abs(money[b]) * need[a] - abs(money[a]) * need[b] or a - b

    exact = functools.cmp_to_key(further)
    result: list[int] = []
    for _, group in itertools.groupby(order, key=lambda k: (abs(money[k]) << 64) // need[k]):
        result.extend(sorted(group, key=exact))
    return result


def _improve(rows: dict[int, dict[int, int]], need: list[int], weights: list[int], money: dict[int, int],
             a: int, b: int) -> tuple[int, int] | None:
    """Make the best exchange between accounts ``a`` and ``b`` (``a`` gives a grain of column *c*
    and takes one of column *d* from ``b``) if it improves their pair, and return (c, d); first
    such (c, d) in column order among equals."""
    ma, mb, ua, ub = money[a], money[b], need[a], need[b]
    best = _pair(abs(ma), ua, abs(mb), ub)
    chosen: tuple[int, int] | None = None
    for c in sorted(rows[a]):
        for d in sorted(rows[b]):
            moved = weights[c] - weights[d]
            if moved:
                pair = _pair(abs(ma - moved), ua, abs(mb + moved), ub)
                if _before(pair, best):
                    best, chosen = pair, (c, d)
    if chosen is None:
        return None
    c, d = chosen
    for k, give, take in ((a, c, d), (b, d, c)):
        row = rows[k]
        row[give] -= 1
        if not row[give]:
            del row[give]
        row[take] = row.get(take, 0) + 1
    money[a] -= weights[c] - weights[d]
    money[b] += weights[c] - weights[d]
    return chosen


def _pair(x: int, u: int, y: int, v: int) -> tuple[int, int, int, int]:
    """The deviations x / u and y / v as (larger, smaller), each a numerator and a denominator."""
    return (x, u, y, v) if x * v >= y * u else (y, v, x, u)


def _before(p: tuple[int, int, int, int], q: tuple[int, int, int, int]) -> bool:
    """Whether the sorted pair ``p`` is lexicographically smaller than ``q``."""
    first, second = p[0] * q[1], q[0] * p[1]
    if first != second:
        return first < second
    return p[2] * q[3] < q[2] * p[3]


def _search(rows: dict[int, dict[int, int]], need: list[int], sizes: list[int], weights: list[int],
           accounts: list[int]) -> bool:
    """When the splits are at most :data:`EXACT_SPLITS`, replace ``rows`` by the first split (in
    the search's order) whose sorted deviations are lexicographically smallest, if it is better,
    and return ``True``; else leave them and return ``False``.

    Branch and bound: accounts in position order, each account's row in a fixed order (most of
    the first column first); the last account takes what remains. A partial split is abandoned
    when its deviations, sorted and padded with zeros, are already no better than the best split
    found — every completion is then no better either.
    """
    count, columns = 1, len(sizes)
    for k in accounts[:-1]:
        count *= math.comb(need[k] + columns - 1, columns - 1)
        if count > EXACT_SPLITS:
            return False

    def deviation(row: dict[int, int] | list[int], k: int) -> Fraction:
        pairs = row.items() if isinstance(row, dict) else enumerate(row)
        return Fraction(abs(sum(g * weights[c] for c, g in pairs)), need[k])

    best = sorted((deviation(rows[k], k) for k in accounts), reverse=True)
    found: list[list[int]] | None = None
    n = len(accounts)

    def rows_of(total: int, room: list[int], c: int) -> Iterator[list[int]]:
        if c == columns - 1:
            if total <= room[c]:
                yield [total]
            return
        for first in range(min(total, room[c]), -1, -1):
            for rest in rows_of(total - first, room, c + 1):
                yield [first, *rest]

    def search(i: int, room: list[int], chosen: list[list[int]], devs: list[Fraction]) -> None:
        nonlocal best, found
        k = accounts[i]
        options = [room] if i == n - 1 else rows_of(need[k], room, 0)
        for row in options:
            mine = [*devs, deviation(row, k)]
            vector = sorted(mine, reverse=True) + [Fraction(0)] * (n - len(mine))
            if vector >= best:
                continue
            if i == n - 1:
                best, found = vector, [*chosen, list(row)]
            else:
                search(i + 1, [r - g for r, g in zip(room, row)], [*chosen, row], mine)

    search(0, list(sizes), [], [])
    if found is not None:
        for k, row in zip(accounts, found):
            rows[k] = {c: g for c, g in enumerate(row) if g}
    return True


def share_cents(total: int, weights: list[int], rule: Residual, units: list[int]) -> list[int]:
    """``total`` cents shared in proportion to ``weights``: every share rounded down, then one cent
    more to as many accounts as cents are left, in the order of ``rule``, among the accounts whose
    exact share has a fraction of a cent. The shares add up to ``total`` exactly, and each is within
    one cent of its exact share (below it by less than a cent, or above by less than a cent)."""
    return _share(total, weights, rule, units, _Arrays())


class _Arrays:
    """The int64 arrays of one allocation's weight lists, each converted once (a block's costs
    mostly share one list: the allocated quantities)."""

    def __init__(self) -> None:
        self.made: dict[int, tuple[list[int], Any]] = {}

    def of(self, values: list[int]) -> Any:
        import numpy as np  # only large blocks pay for importing numpy

        key = id(values)
        if key not in self.made:
            self.made[key] = (values, np.asarray(values, dtype=np.int64))
        return self.made[key][1]


def _share(total: int, weights: list[int], rule: Residual, units: list[int], arrays: _Arrays) -> list[int]:
    whole = sum(weights)
    if len(weights) >= _NUMPY_FROM and whole < _INT64_SAFE and max(weights) * max(total, 1) < _INT64_SAFE:
        return _share_cents_array(total, arrays.of(weights), whole, rule, arrays.of(units))
    shares: list[int] = []
    fractions: list[int] = []
    for weight in weights:
        cents, rem = divmod(total * weight, whole)
        shares.append(cents)
        fractions.append(rem)
    left = total - sum(shares)
    if left:
        spec, n = RESIDUALS[rule], len(weights)
        candidates = [k for k, rem in enumerate(fractions) if rem]
        if spec.by_remainder:
            candidates.sort(key=lambda k: -fractions[k] * n + k)
        elif spec.by_quantity:
            candidates.sort(key=lambda k: spec.by_quantity * units[k] * n + k)
        for k in candidates[:left]:
            shares[k] += 1
    return shares


_NUMPY_FROM = 512  # below this many accounts the pure-Python path is faster than setting up arrays
_INT64_SAFE = 2**62  # products below this bound cannot overflow numpy's int64


def _share_cents_array(total: int, weights: Any, whole: int, rule: Residual, units: Any) -> list[int]:
    """:func:`share_cents` on int64 arrays, for large blocks whose products fit: the same integer
    arithmetic and the same order of the left-over cents, so the same shares."""
    import numpy as np  # only large blocks pay for importing numpy

    shares, fractions = np.divmod(np.asarray(weights, dtype=np.int64) * total, whole)
    left = total - int(shares.sum())
    if left:
        spec = RESIDUALS[rule]
        candidates = np.flatnonzero(fractions)  # positions in increasing order: account id order
        if spec.by_remainder:
            candidates = candidates[np.argsort(-fractions[candidates], kind="stable")]
        elif spec.by_quantity:
            quantity = np.asarray(units, dtype=np.int64)[candidates]  # no copy when already int64
            candidates = candidates[np.argsort(spec.by_quantity * quantity, kind="stable")]
        shares[candidates[:left]] += 1
    result: list[int] = shares.tolist()
    return result


def _costs(costs: Costs, policy: Policy, trade: Trade, ids: list[str], units: list[int], columns: tuple[Column, ...],
           pieces: dict[int, list[tuple[int, int]]] | None, file: str) -> tuple[CostLine, ...]:
    totals = _cost_totals(trade, costs.precision, file)
    arrays = _Arrays()
    lines = []
    for name, total in sorted(totals.items()):
        share = costs.share(name)
        weights = _weights(share, policy, trade, ids, units, columns, pieces, file)
        if total and not any(weights):
            raise RefusedError(Diagnostic(
                Code.COSTS_UNSHARED, f"the trade's '{name}' of {_cash(total, costs.precision)} has no account to "
                "share it: nothing was allocated to an account with a share of it", Location(file, pointer="/fills"),
                "a cost needs at least one account allocated with a positive basis and schedule"))
        cents = _share(total, weights, costs.residual, units, arrays) if total else [0] * len(ids)
        lines.append(CostLine(name, total, share, cents, weights))
    return tuple(lines)


def _cost_totals(trade: Trade, precision: int, file: str) -> dict[str, int]:
    """Each named cost of the order and its fills, in the currency's smallest unit."""
    found: list[tuple[str, str, Decimal]] = []
    for name, amount in (trade.order.costs or {}).items():
        found.append((f"/order/costs/{_escape(name)}", name, amount))
    for index, fill in enumerate(trade.fills):
        for name, amount in (fill.costs or {}).items():
            found.append((f"/fills/{index}/costs/{_escape(name)}", name, amount))
    totals: dict[str, int] = {}
    problems = []
    for where, name, amount in found:
        cents = Fraction(amount) * 10**precision  # exact whatever the digits
        if cents.denominator != 1:
            problems.append(Diagnostic(Code.COST_PRECISION, f"'{name}' of {decimal_text(amount)} has more than "
                                       f"{precision} decimal(s)", Location(file, pointer=where),
                                       "costs are charged in the currency's smallest unit (costs.precision)"))
            continue
        totals[name] = totals.get(name, 0) + cents.numerator
    if problems:
        raise InputError(problems)
    return totals


def _weights(share: CostShare, policy: Policy, trade: Trade, ids: list[str], units: list[int], columns: tuple[Column, ...],
             pieces: dict[int, list[tuple[int, int]]] | None, file: str) -> list[int]:
    """Each account's basis x schedule, as integers in one common unit."""
    weights: list[int] = units
    if share.basis is CostBasis.NOTIONAL and (pieces is not None or len(columns) > 1):
        scale = math.lcm(*(column.price.denominator for column in columns))
        prices = [column.price.numerator * (scale // column.price.denominator) for column in columns]
        weights = [0] * len(units)
        for k, own in (pieces or {}).items():
            weights[k] = sum(u * prices[c] for c, u in own)
    # one price (the block's average for every account): notional is proportional to quantity
    if share.schedule is None:
        return weights
    rates = _rates(share.schedule, policy_default(share.schedule, policy), trade, ids, file)
    scale = math.lcm(*(rate.denominator for rate in rates))
    return [w * rate.numerator * (scale // rate.denominator) for w, rate in zip(weights, rates)]


def policy_default(name: str, policy: Policy) -> Decimal | None:
    """The declared default of the account attribute ``name``, if it has one."""
    for attribute in policy.account_attributes:
        if attribute.name == name and attribute.has_default:
            return Decimal(attribute.default)
    return None


def _rates(name: str, default: Decimal | None, trade: Trade, ids: list[str], file: str) -> list[Fraction]:
    """Each account's schedule: its number attribute ``name`` (or the declared default)."""
    accounts = trade.statement.accounts
    position = {account.account: i for i, account in enumerate(accounts)}
    rates: list[Fraction] = []
    problems = []
    for account in ids:
        index = position[account]
        value = accounts[index].attributes.get(name, default)
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool) and value >= 0:
            rates.append(Fraction(value))
            continue
        problems.append(Diagnostic(
            Code.COST_SCHEDULE_INVALID, f"account '{account}' has no cost schedule '{name}' of zero or more",
            Location(file, pointer=f"/statement/accounts/{index}/attributes/{_escape(name)}"),
            "give every account a non-negative number for it"))
    if problems:
        raise InputError(problems)
    return rates


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _cash(cents: int, precision: int) -> str:
    return decimal_text(Decimal(cents).scaleb(-precision, EXACT))


# -- the result ---------------------------------------------------------------------------------
class Presenter(msgspec.Struct, frozen=True):
    """How the result shows prices (the policy's precision and rounding, for this order's side)."""

    places: int
    rounding: str

    def price(self, value: Fraction) -> str:
        return present_text(value, self.places, self.rounding)


def _exact(value: Fraction) -> str:
    """An amount written exactly when it terminates within 12 decimals, else to 12 (half-even)."""
    return present_text(value, 12, "half_even")


def extend_entries(settlement: Settlement, entries: list[dict[str, Any]], units: list[int], scale: int,
                   shown: Presenter) -> None:
    """Add each account's pieces, deviation, money and clearing to its contract entry (by position)."""
    columns, pieces, block = settlement.columns, settlement.pieces, settlement.block_price
    fill_price = settlement.allocation is PriceAllocation.FILL or any(c.fill for c in columns)
    block_shown = Fraction(shown.price(block)) if block is not None else None
    for k, entry in enumerate(entries):
        allocated = units[k]
        if pieces is not None and allocated:
            own = pieces.get(k, [])
            entry["pieces"] = [_piece(columns[c], u, scale, fill_price, shown) for c, u in own]
            value = sum((u * columns[c].price for c, u in own), Fraction(0))
            average = value / allocated
            entry["average_price"] = shown.price(average)
            assert block is not None
            entry["deviation"] = _exact(average - block)
            gross = sum((u * (columns[c].price if fill_price else Fraction(shown.price(columns[c].price)))
                         for c, u in own), Fraction(0)) / scale
            exact = value / scale
        else:
            gross = allocated * (block_shown or Fraction(0)) / scale
            exact = allocated * (block or Fraction(0)) / scale
        money: dict[str, Any] = {"gross": _exact(gross)}
        charged = Fraction(0)
        if settlement.costs:
            money["costs"] = {line.name: _cash(line.cents[k], settlement.precision) for line in settlement.costs}
            charged = Fraction(sum(line.cents[k] for line in settlement.costs), 10**settlement.precision)
        buy = settlement.side == "buy"
        credit = Fraction(0)
        if settlement.cme_553 and not fill_price:  # at fill prices no price was rounded
            owed = present((gross - exact) if buy else (exact - gross), settlement.precision, "up")
            credit = Fraction(owed)
            money["price_credit"] = decimal_text(owed)
        net = gross + charged - credit if buy else gross - charged + credit
        money["net"] = _exact(net)
        entry["money"] = money
        instruction = settlement.clearing.get(k)
        if instruction is not None:
            entry["clearing"] = {"process": instruction.process, "process_code": instruction.process_code,
                                 "broker": instruction.broker}


def explain_entries(settlement: Settlement, entries: list[dict[str, Any]]) -> None:
    """Add to each entry's explanation how its share of every cost came about."""
    if not settlement.costs:
        return
    assert settlement.residual is not None
    for k, entry in enumerate(entries):
        entry["explain"]["costs"] = {line.name: line.explain(k, settlement.precision, settlement.residual)
                                     for line in settlement.costs}


def _piece(column: Column, units: int, scale: int, fill_price: bool, shown: Presenter) -> dict[str, Any]:
    quantity = Fraction(units, scale)
    piece: dict[str, Any] = {}
    if column.fill is not None:
        piece["fill"] = column.fill
    piece["trade_date"] = column.trade_date.isoformat()
    if column.broker is not None:
        piece["broker"] = column.broker
    piece["quantity"] = quantity.numerator if quantity.denominator == 1 else _exact(quantity)
    piece["price"] = _exact(column.price) if fill_price else shown.price(column.price)
    return piece


def summary(settlement: Settlement, policy: Policy) -> dict[str, Any]:
    """The document-level view: how prices were allocated and each cost's total and sharing."""
    out: dict[str, Any] = {"price_allocation": str(settlement.allocation)}
    if settlement.closeness is not None:
        out["pieces"] = str(settlement.closeness)
    if policy.pricing.by_broker:
        out["by_broker"] = True
    if policy.price_rounding == CME_553:
        out["price_rounding"] = "cme_553: average price rounded " + ("up (buy)" if settlement.side == "buy"
                                                                   else "down (sell)") + ", the difference credited"
    if settlement.costs:
        out["costs"] = {line.name: {"total": _cash(line.total, settlement.precision), "basis": str(line.share.basis),
                                    **({"schedule": line.share.schedule} if line.share.schedule else {})}
                        for line in settlement.costs}
        assert settlement.residual is not None
        out["residual"] = str(settlement.residual)
    return out
