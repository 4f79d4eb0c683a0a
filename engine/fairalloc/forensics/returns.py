"""Stage 2: first-day returns of every allocation, DERA-style.

An allocation's first-day return is the move from the account's price to the trade date's close,
signed by side (a buy gains when the close is higher, a sale or short sale when it is lower):

    return = side × (close − price) / price        (float64: a statistic)
    money  = side × (close − price) × quantity     (exact integer at the prices' decimal scale)

Allocations whose symbol has no close on the trade date get no return and are counted, not used
by the return tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from fairalloc.errors import Code, Diagnostic, InputError
from fairalloc.forensics.history import MISSING, Allocations, Closes

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]


@dataclass
class FirstDay:
    """Per allocation: return statistic, exact money outcome, and whether a close was found."""

    returns: F64  # NaN where there is no close
    money: I64  # scaled by 10**scale; 0 where there is no close
    has_close: Bool
    partial: Bool  # the block was only partly filled (order_filled < order_quantity)
    scale: int


def _keys(symbol: npt.NDArray[np.integer[Any]], day: npt.NDArray[np.integer[Any]]) -> I64:
    """One int64 key per (symbol, day), built in place in one array."""
    keys: I64 = symbol.astype(np.int64)
    keys <<= np.int64(32)
    keys += day
    keys += np.int64(1 << 30)
    return keys


def first_day(allocations: Allocations, closes: Closes) -> FirstDay:
    """Join each allocation to its trade date's close and compute return and money."""
    index = {name: code for code, name in enumerate(allocations.symbols)}
    close_symbol = np.array([index.get(name, -1) for name in closes.symbol], dtype=np.int64)
    known = close_symbol >= 0
    close_keys = _keys(close_symbol[known], closes.day[known].astype(np.int64))
    close_values = closes.close[known]
    order = np.argsort(close_keys, kind="stable")
    close_keys, close_values = close_keys[order], close_values[order]
    keys = _keys(allocations.symbol, allocations.trade_day)
    if close_keys.shape[0]:
        position = np.searchsorted(close_keys, keys)
        np.minimum(position, close_keys.shape[0] - 1, out=position)
        has_close = np.equal(close_keys[position], keys, out=np.empty(keys.shape, np.bool_))
        move = close_values[position]  # the close, then the move (in place: one array)
        del position
        move *= has_close
    else:
        has_close, move = np.zeros(keys.shape, np.bool_), np.zeros(keys.shape, np.int64)
    del keys
    move -= allocations.price
    move *= allocations.side
    returns = move.astype(np.float64)
    returns /= allocations.price
    returns[~has_close] = np.nan
    largest = max(int(move.max()), -int(move.min())) if move.size else 0
    if largest and float(largest) * float(allocations.quantity.max()) >= 2.0**62:
        raise InputError(
            Diagnostic(
                Code.FORENSICS_TOO_LARGE,
                "price moves times quantities exceed exact 64-bit money arithmetic",
                hint="check for mis-scaled prices or quantities",
            )
        )
    move *= allocations.quantity
    move *= has_close
    money: I64 = move  # the money outcome, 0 where there is no close
    partial = (
        (allocations.order_quantity != MISSING)
        & (allocations.order_filled != MISSING)
        & (allocations.order_filled < allocations.order_quantity)
    )
    return FirstDay(returns, money, has_close, partial, allocations.price_scale)


@dataclass(frozen=True, slots=True)
class OrderMoves:
    """What the within-order tests need of every order, computed once for all their subsets."""

    order: npt.NDArray[np.int32]  # order code per row
    deviation: F64  # per row: allocated − exact pro-rata share, or the quantity without intent
    order_return: F64  # per order: quantity-weighted first-day return (0 for missing closes)
    order_price: F64  # per order: quantity-weighted price
    closed: Bool  # per order: every row has a close
    intent: Bool  # per order: every row has the intended, order_quantity and order_filled


def order_moves(allocations: Allocations, first: FirstDay) -> OrderMoves:
    """Per order its first-day move and price, per row its departure from the pro-rata share."""
    order = allocations.order
    orders = len(allocations.order_ids)
    rows_per = np.bincount(order, minlength=orders)
    with_close = np.bincount(order[first.has_close], minlength=orders)
    intent_row = (
        (allocations.intended != MISSING) & (allocations.order_quantity != MISSING)
        & (allocations.order_filled != MISSING) & (allocations.order_quantity > 0)
    )
    intent_order = np.bincount(order[intent_row], minlength=orders) == rows_per
    qty = allocations.quantity.astype(np.float64)
    weight = np.maximum(np.bincount(order, weights=qty, minlength=orders), 1.0)
    scratch = np.where(first.has_close, first.returns, 0.0)  # one array for each weighted sum
    scratch *= qty
    order_return = np.bincount(order, weights=scratch, minlength=orders) / weight
    np.multiply(qty, allocations.price, out=scratch)
    order_price = (np.bincount(order, weights=scratch, minlength=orders)
                   / weight / 10**allocations.price_scale)
    del scratch
    deviation = allocations.order_filled.astype(np.float64)  # the fair share, then the deviation
    deviation *= allocations.intended
    deviation /= np.where(intent_row, allocations.order_quantity, 1)
    deviation[~intent_row] = 0.0
    np.subtract(qty, deviation, out=deviation)
    np.copyto(deviation, qty, where=~intent_order[order])
    return OrderMoves(order, deviation, order_return, order_price, rows_per == with_close,
                      intent_order)


def exact_sum(values: I64) -> int:
    """Exact sum of int64 values as a Python int (no overflow: high and low halves summed apart)."""
    low = (values & np.int64(0xFFFFFFFF)).sum(dtype=np.int64)
    high = (values >> np.int64(32)).sum(dtype=np.int64)
    return (int(high) << 32) + int(low)


def money_text(scaled: int, scale: int, places: int = 2) -> str:
    """Decimal text of a scaled money amount, rounded half-even to ``places`` decimals."""
    amount = Decimal(scaled).scaleb(-scale)
    return str(amount.quantize(Decimal(1).scaleb(-places)))


def pool_of(favoured_accounts: Bool, order: npt.NDArray[np.int32],
            account: npt.NDArray[np.int32]) -> Bool:
    """Accounts in the comparison pool of a favoured set: the set and all its peers, the accounts
    that took part in at least one order with it.

    The re-allocation tests draw only among these: an allocation could plausibly have gone to
    any account that was in the same orders, not to one that never trades alongside.
    """
    pool = favoured_accounts.copy()
    if order.size == 0:
        return pool
    shared = np.bincount(order[favoured_accounts[account]], minlength=int(order.max()) + 1) > 0
    pool[account[shared[order]]] = True
    return pool
