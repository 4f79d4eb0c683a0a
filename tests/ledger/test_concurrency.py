"""Many engine processes on one ledger, and a process killed inside a transaction.

Four processes allocate orders of one rotation group at the same time (on PostgreSQL, the
many-process backend, and on SQLite too): no
rotation position is handed out twice (each allocation starts where the previous one ended) and
the hash chain does not fork. A process killed with SIGKILL after its first insert leaves nothing
of its step behind, and the ledger stays usable and intact.
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

from .helpers import EQUITY_POLICY, ROOT, ROTATION_POLICY, ROTATION_TRADE, publish, record_through_fills, staff, trade_doc

PROCESSES = 4
ORDERS_PER_PROCESS = 4


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("FAIRALLOC_TEST_HANG_AFTER_INSERT", None)
    return env


def test_concurrent_allocations_share_one_rotation_and_one_chain(ledger_url: str, tmp_path: Path) -> None:
    today = dt.datetime.now(dt.timezone.utc).date()
    with Ledger(ledger_url) as ledger:
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
    with Ledger(ledger_url) as ledger, ledger.read() as session:
        allocations = session.query(kinds=["order.allocated"])
        report = verify(session)
        seqs = [e.seq for e in session.query()]
    assert sorted(e.order_id or "" for e in allocations) == sorted(ids)
    assert {e.actor for e in allocations} == {"tom"}
    chain = [(e.data()["rotation_before"], e.data()["rotation_after"]) for e in allocations]
    assert chain[0][0] is None
    for (_before, previous_after), (before, _after) in zip(chain, chain[1:]):
        assert before == previous_after  # every allocation started where the last one ended
    handed_out = [e.data()["document"]["rotation"]["before"]["position"] for e in allocations]
    assert len(handed_out) == len(ids)
    assert report.ok, report.findings
    assert seqs == list(range(1, len(seqs) + 1))  # one chain, no gap, no fork


def test_kill_inside_an_allocation_leaves_nothing_partial(ledger_url: str, tmp_path: Path) -> None:
    with Ledger(ledger_url) as ledger:
        staff(ledger)
        publish(ledger, EQUITY_POLICY)
        doc = trade_doc()  # trade date 2026-03-02: the allocation is late, so it writes 2 events
        record_through_fills(ledger, doc)
        with ledger.read() as session:
            before = len(session.query())
    marker = tmp_path / "inside-transaction"
    env = _env()
    env["FAIRALLOC_TEST_HANG_AFTER_INSERT"] = str(marker)
    process = subprocess.Popen(
        [sys.executable, "-m", "fairalloc", "order", "allocate", doc["order"]["id"], "--user", "tom",
         "--ledger", ledger_url], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the allocation never reached its first insert"
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    with Ledger(ledger_url) as ledger:
        with ledger.read() as session:
            assert len(session.query()) == before
            assert session.query(kinds=["order.allocated", "alert.raised"]) == []
            assert verify(session).ok
        result = workflow.allocate_order(ledger, "tom", doc["order"]["id"])  # lock was released
        assert result.late
        with ledger.read() as session:
            assert verify(session).ok and len(session.query()) == before + 2


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

    with Ledger(ledger_url) as ledger, ledger.read() as session:
        assert session.conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
