"""Timing: records after the last fill, after the close, on a later day — who and how late."""

from __future__ import annotations

import datetime as dt
import pathlib
from zoneinfo import ZoneInfo

from fairalloc.forensics.history import load
from fairalloc.forensics.timing import Market, allocation_timing, override_timing

MARKET = Market(ZoneInfo("America/New_York"), dt.time(16, 0), 30)


def test_allocations_are_put_in_their_most_serious_category(history: pathlib.Path) -> None:
    h = load(history / "allocations.csv", history / "prices.csv", history / "overrides.csv")
    listing, category = allocation_timing(h.allocations, MARKET)
    # B1 rows 5 min after fill: on time; B2/A at 17:30 same day: after close;
    # B2/C next morning: later day.
    assert category.tolist() == [-1, -1, 1, 0]
    after_close = listing["after_close"]
    assert after_close["count"] == 1  # type: ignore[index]
    assert after_close["listed"][0] == {  # type: ignore[index]
        "kind": "allocation", "order_id": "B2", "account": "A", "by": "pm", "minutes_late": 90.0}
    later = listing["later_day"]["listed"][0]  # type: ignore[index]
    assert (later["by"], later["minutes_late"]) == ("ops", 1020.0)
    assert listing["late_by_person"] == {"ops": 1, "pm": 1}


def test_memos_are_timed_against_their_order(history: pathlib.Path) -> None:
    h = load(history / "allocations.csv", history / "prices.csv", history / "overrides.csv")
    assert h.overrides is not None
    listing, category = override_timing(h.overrides, h.allocations, MARKET)
    assert category.tolist() == [1, -1]  # B1 memo at 18:00, B2 memo before its fill
    assert listing["after_close"]["listed"][0]["minutes_late"] == 120.0  # type: ignore[index]
