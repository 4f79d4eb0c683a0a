"""Timing: records judged against the policy's deadline plus grace, with severities."""

from __future__ import annotations

import datetime as dt
import pathlib
from zoneinfo import ZoneInfo

import numpy as np

from fairalloc.forensics.history import load
from fairalloc.forensics.timing import Deadline, Market, allocation_timing, override_timing

NY = ZoneInfo("America/New_York")
AT_CLOSE = Market(NY, dt.time(16, 0), 30, Deadline(0, dt.time(16, 0), NY, "the market close"))
END_OF_DAY = Market(NY, dt.time(16, 0), 30, Deadline(0, dt.time(23, 59, 59), NY, "policy p@1"))


def test_records_are_graded_against_the_deadline(history: pathlib.Path) -> None:
    h = load(history / "allocations.csv", history / "prices.csv", history / "overrides.csv")
    assert h.overrides is not None
    over, over_severity, memo_after_close = override_timing(h.overrides, h.allocations, AT_CLOSE)
    # B1 memo at 18:00 (120 min after the close): late; B2 memo before its fill: on time.
    assert over_severity.tolist() == [3, 0]
    assert memo_after_close.tolist() == [True, False]
    listing, severity = allocation_timing(h.allocations, AT_CLOSE, memo_after_close)
    # B1 rows at 10:05: on time; B2/A at 17:30 (90 min late); B2/C next morning (1020 min).
    assert severity.tolist() == [0, 0, 3, 3]
    records = listing["after_deadline"]
    assert [(r["account"], r["by"], r["minutes_after_deadline"], r["severity"])  # type: ignore[index]
            for r in records] == [("C", "ops", 1020.0, "late"), ("A", "pm", 90.0, "late")]  # type: ignore[union-attr]
    assert records[1]["recorded_at"] == "2025-03-04T17:30:00-05:00"  # type: ignore[index]
    assert listing["late_by_person"] == {"ops": 1, "pm": 1}


def test_a_late_allocation_on_an_order_with_a_late_memo_is_the_most_serious(
    history: pathlib.Path,
) -> None:
    h = load(history / "allocations.csv", history / "prices.csv", history / "overrides.csv")
    memo = np.array([False, True])  # pretend B2 carries a memo recorded after the close
    _, severity = allocation_timing(h.allocations, AT_CLOSE, memo)
    assert severity.tolist() == [0, 0, 4, 4]


def test_within_the_policy_is_counted_not_held_against_the_firm(history: pathlib.Path) -> None:
    h = load(history / "allocations.csv", history / "prices.csv")
    listing, severity = allocation_timing(h.allocations, END_OF_DAY, np.zeros(2, dtype=np.bool_))
    # B2/A at 17:30 is after the close but by 23:59:59; B2/C next morning is beyond the grace.
    assert severity.tolist() == [0, 0, 1, 3]
    within = listing["after_close_within_policy"]
    assert (within["count"], within["shown"]) == (1, 1)  # type: ignore[index]
    assert listing["counts"]["late"] == 1  # type: ignore[index]


def test_grace_after_the_deadline(history: pathlib.Path) -> None:
    h = load(history / "allocations.csv", history / "prices.csv")
    generous = Market(NY, dt.time(16, 0), 120, AT_CLOSE.deadline)
    _, severity = allocation_timing(h.allocations, generous, np.zeros(2, dtype=np.bool_))
    assert severity.tolist() == [0, 0, 2, 3]  # 90 min: within a 120-minute grace
