"""Stage 4: when allocations, overrides and memos were recorded, judged against the policy.

A fair allocation is decided before the outcome is known, and the firm's policy says by when it
must be recorded (its ``deadline``: a wall-clock time some days after the trade date). Each record
is judged against that deadline plus a stated grace period, and given a severity:

* ``after_close_within_policy`` — recorded after the trade date's close but by the deadline: the
  policy allows it; the day's price move could be seen, so the records are counted and shown;
* ``within_grace`` — after the deadline, within the grace period: listed, not counted against
  the firm (clock skew, a batch that ran a few minutes late);
* ``late`` — beyond the deadline plus grace: a breach of the policy;
* ``late_with_memo`` — a late allocation on an order that also carries an override or memo
  recorded after the close: the pattern of an allocation decided after the outcome and explained
  afterwards, the most serious.

Only ``late`` and ``late_with_memo`` count toward the review's status. Every record after the
deadline is listed (who, when, how late); records within the policy are counted and the first
``LISTED`` shown. Without a policy the deadline is the market close of the trade date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import polars as pl

from fairalloc.forensics.findings import Column, Records
from fairalloc.forensics.history import Allocations, Overrides

I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
Bool = npt.NDArray[np.bool_]
_MICROS = 1_000_000
_EPOCH = dt.date(1970, 1, 1)
#: Severity codes, in increasing order of seriousness (index = code).
SEVERITIES = ("on_time", "after_close_within_policy", "within_grace", "late", "late_with_memo")
ON_TIME, AFTER_CLOSE, WITHIN_GRACE, LATE, LATE_WITH_MEMO = range(5)
#: Records within the policy shown per kind (all are counted; every record after the deadline
#: is listed).
LISTED = 100


@dataclass(frozen=True, slots=True)
class Deadline:
    """The allocation deadline: ``time`` in ``tz``, ``days_after`` the trade date."""

    days_after: int
    time: dt.time
    tz: ZoneInfo
    source: str  # e.g. "policy us-equity-pro-rata@3" or "market close (no policy given)"


@dataclass(frozen=True, slots=True)
class Market:
    """Where and when the market closes, the deadline and the grace after it."""

    tz: ZoneInfo
    close: dt.time
    grace_minutes: int
    deadline: Deadline


def _instants(days: npt.NDArray[np.int32], market: Market) -> tuple[I64, I64]:
    """Close and deadline instants (µs since epoch, UTC) for each trade day.

    The days are looked up in a table over their span (dates are years 1–9999, so the table
    has at most a few million entries) instead of sorting the rows to find the distinct days."""
    if days.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    first = int(days.min())
    offset = days.astype(np.int64) - first
    present = np.zeros(int(offset.max()) + 1, dtype=np.bool_)
    present[offset] = True
    closes = np.zeros(present.size, dtype=np.int64)
    deadlines = np.zeros(present.size, dtype=np.int64)
    for index in np.flatnonzero(present).tolist():
        day = _EPOCH + dt.timedelta(days=first + index)
        closes[index] = int(dt.datetime.combine(day, market.close, market.tz).timestamp()) * _MICROS
        due = day + dt.timedelta(days=market.deadline.days_after)
        deadlines[index] = int(
            dt.datetime.combine(due, market.deadline.time, market.deadline.tz).timestamp()
        ) * _MICROS
    return closes[offset], deadlines[offset]


def judge(recorded: I64, days: npt.NDArray[np.int32], market: Market) -> tuple[I8, I64, I64, I64]:
    """Severity per record (``late_with_memo`` is assigned by the caller), with the close and
    deadline instants and the minutes after the deadline (µs)."""
    close, deadline = _instants(days, market)
    grace = market.grace_minutes * 60 * _MICROS
    severity = np.full(recorded.shape, ON_TIME, dtype=np.int8)
    severity[recorded > close] = AFTER_CLOSE
    severity[recorded > deadline] = WITHIN_GRACE
    severity[recorded > deadline + grace] = LATE
    return severity, close, deadline, recorded - deadline


def _stamps(micros: I64, tz: ZoneInfo) -> Column:
    """ISO 8601 texts with the market's offset, each distinct instant formatted once (polars)."""
    column = Column.distinct(micros)
    series = (pl.Series(column.values, dtype=pl.Int64).cast(pl.Datetime("us"))
              .dt.replace_time_zone("UTC").dt.convert_time_zone(str(tz))
              .dt.to_string("%Y-%m-%dT%H:%M:%S%:z"))
    return Column(column.codes, [str(v) for v in series.to_list()])


Names = Callable[[I64], tuple[Column, Column, Column]]


def _entries(kind: str, rows: I64, severity: I8, recorded: I64, close: I64, deadline: I64,
             market: Market, names: Names) -> Records:
    """The listed records, built column by column (order, account and person as codes)."""
    order_ids, accounts, people = names(rows)
    return Records({
        "kind": Column(np.zeros(rows.size, dtype=np.int64), [kind]),
        "order_id": order_ids, "account": accounts, "by": people,
        "recorded_at": _stamps(recorded[rows], market.tz),
        "deadline": _stamps(deadline[rows], market.tz),
        "minutes_after_close": Column.distinct(
            np.round((recorded[rows] - close[rows]) / 60 / _MICROS, 1)),
        "minutes_after_deadline": Column.distinct(
            np.round((recorded[rows] - deadline[rows]) / 60 / _MICROS, 1)),
        "severity": Column(severity[rows].astype(np.int64), SEVERITIES),
    })


