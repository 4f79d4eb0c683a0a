"""Appending and reading on both backends; the database itself refuses UPDATE and DELETE."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from fairalloc.errors import LedgerError
from fairalloc.ledger.chain import GENESIS
from fairalloc.ledger.schema import SCHEMA_REVISION
from fairalloc.ledger.store import Ledger, NewEvent, resolve_url

from .helpers import me


def test_append_links_events_and_records_server_time(ledger: Ledger) -> None:
    with ledger.write() as session:
        first = session.append(NewEvent("test.a", me(ledger), {"n": 1}, order_id="O-1", key="a:1"))
    with ledger.write() as session:
        rest = session.append(NewEvent("test.b", me(ledger), {"n": 2}), NewEvent("test.c", me(ledger), [3]))
    events = first + rest
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert events[0].recorded_at <= events[1].recorded_at == events[2].recorded_at
    assert events[0].recorded_at.endswith("Z") and len(events[0].recorded_at) == 27
    with ledger.read() as session:
        assert session.query() == events
        assert session.by_key("a:1") == events[0]
        assert session.query(order_id="O-1") == events[:1]


def test_duplicate_key_is_refused_and_nothing_is_written(ledger: Ledger) -> None:
    with ledger.write() as session:
        session.append(NewEvent("k", me(ledger), {}, key="once"))
    with pytest.raises(LedgerError) as caught, ledger.write() as session:
        session.append(NewEvent("k", me(ledger), {"other": 1}), NewEvent("k", me(ledger), {}, key="once"))
    assert caught.value.codes == ["ledger-conflict"]
    with ledger.read() as session:
        assert len(session.query()) == 1


def test_an_error_inside_a_step_rolls_the_whole_step_back(ledger: Ledger) -> None:
    with pytest.raises(ZeroDivisionError), ledger.write() as session:
        session.append(NewEvent("k", me(ledger), {}))
        _ = 1 / 0
    with ledger.read() as session:
        assert session.query() == []


@pytest.mark.parametrize("statement", ["UPDATE events SET actor = 'mallory'",
                                       "DELETE FROM events"])
def test_database_refuses_update_and_delete(ledger: Ledger, statement: str) -> None:
    with ledger.write() as session:
        session.append(NewEvent("k", me(ledger), {}))
    with pytest.raises(LedgerError) as caught, ledger.write() as session:
        session.conn.execute(text(statement))
    assert caught.value.codes == ["ledger-append-only"]


def test_postgres_refuses_truncate(pg_url: str) -> None:
    ledger = Ledger(pg_url, test_database=True)
    with pytest.raises(LedgerError) as caught, ledger.write() as session:
        session.conn.execute(text("TRUNCATE events"))
    ledger.close()
    assert caught.value.codes == ["ledger-append-only"]


def test_a_pooled_connection_the_server_ended_is_replaced_before_use(pg_url: str) -> None:
    """The server ends every backend the ledger keeps pooled (as a restart or an administrator
    would): the next read and write each get a fresh connection and succeed, nothing lost."""
    import psycopg

    with Ledger(pg_url, test_database=True) as ledger:
        with ledger.write() as session:
            session.append(NewEvent("k", me(ledger), {"n": 1}))
        with ledger.engine.connect() as conn:
            mine = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (mine,)).fetchone() == (True,)
            while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (mine,)).fetchone():
                pass
        with ledger.read() as session:
            assert [e.payload for e in session.query()] == ['{"n":1}']
        with ledger.write() as session:
            session.append(NewEvent("k", me(ledger), {"n": 2}))
        with ledger.read() as session:
            assert len(session.query()) == 2


def test_reopening_is_idempotent_and_migrations_reach_the_expected_head(ledger_url: str) -> None:
    from pathlib import Path

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import fairalloc.ledger.store as store

    Ledger(ledger_url).close()
    with Ledger(ledger_url) as again, again.read() as session:
        assert session.conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            SCHEMA_REVISION
        )
    config = Config()
    config.set_main_option("script_location", str(Path(store.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_REVISION


def test_the_migrations_create_exactly_the_tables_and_columns_of_the_schema(ledger_url: str) -> None:
    """``fairalloc.ledger.schema`` is what the code reads and writes; the migrations are what
    databases hold: every table, column, type family, nullability and primary key agree."""
    from sqlalchemy import inspect

    from fairalloc.ledger.schema import metadata

    with Ledger(ledger_url) as ledger:
        found = inspect(ledger.engine)
        assert set(found.get_table_names()) == {*metadata.tables, "alembic_version"}
        for name, table in metadata.tables.items():
            held = {c["name"]: c for c in found.get_columns(name)}
            assert list(held) == [c.name for c in table.columns], name
            for column in table.columns:
                assert held[column.name]["nullable"] == column.nullable, (name, column.name)
                assert held[column.name]["type"]._type_affinity is column.type._type_affinity, (
                    name, column.name)
            assert found.get_pk_constraint(name)["constrained_columns"] == [
                c.name for c in table.primary_key.columns], name


def test_unreachable_ledger_is_a_ledger_error() -> None:
    with pytest.raises(LedgerError) as caught:
        Ledger("postgresql://nobody@127.0.0.1:1/none")
    assert caught.value.codes == ["ledger-unreachable"]


def test_url_resolution() -> None:
    assert resolve_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert resolve_url("some/file.db").startswith("sqlite:////")
    with pytest.raises(LedgerError):
        Ledger("mysql://u@h/db")


def test_opening_without_create_refuses_a_database_with_no_ledger(ledger_url: str) -> None:
    with pytest.raises(LedgerError) as caught:
        Ledger(ledger_url, create=False)
    assert caught.value.codes == ["ledger-not-initialised"]
    Ledger(ledger_url).close()
    Ledger(ledger_url, create=False).close()
