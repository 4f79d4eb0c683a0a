"""Stage 4: when allocations, overrides and memos were recorded.

A fair allocation is decided before the outcome is known. Records made after the close, or on a
later day, were made when the day's price move could be seen; records made long after the last
fill deserve a look too. Each record is put in its most serious category:

* ``later_day`` — recorded on a calendar day (market time zone) after the trade date;
* ``after_close`` — recorded after the trade date's close;
* ``after_last_fill`` — recorded more than the grace period after the block's last fill.

Overrides and memos are timed against their order's trade date and last fill.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from fairalloc.forensics.history import MISSING, Allocations, Overrides

I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
_MICROS = 1_000_000
_EPOCH = dt.date(1970, 1, 1)
CATEGORIES = ("later_day", "after_close", "after_last_fill")
#: Records listed per category and kind (all are counted).
LISTED = 100


@dataclass(frozen=True, slots=True)
class Market:
    """Where and when the market closes: the reference for "after the close" and "later day"."""

    tz: ZoneInfo
    close: dt.time
    grace_minutes: int


def _day_bounds(days: npt.NDArray[np.int32], market: Market) -> tuple[I64, I64]:
    """Close instant and next local midnight (µs since epoch, UTC) for each trade day."""
    unique, inverse = np.unique(days, return_inverse=True)
    closes = np.empty(unique.size, dtype=np.int64)
    midnights = np.empty(unique.size, dtype=np.int64)
    for i, value in enumerate(unique):
        day = _EPOCH + dt.timedelta(days=int(value))
        closes[i] = int(dt.datetime.combine(day, market.close, market.tz).timestamp()) * _MICROS
        nxt = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), market.tz)
        midnights[i] = int(nxt.timestamp()) * _MICROS
    return closes[inverse], midnights[inverse]


def categorise(
    recorded: I64, days: npt.NDArray[np.int32], executed: I64, market: Market
) -> tuple[I8, I64]:
    """Category code per record (0 later day, 1 after close, 2 after last fill, -1 on time)
    and lateness in microseconds against the category's reference instant."""
    close, midnight = _day_bounds(days, market)
    has_fill = executed != MISSING
    fill_limit = np.where(has_fill, executed + market.grace_minutes * 60 * _MICROS, np.iinfo(np.int64).max)
    category = np.full(recorded.shape, -1, dtype=np.int8)
    late = np.zeros(recorded.shape, dtype=np.int64)
    after_fill = recorded > fill_limit
    category[after_fill] = 2
    late[after_fill] = (recorded - executed)[after_fill]
    after_close = recorded > close
    category[after_close] = 1
    late[after_close] = (recorded - close)[after_close]
    later = recorded >= midnight
    category[later] = 0
    late[later] = (recorded - close)[later]
    return category, late


def _listing(
    category: I8, late: I64, kind: str, name: Callable[[int], tuple[str, str, str]]
) -> dict[str, object]:
    """Counts and the latest records of each category, with who and how late."""
    out: dict[str, object] = {}
    for code, label in enumerate(CATEGORIES):
        rows = np.flatnonzero(category == code)
        order = rows[np.lexsort((rows, -late[rows]))][:LISTED]
        listed = []
        for i in order:
            order_id, account, by = name(int(i))
            listed.append(
                {
                    "kind": kind,
                    "order_id": order_id,
                    "account": account,
                    "by": by,
                    "minutes_late": round(int(late[int(i)]) / 60 / _MICROS, 1),
                }
            )
        out[label] = {"count": int(rows.size), "listed": listed}
    return out


def allocation_timing(allocations: Allocations, market: Market) -> tuple[dict[str, object], I8]:
    """Timing summary of allocation records; also returns each row's category code."""
    category, late = categorise(
        allocations.allocated_at, allocations.trade_day, allocations.executed_at, market
    )

    def name(row: int) -> tuple[str, str, str]:
        person = int(allocations.allocated_by[row])
        return (
            allocations.order_ids[allocations.order[row]],
            allocations.accounts[allocations.account[row]],
            allocations.people[person] if person >= 0 else "(not recorded)",
        )

    listing = _listing(category, late, "allocation", name)
    serious = (category == 0) | (category == 1)
    people = allocations.allocated_by[serious]
    counts = np.bincount(people + 1, minlength=len(allocations.people) + 1)
    labels = ["(not recorded)", *allocations.people]
    by_person = {labels[i]: int(c) for i, c in enumerate(counts) if c}
    listing["late_by_person"] = dict(sorted(by_person.items(), key=lambda kv: (-kv[1], kv[0])))
    return listing, category


def override_timing(
    overrides: Overrides, allocations: Allocations, market: Market
) -> tuple[dict[str, object], I8]:
    """Timing summary of override and memo records against their order's day and last fill."""
    orders = len(allocations.order_ids)
    day = np.zeros(orders, dtype=np.int32)
    executed = np.full(orders, MISSING, dtype=np.int64)
    day[allocations.order] = allocations.trade_day
    executed[allocations.order] = allocations.executed_at
    known = overrides.order >= 0
    category = np.full(overrides.order.shape, -1, dtype=np.int8)
    late = np.zeros(overrides.order.shape, dtype=np.int64)
    if known.any():
        cat_known, late_known = categorise(
            overrides.recorded_at[known],
            day[overrides.order[known]],
            executed[overrides.order[known]],
            market,
        )
        category[known] = cat_known
        late[known] = late_known

    def name(row: int) -> tuple[str, str, str]:
        o, a = int(overrides.order[row]), int(overrides.account[row])
        return (
            allocations.order_ids[o] if o >= 0 else "(unknown order)",
            allocations.accounts[a] if a >= 0 else "(unknown account)",
            overrides.recorded_by[row],
        )

    listing = _listing(category, late, "override", name)
    listing["unmatched_records"] = int((~known).sum())
    return listing, category


def delay_minutes(allocations: Allocations) -> npt.NDArray[np.float64]:
    """Minutes from last fill to allocation record, for rows that carry a last-fill time."""
    has = allocations.executed_at != MISSING
    delays: npt.NDArray[np.float64] = (
        allocations.allocated_at[has] - allocations.executed_at[has]
    ) / (60 * _MICROS)
    return delays
