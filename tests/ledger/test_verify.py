"""``ledger verify`` detects each kind of tampering, on both backends, and passes when untouched.

The chain's own findings are checked with the chain check alone (the events here are not a
workflow's, so the authority check has its own say in test_authority.py)."""

from __future__ import annotations

import hashlib

import pytest

from fairalloc.ledger.store import Ledger, NewEvent
from fairalloc.ledger.verify import Anchor, check_chain, verify

from .conftest import tamper
from .helpers import me


def _fill(ledger: Ledger, count: int, batch: int = 1) -> None:
    for start in range(0, count, batch):
        with ledger.write() as session:
            session.append(*(NewEvent("test.event", me(ledger), {"n": n}, order_id=f"O-{n % 3}")
                             for n in range(start, min(count, start + batch))))


def _codes(ledger: Ledger, anchor: Anchor | None = None) -> list[str]:
    with ledger.read() as session:
        return [d.code for d in check_chain(session.stream_rows(), anchor).findings]


def _pointer(ledger: Ledger) -> str | None:
    with ledger.read() as session:
        return check_chain(session.stream_rows()).findings[0].location.pointer


def test_untouched_ledger_verifies(ledger: Ledger) -> None:
    _fill(ledger, 20, batch=3)
    assert _codes(ledger) == []


def test_an_empty_ledger_is_not_intact(ledger: Ledger) -> None:
    with ledger.read() as session:
        report = verify(session)
    assert [d.code for d in report.findings] == ["ledger-empty"] and not report.ok


def test_edited_event(ledger: Ledger) -> None:
    _fill(ledger, 10)
    tamper(ledger, "UPDATE events SET payload = '{\"n\":999}' WHERE seq = 5")
    assert _codes(ledger) == ["ledger-event-edited"]
    assert _pointer(ledger) == "/events/5"


def test_edited_actor(ledger: Ledger) -> None:
    _fill(ledger, 10)
    tamper(ledger, "UPDATE events SET actor = 'mallory' WHERE seq = 10")
    assert _codes(ledger) == ["ledger-event-edited"]


def test_deleted_event(ledger: Ledger) -> None:
    _fill(ledger, 10)
    tamper(ledger, "DELETE FROM events WHERE seq = 4")
    assert _codes(ledger) == ["ledger-event-missing"]
    assert _pointer(ledger) == "/events/4"


def test_deleted_and_renumbered(ledger: Ledger) -> None:
    _fill(ledger, 10)
    tamper(ledger, "DELETE FROM events WHERE seq = 4",
           *(f"UPDATE events SET seq = {n - 1} WHERE seq = {n}" for n in range(5, 11)))
    assert _codes(ledger) == ["ledger-chain-broken"]


def test_swapped_pair(ledger: Ledger) -> None:
    _fill(ledger, 10)
    tamper(ledger, "UPDATE events SET seq = -1 WHERE seq = 6",
           "UPDATE events SET seq = 6 WHERE seq = 7",
           "UPDATE events SET seq = 7 WHERE seq = -1")
    assert _codes(ledger) == ["ledger-events-reordered"]
    assert _pointer(ledger) == "/events/6"


def test_forged_hash(ledger: Ledger) -> None:
    _fill(ledger, 10)
    forged = hashlib.sha256(b"forged").hexdigest()
    tamper(ledger, f"UPDATE events SET hash = '{forged}' WHERE seq = 3")
    assert _codes(ledger) == ["ledger-hash-forged"]


def test_edit_with_recomputed_hash_breaks_the_next_link(ledger: Ledger) -> None:
    _fill(ledger, 10)
    with ledger.read() as session:
        fifth = session.query()[4]
    from fairalloc.ledger.chain import recompute

    edited = fifth._replace(payload='{"n":0}')
    tamper(ledger, f"UPDATE events SET payload = '{edited.payload}', hash = '{recompute(edited)}'"
                   " WHERE seq = 5")
    assert _codes(ledger) == ["ledger-chain-broken"]
    assert _pointer(ledger) == "/events/6"


def test_time_going_backwards(ledger: Ledger) -> None:
    _fill(ledger, 3)
    with ledger.read() as session:
        second = session.query()[1]
    from fairalloc.ledger.chain import recompute

    # Rewrite event 2's time to the past and re-hash event 2 and 3 so only the time is wrong.
    moved = second._replace(recorded_at="2000-01-01T00:00:00.000000Z")
    new_hash = recompute(moved)
    with ledger.read() as session:
        third = session.query()[2]
    relinked = third._replace(prev_hash=new_hash)
    tamper(ledger,
           f"UPDATE events SET recorded_at = '{moved.recorded_at}', hash = '{new_hash}' WHERE seq = 2",
           f"UPDATE events SET prev_hash = '{new_hash}', hash = '{recompute(relinked)}' WHERE seq = 3")
    assert _codes(ledger) == ["ledger-time-reversed"]


def test_anchor_detects_a_cut_tail(ledger: Ledger) -> None:
    _fill(ledger, 10)
    with ledger.read() as session:
        head = verify(session).head
    assert head is not None
    anchor = Anchor(head.seq, head.hash)
    assert _codes(ledger, anchor) == []
    tamper(ledger, "DELETE FROM events WHERE seq >= 9")
    assert _codes(ledger) == []  # a cut tail leaves a valid shorter chain ...
    assert _codes(ledger, anchor) == ["ledger-anchor-mismatch"]  # ... which the anchor exposes


def test_an_untouched_ledger_of_a_hundred_thousand_events_verifies(ledger: Ledger) -> None:
    # how fast is measured by bench/bench_ledger.py, not here: a timed test fails on a busy machine
    _fill(ledger, 100_000, batch=5_000)
    with ledger.read() as session:
        report = check_chain(session.stream_rows())
    assert report.ok and report.events == 100_000


def test_a_fully_rechained_chain_is_found_only_against_a_head_kept_elsewhere(ledger: Ledger) -> None:
    from fairalloc.ledger.chain import GENESIS, recompute

    _fill(ledger, 10)
    with ledger.read() as session:
        events = session.query()
    anchor = Anchor(events[-1].seq, events[-1].hash)
    rewritten, prev = [], GENESIS
    for event in events:  # edit event 3, then recompute every link and hash after it
        changed = event._replace(payload='{"n":333}' if event.seq == 3 else event.payload,
                                 prev_hash=prev)
        changed = changed._replace(hash=recompute(changed))
        rewritten.append(changed)
        prev = changed.hash
    tamper(ledger, *(f"UPDATE events SET payload = '{e.payload}', prev_hash = '{e.prev_hash}', "
                     f"hash = '{e.hash}' WHERE seq = {e.seq}" for e in rewritten))
    assert _codes(ledger) == []  # self-consistent ...
    assert _codes(ledger, anchor) == ["ledger-anchor-mismatch"]  # ... but not the head kept elsewhere
