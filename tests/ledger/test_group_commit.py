"""Writes made at once by several threads of one process share one PostgreSQL transaction.

The threads are made to queue: another session holds the ledger's advisory lock while they
start, so the first opens the transaction and waits for the lock and the others wait for their
turn to join it. Once the lock is let go they run one after another in that transaction, each
under its own savepoint: a write refused by a check, or by the database (a duplicate key), takes
back its own events and fails alone; the others are recorded, chained and answered after the
commit. What each write read includes what the writes before it in the same transaction
appended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from fairalloc import load_trade
from fairalloc.errors import FairallocError
from fairalloc.ledger import workflow
from fairalloc.ledger.store import _LOCK_KEY, Ledger, NewEvent
from fairalloc.ledger.verify import verify

from .helpers import publish, retimed, staff, trade_doc, who


def _started(writes: list[Callable[[], Any]]) -> tuple[list[threading.Thread], list[Any]]:
    """Start ``writes`` in threads, 50 ms apart so that they begin in the order given; the list
    filled with each one's result or the error it raised, once the threads are joined."""
    results: list[Any] = [None] * len(writes)

    def run(index: int) -> None:
        try:
            results[index] = writes[index]()
        except FairallocError as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(writes))]
    for thread in threads:
        thread.start()
        time.sleep(0.05)  # in this order: the first opens the transaction, the rest queue
    return threads, results


def _joined(threads: list[threading.Thread], results: list[Any]) -> list[Any]:
    for thread in threads:
        thread.join(30)
    return results


def _queued(ledger: Ledger, url: str, writes: list[Callable[[], Any]]) -> list[Any]:
    """Run ``writes`` in threads started while the lock is held elsewhere; each one's result or
    the error it raised, in the order given."""
    holder = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        threads, results = _started(writes)
        deadline = time.monotonic() + 5
        while ledger._waiting < len(writes) - 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        holder.close()  # the lock goes with the session
    return _joined(threads, results)


def test_queued_writes_share_a_transaction_and_a_refusal_refuses_alone(pg_url: str) -> None:
    with Ledger(pg_url, test_database=True) as ledger:
        staff(ledger)
        publish(ledger)
        docs = [retimed(trade_doc(order_id=f"G-{n}"), 3) for n in range(5)]
        trades = [load_trade(doc, file="test") for doc in docs]
        pam = who(ledger, "pam")
        cole = who(ledger, "cole")  # a CCO: may not record a statement
        writes: list[Callable[[], Any]] = [
            lambda: workflow.record_statement(ledger, pam, trades[0]),
            lambda: workflow.record_statement(ledger, cole, trades[1]),
            lambda: workflow.record_statement(ledger, pam, trades[2]),
            lambda: workflow.set_role(ledger, who(ledger, "ada"), "zoe", "pm", grant=True),
            lambda: workflow.record_statement(ledger, who(ledger, "zoe"), trades[3]),
        ]
        first, refused, third, granted, by_new_pm = _queued(ledger, pg_url, writes)
        assert isinstance(refused, FairallocError) and refused.codes == ["role-required"]
        # the grant made earlier in the same transaction is what the last write's check read
        assert not isinstance(by_new_pm, FairallocError), by_new_pm
        recorded = [first, third, granted, by_new_pm]
        assert [e.seq for e in recorded] == list(range(recorded[0].seq, recorded[0].seq + 4))
        times = [e.recorded_at for e in recorded]
        assert times == sorted(times)
        with ledger.read() as session:
            assert verify(session).ok
            assert session.by_key("statement:G-1") is None
            held = {e.seq: e for e in session.query(before_seq=recorded[-1].seq + 1)}
        assert all(held[e.seq] == e for e in recorded)


def test_a_duplicate_key_in_a_shared_transaction_fails_that_write_only(pg_url: str) -> None:
    with Ledger(pg_url, test_database=True) as ledger:
        staff(ledger)
        actor = ledger.actor()

        def append(key: str) -> Callable[[], Any]:
            def write() -> Any:
                with ledger.write() as session:
                    return session.append(NewEvent("alert.raised", actor, {"alert": key}, key=key))[0]
            return write

        results = _queued(ledger, pg_url, [append("k-1"), append("k-2"), append("k-1"), append("k-3")])
        assert isinstance(results[2], FairallocError) and results[2].codes == ["ledger-conflict"]
        kept = [results[0], results[1], results[3]]
        assert [e.seq for e in kept] == [kept[0].seq, kept[0].seq + 1, kept[0].seq + 2]
        with ledger.read() as session:
            # the chain holds and links; only the bare alerts (no step raised them) are findings
            assert {d.code for d in verify(session).findings} == {"authority-unexpected-event"}
            assert [e.key for e in session.query(kinds=["alert.raised"])] == ["k-1", "k-2", "k-3"]


def test_a_write_waits_its_turn_at_most_the_lock_timeout(pg_url: str) -> None:
    with Ledger(pg_url, test_database=True, lock_timeout=0.5) as ledger:
        staff(ledger)
        actor = ledger.actor()

        def slow() -> Any:
            with ledger.write() as session:
                time.sleep(1.5)  # a write that keeps the turn longer than the others may wait
                return session.append(NewEvent("alert.raised", actor, {"alert": "slow"}))[0]

        def quick() -> Any:
            with ledger.write() as session:
                return session.append(NewEvent("alert.raised", actor, {"alert": "quick"}))[0]

        results = _joined(*_started([slow, quick, quick, quick]))
        assert not isinstance(results[0], FairallocError)
        assert all(isinstance(r, FairallocError) and r.codes == ["ledger-busy"] for r in results[1:])
        with ledger.read() as session:
            assert [e.data()["alert"] for e in session.query(kinds=["alert.raised"])] == ["slow"]


def test_when_the_shared_commit_fails_every_write_in_it_fails_and_nothing_is_recorded(pg_url: str) -> None:
    with Ledger(pg_url, test_database=True) as ledger:
        staff(ledger)
        actor = ledger.actor()
        with ledger.engine.connect() as conn, conn.begin():  # refuses, at commit, a marked event
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF strpos(NEW.payload, 'refuse-at-commit') > 0 THEN RAISE EXCEPTION 'refused at commit'; "
                "END IF; RETURN NULL; END $$")
            conn.exec_driver_sql(
                "CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON events DEFERRABLE "
                "INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit()")
        with ledger.read() as session:
            before = session.head()

        def append(alert: str) -> Callable[[], Any]:
            def write() -> Any:
                with ledger.write() as session:
                    return session.append(NewEvent("alert.raised", actor, {"alert": alert}))[0]
            return write

        results = _queued(ledger, pg_url, [append("one"), append("refuse-at-commit"), append("three")])
        assert all(isinstance(r, FairallocError) and r.codes == ["ledger-database-error"] for r in results)
        with ledger.read() as session:
            assert session.head() == before
        assert append("after")().kind == "alert.raised"  # the ledger writes again
