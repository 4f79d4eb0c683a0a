"""Fixtures that run every ledger test against both backends: SQLite and a real PostgreSQL.

PostgreSQL comes from ``FAIRALLOC_TEST_PG_URL`` (a server where the test user may create
databases) or, failing that, from a throwaway cluster started for the session. The PostgreSQL
half is skipped only when no server binaries exist, and never on CI (``CI=true``): there a
missing PostgreSQL is a failure, so a green run always means both backends were tested.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from . import pgcluster
from fairalloc.ledger.store import Ledger

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    given = os.environ.get("FAIRALLOC_TEST_PG_URL")
    if given:
        yield given
        return
    bindir = pgcluster.find_bindir()
    if bindir is None:
        message = "no PostgreSQL server binaries found (install Debian's postgresql package)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must test both backends")
        pytest.skip(message)
    cluster = pgcluster.TempCluster(bindir)
    url = cluster.start()
    try:
        yield url
    finally:
        cluster.stop()


def _url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    server: str = request.getfixturevalue("pg_server")
    return pgcluster.create_database(server)


@pytest.fixture(params=BACKENDS)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty ledger database URL on each backend."""
    return _url(request, tmp_path)


@pytest.fixture(params=("postgresql",))
def pg_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty ledger database on PostgreSQL only (concurrency tests)."""
    return _url(request, tmp_path)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    """A ledger opened as the test database it is: on PostgreSQL the tests connect as the
    server's superuser, which a real ledger refuses to write as."""
    with Ledger(ledger_url, test_database=True) as opened:
        yield opened


def tamper(ledger: Ledger, *statements: str) -> None:
    """Run raw SQL with the append-only triggers out of the way: what an intruder with DBA
    rights could do, and what ``ledger verify`` must then detect."""
    with ledger.engine.connect() as conn, conn.begin():
        if ledger.backend == "postgresql":
            conn.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))
            for statement in statements:
                conn.exec_driver_sql(statement)
            conn.execute(text("ALTER TABLE events ENABLE TRIGGER USER"))
        else:
            saved = conn.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            ).all()
            for name, _sql in saved:
                conn.execute(text(f"DROP TRIGGER {name}"))
            for statement in statements:
                conn.exec_driver_sql(statement)
            for _name, sql in saved:
                conn.execute(text(sql))
