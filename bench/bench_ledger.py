"""Ledger benchmark: events appended per second in batches, and ``verify`` time, on both backends.

SQLite writes to a temporary file with the ledger's normal settings (WAL, synchronous FULL).
PostgreSQL uses ``FAIRALLOC_TEST_PG_URL`` if set, otherwise a throwaway local cluster with fsync on,
so both figures include real commits. Figures go to docs/performance.md (section "Ledger").
"""

from __future__ import annotations

import os
from collections.abc import Callable
import tempfile
import time
from pathlib import Path

from engine.ledger import pgcluster
from engine.ledger.store import Ledger, NewEvent
from engine.ledger.verify import verify

EVENTS = 100_000
BATCHES = (1, 1_000, 10_000)


def _append(url: str, count: int, batch: int) -> float:
    """Append ``count`` fill-sized events in transactions of ``batch``; return events per second."""
    with Ledger(url) as ledger:
        started = time.perf_counter()
        for first in range(0, count, batch):
            with ledger.write() as session:
                session.append(*(
                    NewEvent("fill.recorded", "trader.bench",
                             {"fill": {"id": f"F-{n}", "quantity": 100, "price": "99.95",
                                       "executed_at": "2026-03-02T14:31:05Z"}},
                             order_id=f"O-{n // 10}", key=f"fill:O-{n // 10}:F-{n}")
                    for n in range(first, min(count, first + batch))))
        return count / (time.perf_counter() - started)


def _verify_seconds(url: str) -> tuple[float, int]:
    with Ledger(url) as ledger, ledger.read() as session:
        started = time.perf_counter()
        report = verify(session)
        elapsed = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"benchmark ledger failed verification: {report.findings}")
    return elapsed, report.events


def _run(backend: str, make_url: Callable[[str], str]) -> None:
    for batch in BATCHES:
        count = 2_000 if batch == 1 else EVENTS
        rate = _append(make_url(f"b{batch}"), count, batch)
        print(f"{backend:<10} append  batch {batch:>6}: {rate:>10,.0f} events/s ({count:,} events)")
    url = make_url("verify")
    _append(url, EVENTS, 10_000)
    best = min(_verify_seconds(url)[0] for _ in range(3))
    print(f"{backend:<10} verify  {EVENTS:,} events: {best:.3f} s (best of 3)")


def main() -> None:
    # The figures are CPU-bound: say how busy the machine was, so they can be read fairly.
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
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
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
