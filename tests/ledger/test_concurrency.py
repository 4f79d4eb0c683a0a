"""Many engine processes on one ledger, and a process killed inside a transaction.

Four processes allocate orders of one rotation group at the same time (on PostgreSQL, the
many-process backend, and on SQLite too): no rotation position is handed out twice (each
allocation starts where the previous one ended) and the hash chain does not fork.

A process killed with SIGKILL inside its transaction leaves nothing of its step behind, and the
ledger stays usable and intact. On PostgreSQL the test stops the writer exactly there, after its
first insert: it holds, in its own open transaction, the event number the writer's second insert
needs, so the writer waits on that row's lock until it is killed. SQLite has no such wait inside
a write transaction, so there the writer is killed at several moments while it allocates a
batch of orders, and every order must be either wholly allocated (its allocation and its alert)
or not at all.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fairalloc.ledger import workflow
from fairalloc.ledger.store import Ledger
from fairalloc.ledger.verify import verify

from .helpers import (EQUITY_POLICY, ROOT, ROTATION_POLICY, ROTATION_TRADE, publish, record_through_fills,
                      staff, trade_doc, who)

PROCESSES = 4
ORDERS_PER_PROCESS = 4


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def test_concurrent_allocations_share_one_rotation_and_one_chain(ledger_url: str, tmp_path: Path) -> None:
    today = dt.datetime.now(dt.timezone.utc).date()
    with Ledger(ledger_url, test_database=True) as ledger:
        staff(ledger)
        publish(ledger, ROTATION_POLICY)
        ids = [f"FI-C-{n:02d}" for n in range(PROCESSES * ORDERS_PER_PROCESS)]
        for order_id in ids:
            record_through_fills(ledger, trade_doc(ROTATION_TRADE, order_id=order_id, trade_date=today))
    go = tmp_path / "go"
    workers = [
        subprocess.Popen([sys.executable, "-m", "tests.ledger.worker", ledger_url, str(go),
                          *ids[n::PROCESSES]], cwd=ROOT, env=_env(), stderr=subprocess.PIPE, text=True)
        for n in range(PROCESSES)
    ]
    time.sleep(1.5)  # let every worker import and connect, then release them together
    go.write_text("go")
    for worker in workers:
        _out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    with Ledger(ledger_url, test_database=True) as ledger, ledger.read() as session:
        allocations = session.query(kinds=["order.allocated"])
        report = verify(session)
        seqs = [e.seq for e in session.query()]
    assert sorted(e.order_id or "" for e in allocations) == sorted(ids)
    assert {e.actor for e in allocations} == {"tom"}
    assert {e.source for e in allocations} == {"token"}
    chain = [(e.data()["rotation_before"], e.data()["rotation_after"]) for e in allocations]
    assert chain[0][0] is None
    for (_before, previous_after), (before, _after) in zip(chain, chain[1:]):
        assert before == previous_after  # every allocation started where the last one ended
    handed_out = [e.data()["document"]["rotation"]["before"]["position"] for e in allocations]
    assert len(handed_out) == len(ids)
    assert report.ok, report.findings
    assert seqs == list(range(1, len(seqs) + 1))  # one chain, no gap, no fork


def _late_orders(ledger: Ledger, count: int) -> list[str]:
    """``count`` entered and filled orders dated 2026-03-02: each allocation is late, so each
    writes two events (the allocation and its alert) in one transaction."""
    ids = [f"K-{n}" for n in range(count)]
    for order_id in ids:
        record_through_fills(ledger, trade_doc(order_id=order_id))
    return ids


def _worker(url: str, go: Path, *orders: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.ledger.worker", url, str(go), *orders],
                            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_kill_after_the_first_insert_leaves_nothing_partial(pg_url: str, tmp_path: Path) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    with Ledger(pg_url, test_database=True) as ledger:
        staff(ledger)
        publish(ledger, EQUITY_POLICY)
        (order_id,) = _late_orders(ledger, 1)
        with ledger.read() as session:
            head = session.head()
            before = len(session.query())
    assert head is not None
    raw_url = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    blocker = psycopg.connect(raw_url)  # one open transaction, held until the end
    blocker.execute("INSERT INTO events VALUES (%s, %s, session_user, 'test.blocker', NULL, NULL, "
                    "NULL, '{}', '', '', NULL, NULL, NULL)", (head.seq + 2, head.recorded_at))
    go = tmp_path / "go"
    go.write_text("go")
    process = _worker(pg_url, go, order_id)
    try:
        deadline = time.monotonic() + 60
        with psycopg.connect(raw_url, autocommit=True) as watcher:
            while True:  # until the writer waits on the blocker's row: after its first insert
                waiting = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'INSERT INTO events%%'").fetchone()
                if waiting is not None and waiting[0] == 1:
                    break
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the writer never reached its second insert"
                time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
    finally:
        blocker.rollback()
        blocker.close()
    with Ledger(pg_url, test_database=True) as ledger:
        with ledger.read() as session:
            assert len(session.query()) == before
            assert session.query(kinds=["order.allocated", "alert.raised"]) == []
            assert verify(session).ok
        result = workflow.allocate_order(ledger, who(ledger, "tom"), order_id)  # lock released
        assert result.late
        with ledger.read() as session:
            assert verify(session).ok and len(session.query()) == before + 2


@pytest.mark.parametrize("delay", [0.0, 0.03, 0.1])
def test_sqlite_writer_killed_mid_batch_leaves_whole_steps_only(tmp_path: Path, delay: float) -> None:
    import sqlite3

    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    with Ledger(url) as ledger:
        staff(ledger)
        publish(ledger, EQUITY_POLICY)
        # enough orders that the latest kill still lands mid-batch now that each allocation
        # reuses the compiled policy and the record book is faster (40 could all be allocated
        # within the 0.1 s delay)
        ids = _late_orders(ledger, 120)
    go = tmp_path / "go"
    go.write_text("go")
    process = _worker(url, go, *ids)
    watcher = sqlite3.connect(path)
    deadline = time.monotonic() + 120
    while not watcher.execute("SELECT count(*) FROM events WHERE kind = 'order.allocated'").fetchone()[0]:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the worker never allocated"
        time.sleep(0.005)
    watcher.close()
    time.sleep(delay)  # then kill it somewhere in the rest of the batch
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    with Ledger(url) as ledger, ledger.read() as session:
        assert verify(session).ok
        allocated = {e.order_id for e in session.query(kinds=["order.allocated"])}
        alerted = {e.order_id for e in session.query(kinds=["alert.raised"])}
    assert allocated == alerted  # never an allocation without its alert, nor the reverse
    assert 0 < len(allocated) < len(ids) or process.returncode == 0


def test_processes_opening_a_fresh_ledger_at_once_migrate_it_once(ledger_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    go.write_text("go")  # no orders: each worker only opens (and so migrates) the ledger
    workers = [subprocess.Popen([sys.executable, "-m", "tests.ledger.worker", ledger_url, str(go)],
                                cwd=ROOT, env=_env(), stderr=subprocess.PIPE, text=True)
               for _ in range(PROCESSES)]
    for worker in workers:
        _out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    from sqlalchemy import text

    with Ledger(ledger_url, test_database=True) as ledger, ledger.read() as session:
        assert session.conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