def _listing(
    kind: str, severity: I8, recorded: I64, close: I64, deadline: I64, market: Market,
    names: Names,
) -> dict[str, object]:
    """Counts per severity, every record after the deadline, the first records within policy."""
    counts = {label: int((severity == code).sum()) for code, label in enumerate(SEVERITIES)}
    after = np.flatnonzero(severity >= WITHIN_GRACE)
    late_first = after[np.lexsort((after, -(recorded[after] - deadline[after]),
                                   -severity[after]))]
    within = np.flatnonzero(severity == AFTER_CLOSE)
    within = within[np.lexsort((within, -(recorded[within] - close[within])))]
    return {
        "counts": counts,
        "after_deadline": _entries(kind, late_first, severity, recorded, close, deadline, market,
                                   names),
        "after_close_within_policy": {
            "count": int(within.size),
            "shown": min(int(within.size), LISTED),
            "listed": _entries(kind, within[:LISTED], severity, recorded, close, deadline,
                               market, names),
        },
    }


def _by_person(people: list[str], severity: I8) -> dict[str, int]:
    counts: dict[str, int] = {}
    for person, code in zip(people, severity.tolist(), strict=True):
        if code >= LATE:
            counts[person] = counts.get(person, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def allocation_timing(
    allocations: Allocations, market: Market, memo_after_close: Bool
) -> tuple[dict[str, object], I8]:
    """Timing of allocation records; ``memo_after_close`` marks orders carrying an override or
    memo recorded after the close. Also returns each row's severity code."""
    severity, close, deadline, _ = judge(allocations.allocated_at, allocations.trade_day, market)
    severity[(severity == LATE) & memo_after_close[allocations.order]] = LATE_WITH_MEMO

    people = ["(not recorded)", *allocations.people]

    def names(rows: I64) -> tuple[Column, Column, Column]:
        return (Column(allocations.order[rows].astype(np.int64), allocations.order_ids),
                Column(allocations.account[rows].astype(np.int64), allocations.accounts),
                Column(allocations.allocated_by[rows].astype(np.int64) + 1, people))

    listing = _listing("allocation", severity, allocations.allocated_at, close, deadline,
                       market, names)
    late = severity >= LATE
    counts = np.bincount(allocations.allocated_by[late] + 1, minlength=len(allocations.people) + 1)
    labels = ["(not recorded)", *allocations.people]
    by_person = {labels[i]: int(c) for i, c in enumerate(counts) if c}
    listing["late_by_person"] = dict(sorted(by_person.items(), key=lambda kv: (-kv[1], kv[0])))
    return listing, severity


def override_timing(
    overrides: Overrides, allocations: Allocations, market: Market
) -> tuple[dict[str, object], I8, Bool]:
    """Timing of override and memo records against their order's trade date.

    Returns the listing, each record's severity, and per order whether it carries a record made
    after the close (used to grade late allocations)."""
    orders = len(allocations.order_ids)
    day = np.zeros(orders, dtype=np.int32)
    day[allocations.order] = allocations.trade_day
    known = overrides.order >= 0
    severity = np.full(overrides.order.shape, ON_TIME, dtype=np.int8)
    close = np.zeros(overrides.order.shape, dtype=np.int64)
    deadline = np.zeros(overrides.order.shape, dtype=np.int64)
    if known.any():
        sev, c, d, _ = judge(overrides.recorded_at[known], day[overrides.order[known]], market)
        severity[known], close[known], deadline[known] = sev, c, d
    memo_after_close = np.zeros(orders, dtype=np.bool_)
    memo_after_close[overrides.order[known & (severity >= AFTER_CLOSE)]] = True

    order_ids = [*allocations.order_ids, "(unknown order)"]
    accounts = [*allocations.accounts, "(unknown account)"]

    def names(rows: I64) -> tuple[Column, Column, Column]:
        # Code -1 (unknown) stands for the last name, the "(unknown …)" placeholder.
        order, account = overrides.order[rows].astype(np.int64), overrides.account[rows].astype(np.int64)
        return (Column(np.where(order < 0, len(order_ids) - 1, order), order_ids),
                Column(np.where(account < 0, len(accounts) - 1, account), accounts),
                Column(np.arange(rows.size, dtype=np.int64),
                       [overrides.recorded_by[r] for r in rows.tolist()]))

    listing = _listing("override", severity, overrides.recorded_at, close, deadline, market, names)
    listing["late_by_person"] = _by_person(overrides.recorded_by, severity)
    listing["unmatched_records"] = int((~known).sum())
    return listing, severity, memo_after_close


def minutes_after_close(allocations: Allocations, market: Market) -> npt.NDArray[np.float64]:
    """Minutes from the trade date's close to each allocation record (negative: before)."""
    close, _ = _instants(allocations.trade_day, market)
    minutes: npt.NDArray[np.float64] = (allocations.allocated_at - close) / (60 * _MICROS)
    return minutes


def deadline_minutes_after_close(market: Market) -> float:
    """Where the deadline plus grace falls, in minutes after the close (on a plain weekday)."""
    day = dt.date(2025, 1, 15)
    close = dt.datetime.combine(day, market.close, market.tz)
    due = dt.datetime.combine(day + dt.timedelta(days=market.deadline.days_after),
                              market.deadline.time, market.deadline.tz)
    return (due - close).total_seconds() / 60 + market.grace_minutes

