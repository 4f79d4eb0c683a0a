"""Ledger benchmark: events appended per second in batches, ``verify`` time, and signed checkpoints
and Merkle proofs over 1,000,000 events, on both backends.

SQLite writes to a temporary file with the ledger's normal settings (WAL, synchronous FULL).
PostgreSQL uses ``FAIRALLOC_TEST_PG_URL`` if set, otherwise a throwaway local cluster with fsync on,
so both figures include real commits. Figures go to docs/performance.md (section "Ledger").
Each ledger is bootstrapped and its writer granted the trader role first, so that ``verify`` —
which re-derives every event's authority as well as the chain — finds it intact. The PostgreSQL
ledgers are throwaway databases written as the server's superuser (``test_database=True``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
import tempfile
import time
from pathlib import Path

from bench import harness
from tests.ledger import pgcluster
from fairalloc.ledger import checkpoint as cp
from fairalloc.ledger import tree, workflow
from fairalloc.ledger.store import Ledger, NewEvent
from fairalloc.ledger.verify import verify

EVENTS = 100_000
BATCHES = (1, 1_000, 10_000)
CHECKPOINT_EVENTS = 1_000_000
PROOFS = 200
NEXT_DAY = 10_000


def _append(url: str, count: int, batch: int) -> tuple[float, float]:
    """Append ``count`` fill-sized events in transactions of ``batch``; return events per second
    of wall time and per second of this process's CPU time."""
    with Ledger(url, test_database=True) as ledger:
        actor = ledger.actor()
        workflow.initialise(ledger, actor, actor.name)
        workflow.set_role(ledger, actor, actor.name, "trader", grant=True)
        started, cpu = time.perf_counter(), time.process_time()
        for first in range(0, count, batch):
            with ledger.write() as session:
                session.append(*(
                    NewEvent("fill.recorded", actor,
                             {"fill": {"id": f"F-{n}", "quantity": 100, "price": "99.95",
                                       "executed_at": "2026-03-02T14:31:05Z"}},
                             order_id=f"O-{n // 10}", key=f"fill:O-{n // 10}:F-{n}")
                    for n in range(first, min(count, first + batch))))
        return count / (time.perf_counter() - started), count / (time.process_time() - cpu)


def _verify_seconds(url: str) -> tuple[float, float]:
    """Wall time and this process's CPU time of one ``verify`` (the server's CPU not included)."""
    with Ledger(url, test_database=True) as ledger, ledger.read() as session:
        started, cpu = time.perf_counter(), time.process_time()
        report = verify(session)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if not report.ok:
        raise SystemExit(f"benchmark ledger failed verification: {report.findings}")
    return elapsed, cpu


def _timed(work: Callable[[], object]) -> tuple[float, float]:
    timing = harness.timed(work)[1]
    return timing.wall, timing.cpu


def _checkpoints(backend: str, url: str) -> None:
    """Checkpoint of CHECKPOINT_EVENTS events, then inclusion and consistency proofs against it."""
    _append(url, CHECKPOINT_EVENTS, 10_000)
    key = cp.SigningKey.generate("bench.example/ledger")
    with Ledger(url, test_database=True) as ledger:
        signed: list[cp.Checkpoint] = []
        wall, cpu = _timed(lambda: signed.append(cp.take(ledger, key)[0]))
        print(f"{backend:<10} checkpoint {CHECKPOINT_EVENTS:,} events: {wall:.3f} s wall, "
              f"{cpu:.3f} s CPU (first; caches subtree hashes)")
        with ledger.write() as session:
            session.append(*(NewEvent("fill.recorded", ledger.actor(), {"n": n})
                             for n in range(NEXT_DAY)))
        wall, cpu = _timed(lambda: cp.take(ledger, key, signed[0]))
        print(f"{backend:<10} checkpoint {CHECKPOINT_EVENTS + NEXT_DAY:,} events: {wall:.3f} s "
              f"wall, {cpu:.3f} s CPU (the next, {NEXT_DAY:,} events after the last)")
        checkpoint = signed[0]
        with ledger.read() as session:
            times = []
            for i in range(PROOFS):
                seq = 1 + (i * 7_919 + i * i * 104_729) % CHECKPOINT_EVENTS
                times.append(_timed(lambda: cp.inclusion(session, seq, checkpoint)))
            walls = sorted(t[0] for t in times)
            print(f"{backend:<10} inclusion proof in {CHECKPOINT_EVENTS:,}: median "
                  f"{walls[PROOFS // 2] * 1000:.2f} ms, max {walls[-1] * 1000:.2f} ms wall, "
                  f"{sum(t[1] for t in times) / PROOFS * 1000:.2f} ms CPU mean ({PROOFS} proofs, "
                  "each checked against the checkpoint)")
            half = CHECKPOINT_EVENTS // 2 + 12_345
            earlier = cp.Checkpoint(key.name, half, tree.build(session, at=[half]).roots_at[half])
            wall, cpu = _timed(lambda: cp.consistency(session, earlier, checkpoint))
            print(f"{backend:<10} consistency proof {half:,} -> {CHECKPOINT_EVENTS:,}: "
                  f"{wall * 1000:.2f} ms wall, {cpu * 1000:.2f} ms CPU")
            wall, cpu = _timed(lambda: cp.check_ledger(session, checkpoint))
            print(f"{backend:<10} verify --checkpoint (tree only) {CHECKPOINT_EVENTS:,} events: "
                  f"{wall:.3f} s wall, {cpu:.3f} s CPU")


def _run(backend: str, make_url: Callable[[str], str]) -> None:
    for batch in BATCHES:
        count = 2_000 if batch == 1 else EVENTS
        wall, cpu = _append(make_url(f"b{batch}"), count, batch)
        print(f"{backend:<10} append  batch {batch:>6}: {wall:>10,.0f} events/s wall, "
              f"{cpu:>10,.0f} per CPU second ({count:,} events)")
    url = make_url("verify")
    _append(url, EVENTS, 10_000)
    wall, cpu = min(_verify_seconds(url) for _ in range(3))
    print(f"{backend:<10} verify  {EVENTS:,} events: {wall:.3f} s wall, {cpu:.3f} s CPU (best of 3)")
    _checkpoints(backend, make_url("checkpoint"))
    print(harness.load())


def main() -> None:
    # The figures are CPU-bound: say how busy the machine was, so they can be read fairly.
    harness.banner()
    with tempfile.TemporaryDirectory() as scratch:
        _run("sqlite", lambda name: f"sqlite:///{Path(scratch) / name}.db")
    server = os.environ.get("FAIRALLOC_TEST_PG_URL")
    cluster = None
    if server is None:
        bindir = pgcluster.find_bindir()
        if bindir is None:
            print("postgresql: skipped (no server binaries; set FAIRALLOC_TEST_PG_URL)")
            return
        cluster = pgcluster.TempCluster(bindir, durable=True)
        server = cluster.start()
    try:
        base = server
        _run("postgresql", lambda name: pgcluster.create_database(base, f"bench_{name}"))
    finally:
        if cluster is not None:
            cluster.stop()
    harness.closing()


if __name__ == "__main__":
    main()
