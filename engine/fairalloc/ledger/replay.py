"""``replay``: recompute recorded allocations from the ledger alone and compare byte for byte.

For an allocated order, replay rebuilds the trade from the recorded statement, the entered order
and the fills in force before each allocation (the first, and every re-allocation after a
correction, bust or late fill), takes the rotation position the ledger held at that
point and the governing policy version from its recorded source (checking its digest), runs the
engine again and compares the canonical JSON of the result with what was recorded. Allocation is
a pure function of those inputs, so anything but identical bytes means the inputs, the policy or
the engine changed — and replay says exactly where, as JSON pointers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from fairalloc.errors import Diagnostic, LedgerError
from fairalloc.ledger.chain import canonical_json
from fairalloc.ledger.store import Ledger
from fairalloc.ledger.workflow import compute_allocation, order_record, reallocation_inputs


@dataclass(frozen=True, slots=True)
class Difference:
    """One place where the recomputed record differs from the recorded one."""

    pointer: str
    recorded: Any
    recomputed: Any


@dataclass(slots=True)
class ReplayResult:
    """One order's replay: every allocation recomputed (``allocations``, their event numbers)
    and where any differs (pointers start with ``/allocations/N``, N the event number)."""

    order_id: str
    differences: list[Difference] = field(default_factory=list)
    allocations: list[int] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.differences


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def diff(recorded: Any, recomputed: Any, pointer: str = "") -> list[Difference]:
    """Every leaf where two JSON values differ, as JSON pointers (RFC 6901)."""
    if isinstance(recorded, dict) and isinstance(recomputed, dict):
        found: list[Difference] = []
        for key in sorted(set(recorded) | set(recomputed)):
            path = f"{pointer}/{_escape(str(key))}"
            if key not in recorded or key not in recomputed:
                found.append(Difference(path, recorded.get(key), recomputed.get(key)))
            else:
                found += diff(recorded[key], recomputed[key], path)
        return found
    if isinstance(recorded, list) and isinstance(recomputed, list) and len(recorded) == len(recomputed):
        found = []
        for index, (left, right) in enumerate(zip(recorded, recomputed, strict=True)):
            found += diff(left, right, f"{pointer}/{index}")
        return found
    if canonical_json(recorded) != canonical_json(recomputed):
        return [Difference(pointer or "/", recorded, recomputed)]
    return []


def replay_order(ledger: Ledger, order_id: str) -> ReplayResult:
    """Recompute every recorded allocation of one order and compare each with the record."""
    result = ReplayResult(order_id)
    with ledger.read() as session:
        record = order_record(session, order_id)
        if record.allocation is None:
            raise LedgerError(Diagnostic("replay-no-allocation",
                                         f"the ledger holds no allocation of order {order_id!r}"))
        for event in record.allocations:
            if event is record.allocation:
                computed = compute_allocation(session, record, event.seq)
                document, before, after = computed.document, computed.rotation_before, computed.rotation_after
            else:
                document, before, after = reallocation_inputs(session, record, event.seq)
            stored = event.data()
            recorded = {"document": stored["document"], "rotation_before": stored["rotation_before"],
                        "rotation_after": stored["rotation_after"]}
            recomputed = {"document": document, "rotation_before": before, "rotation_after": after}
            result.allocations.append(event.seq)
            if canonical_json(recorded) != canonical_json(recomputed):
                base = "" if len(record.allocations) == 1 else f"/allocations/{event.seq}"
                found = diff(recorded, recomputed, base) or [Difference(base or "/", recorded, recomputed)]
                result.differences += found
    return result


def allocated_orders(ledger: Ledger, trade_date: dt.date | None = None) -> list[str]:
    """Ids of allocated orders (of one trade date), in allocation order."""
    with ledger.read() as session:
        chosen: list[str] = []
        for event in session.query(kinds=["order.allocated"]):
            if event.order_id is None:
                continue
            if trade_date is not None:
                entered = session.by_key(f"order:{event.order_id}")
                if entered is None or entered.data()["order"]["trade_date"] != trade_date.isoformat():
                    continue
            chosen.append(event.order_id)
        return chosen


def replay_many(ledger: Ledger, trade_date: dt.date | None = None) -> list[ReplayResult]:
    """Replay every allocation of a trade date (or of the whole ledger)."""
    return [replay_order(ledger, order_id) for order_id in allocated_orders(ledger, trade_date)]
