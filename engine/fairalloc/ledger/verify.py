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

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fairalloc.errors import Diagnostic, Location
from fairalloc.ledger.chain import GENESIS, Event, recompute
from fairalloc.ledger.store import Session


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


def check_chain(rows: Iterable[tuple[Any, ...]], anchor: Anchor | None = None) -> VerifyReport:
    """Walk ``rows`` (events or raw rows in event column order, by ``seq``) and report the
    first break, then check the anchor.

    The rows are consumed as a stream: an intact chain is checked in constant memory, however
    long. Only after a break is the rest read into memory, to tell a reordering from a rewrite."""
    stream = iter(rows)
    prev_hash = GENESIS
    prev_time = ""
    count = 0
    last: tuple[Any, ...] | None = None
    anchored: str | None = None
    for raw in stream:
        count += 1
        if raw[0] == count and raw[8] == prev_hash and raw[1] >= prev_time and recompute(raw) == raw[9]:
            if anchor is not None and raw[0] == anchor.seq:
                anchored = raw[9]
            prev_hash = raw[9]
            prev_time = raw[1]
            last = raw
            continue
        rest = list(stream)
        tail = rest[-1] if rest else raw
        report = VerifyReport(events=count + len(rest), head=Event(*tail))
        report.findings.append(_diagnose(Event(*raw), count, prev_hash, prev_time, rest))
        return report
    report = VerifyReport(events=count, head=Event(*last) if last is not None else None)
    if anchor is not None and anchored != anchor.hash:
        seen = "is missing" if anchored is None else f"has hash {anchored}"
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


def _diagnose(row: Event, expected: int, prev_hash: str, prev_time: str,
              rest: list[tuple[Any, ...]]) -> Diagnostic:
    """Name what broke at ``row``, the first event that failed a check; ``rest`` follows it."""
    if row.seq != expected:
        return Diagnostic(
            "ledger-event-missing",
            f"event {expected} is missing (the next event recorded is {row.seq}): "
            "events were deleted",
            _at(expected),
        )
    if row.prev_hash != prev_hash:
        later = next((r[0] for r in rest if r[9] == row.prev_hash), None)
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
        if rest and rest[0][8] == computed:
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
    return Diagnostic(
        "ledger-time-reversed",
        f"event {row.seq} is recorded at {row.recorded_at}, before event "
        f"{row.seq - 1} ({prev_time})",
        _at(row.seq),
    )


def verify(session: Session, anchor: Anchor | None = None) -> VerifyReport:
    """Verify the whole chain as one consistent snapshot."""
    return check_chain(session.stream_rows(), anchor)
