"""``ledger verify``: walk the hash chain from the first event and report the first break.

What each finding means (stable codes, tested one by one):

* ``ledger-event-missing`` — a gap in the event numbers: an event was deleted;
* ``ledger-events-reordered`` — an event links to one recorded after it: events were swapped;
* ``ledger-chain-broken`` — an event's link is not the previous event's hash: the previous event
  was rewritten with a recomputed (forged) hash, or this link itself was altered;
* ``ledger-event-edited`` — an event's content no longer matches its hash;
* ``ledger-hash-forged`` — an event's stored hash was replaced while its content, and the next
  event's link, still agree with the original hash;
* ``ledger-time-reversed`` — recorded times go backwards, which the writer never does;
* ``ledger-anchor-mismatch`` — the chain does not reach a head recorded elsewhere (``--anchor``):
  the tail was cut, or the whole chain rewritten.

A chain is only as trustworthy as its head: someone able to rewrite every hash from an edited
event onwards produces a self-consistent chain. Keeping the head (``ledger head``, printed in every
export) outside the database and passing it back as an anchor closes that gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.errors import Diagnostic, Location
from engine.ledger.chain import GENESIS, Event, recompute
from engine.ledger.store import Session


@dataclass(frozen=True, slots=True)
class Anchor:
    """A chain head recorded outside the ledger: event number and its hash."""

    seq: int
    hash: str


@dataclass(slots=True)
class VerifyReport:
    """What a verification walked and what it found (empty ``findings`` means intact)."""

    events: int
    head: Event | None
    findings: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def _at(seq: int) -> Location:
    return Location(pointer=f"/events/{seq}")


def check_chain(rows: Sequence[tuple[Any, ...]], anchor: Anchor | None = None) -> VerifyReport:
    """Walk ``rows`` (events or raw rows in event column order, by ``seq``) and report the
    first break, then check the anchor."""
    report = VerifyReport(events=len(rows), head=Event(*rows[-1]) if rows else None)
    finding = _first_break(rows)
    if finding is not None:
        report.findings.append(finding)
        return report
    if anchor is not None:
        held = Event(*rows[anchor.seq - 1]) if 0 < anchor.seq <= len(rows) else None
        if held is None or held.hash != anchor.hash:
            seen = "is missing" if held is None else f"has hash {held.hash}"
            report.findings.append(
                Diagnostic(
                    "ledger-anchor-mismatch",
                    f"the anchored head {anchor.seq}:{anchor.hash} is not in the chain: "
                    f"event {anchor.seq} {seen}",
                    _at(anchor.seq),
                    hint="the tail was removed or the chain rewritten after the anchor was taken",
                )
            )
    return report


def _first_break(rows: Sequence[tuple[Any, ...]]) -> Diagnostic | None:
    prev_hash = GENESIS
    prev_time = ""
    for index, raw in enumerate(rows):
        expected = index + 1
        if raw[0] == expected and raw[8] == prev_hash and raw[1] >= prev_time and recompute(raw) == raw[9]:
            prev_hash = raw[9]
            prev_time = raw[1]
            continue
        row = Event(*raw)
        if row.seq != expected:
            return Diagnostic(
                "ledger-event-missing",
                f"event {expected} is missing (the next event recorded is {row.seq}): "
                "events were deleted",
                _at(expected),
            )
        if row.prev_hash != prev_hash:
            later = next((r[0] for r in rows[index + 1 :] if r[9] == row.prev_hash), None)
            if later is not None:
                return Diagnostic(
                    "ledger-events-reordered",
                    f"event {row.seq} links to event {later}, recorded after it: "
                    "events were reordered",
                    _at(row.seq),
                )
            return Diagnostic(
                "ledger-chain-broken",
                f"event {row.seq} does not link to event {row.seq - 1}: event {row.seq - 1} "
                "was rewritten with a new hash, or this link was altered",
                _at(row.seq),
            )
        computed = recompute(row)
        if computed != row.hash:
            following = rows[index + 1] if index + 1 < len(rows) else None
            if following is not None and following[8] == computed:
                return Diagnostic(
                    "ledger-hash-forged",
                    f"event {row.seq}'s stored hash was replaced; its content and the next "
                    "event's link still agree with the original",
                    _at(row.seq),
                )
            return Diagnostic(
                "ledger-event-edited",
                f"event {row.seq} ({row.kind}) does not match its hash: it was edited "
                "after it was recorded",
                _at(row.seq),
            )
        if row.recorded_at < prev_time:
            return Diagnostic(
                "ledger-time-reversed",
                f"event {row.seq} is recorded at {row.recorded_at}, before event "
                f"{row.seq - 1} ({prev_time})",
                _at(row.seq),
            )
        raise AssertionError("unreachable: the fast path accepts every intact event")
    return None


def verify(session: Session, anchor: Anchor | None = None) -> VerifyReport:
    """Verify the whole chain as one consistent snapshot."""
    return check_chain(session.all_rows(), anchor)
