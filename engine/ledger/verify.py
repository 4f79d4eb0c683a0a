"""``ledger verify``: walk the hash chain from the first event and report the first break.

What each finding means (stable codes, tested one by one):

* ``LEDGER_EVENT_MISSING`` — a gap in the event numbers: an event was deleted;
* ``LEDGER_EVENTS_REORDERED`` — an event links to one recorded after it: events were swapped;
* ``LEDGER_CHAIN_BROKEN`` — an event's link is not the previous event's hash: the previous event
  was rewritten with a recomputed (forged) hash, or this link itself was altered;
* ``LEDGER_EVENT_EDITED`` — an event's content no longer matches its hash;
* ``LEDGER_HASH_FORGED`` — an event's stored hash was replaced while its content, and the next
  event's link, still agree with the original hash;
* ``LEDGER_TIME_REVERSED`` — recorded times go backwards, which the writer never does;
* ``LEDGER_ANCHOR_MISMATCH`` — the chain does not reach a head recorded elsewhere (``--anchor``):
  the tail was cut, or the whole chain rewritten.

A chain is only as trustworthy as its head: someone able to rewrite every hash from an edited
event onwards produces a self-consistent chain. Keeping the head (``ledger head``, printed in every
export) outside the database and passing it back as an anchor closes that gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


def check_chain(rows: list[Event], anchor: Anchor | None = None) -> VerifyReport:
    """Walk ``rows`` (in ``seq`` order) and report the first break, then the anchor."""
    report = VerifyReport(events=len(rows), head=rows[-1] if rows else None)
    finding = _first_break(rows)
    if finding is not None:
        report.findings.append(finding)
        return report
    if anchor is not None:
        held = rows[anchor.seq - 1] if 0 < anchor.seq <= len(rows) else None
        if held is None or held.hash != anchor.hash:
            seen = "is missing" if held is None else f"has hash {held.hash}"
            report.findings.append(
                Diagnostic(
                    "LEDGER_ANCHOR_MISMATCH",
                    f"the anchored head {anchor.seq}:{anchor.hash} is not in the chain: "
                    f"event {anchor.seq} {seen}",
                    _at(anchor.seq),
                    hint="the tail was removed or the chain rewritten after the anchor was taken",
                )
            )
    return report


def _first_break(rows: list[Event]) -> Diagnostic | None:
    prev_hash = GENESIS
    prev_time = ""
    for index, row in enumerate(rows):
        expected = index + 1
        if row.seq != expected:
            return Diagnostic(
                "LEDGER_EVENT_MISSING",
                f"event {expected} is missing (the next event recorded is {row.seq}): "
                "events were deleted",
                _at(expected),
            )
        if row.prev_hash != prev_hash:
            later = next((r.seq for r in rows[index + 1 :] if r.hash == row.prev_hash), None)
            if later is not None:
                return Diagnostic(
                    "LEDGER_EVENTS_REORDERED",
                    f"event {row.seq} links to event {later}, recorded after it: "
                    "events were reordered",
                    _at(row.seq),
                )
            return Diagnostic(
                "LEDGER_CHAIN_BROKEN",
                f"event {row.seq} does not link to event {row.seq - 1}: event {row.seq - 1} "
                "was rewritten with a new hash, or this link was altered",
                _at(row.seq),
            )
        computed = recompute(row)
        if computed != row.hash:
            following = rows[index + 1] if index + 1 < len(rows) else None
            if following is not None and following.prev_hash == computed:
                return Diagnostic(
                    "LEDGER_HASH_FORGED",
                    f"event {row.seq}'s stored hash was replaced; its content and the next "
                    "event's link still agree with the original",
                    _at(row.seq),
                )
            return Diagnostic(
                "LEDGER_EVENT_EDITED",
                f"event {row.seq} ({row.kind}) does not match its hash: it was edited "
                "after it was recorded",
                _at(row.seq),
            )
        if row.recorded_at < prev_time:
            return Diagnostic(
                "LEDGER_TIME_REVERSED",
                f"event {row.seq} is recorded at {row.recorded_at}, before event "
                f"{row.seq - 1} ({prev_time})",
                _at(row.seq),
            )
        prev_hash = row.hash
        prev_time = row.recorded_at
    return None


def verify(session: Session, anchor: Anchor | None = None) -> VerifyReport:
    """Verify the whole chain as one consistent snapshot."""
    return check_chain(session.query(), anchor)
