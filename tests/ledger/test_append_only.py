"""Append-only by construction, tried as an insider would: every attack refused or found.

SQLite: an insider with write access to the file, using the sqlite3 module directly (the
triggers in place): UPDATE, DELETE, INSERT OR REPLACE (over a number, over a key), UPSERT — each
refused by the database; with the triggers dropped, any edit is found by ``verify`` (the chain
codes are in test_verify.py) and the dropped or replaced trigger itself is a finding.
PostgreSQL: each person connects as a role of their own; the role split, the server-side actor,
the owner refusal and the lock timeout.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from fairalloc.errors import LedgerError, RefusedError
from fairalloc.ledger import workflow
from fairalloc.ledger.chain import event_canonical, link_hash
from fairalloc.ledger.identity import Actor
from fairalloc.ledger.roles import setup_roles
from fairalloc.ledger.store import Ledger
from fairalloc.ledger.verify import verify

from . import pgcluster
from .helpers import EQUITY_POLICY, me, publish, staff


def _codes(ledger: Ledger) -> list[str]:
    with ledger.read() as session:
        return [d.code for d in verify(session).findings]


@pytest.fixture
def sqlite_ledger(tmp_path: Path) -> Iterator[tuple[Ledger, Path]]:
    path = tmp_path / "ledger.db"
    with Ledger(f"sqlite:///{path}") as ledger:
        staff(ledger)
        publish(ledger, EQUITY_POLICY)  # an event with a key
        yield ledger, path


INSIDER_SQL = {
    "update": "UPDATE events SET actor = 'mallory' WHERE seq = 2",
    "delete": "DELETE FROM events WHERE seq = 2",
    "replace-by-seq": "INSERT OR REPLACE INTO events SELECT seq, recorded_at, 'mallory', kind, "
                      "order_id, key, topic, payload, prev_hash, hash, source, service, on_behalf_of "
                      "FROM events WHERE seq = 2",
    "replace-by-key": "INSERT OR REPLACE INTO events SELECT (SELECT max(seq) + 1 FROM events), "
                      "recorded_at, actor, kind, order_id, key, topic, payload, prev_hash, hash, "
                      "source, service, on_behalf_of FROM events WHERE key IS NOT NULL LIMIT 1",
    "replace-keyword": "REPLACE INTO events SELECT * FROM events WHERE seq = 3",
    "upsert": "INSERT INTO events SELECT * FROM events WHERE seq = 2 ON CONFLICT(seq) DO UPDATE "
              "SET actor = 'mallory'",
    "insert-into-a-gap": "INSERT INTO events SELECT seq + 100, recorded_at, actor, kind, order_id, "
                         "NULL, topic, payload, prev_hash, hash, source, service, on_behalf_of "
                         "FROM events WHERE seq = 2",
}


@pytest.mark.parametrize("attack", sorted(INSIDER_SQL))
def test_sqlite_refuses_every_rewrite_with_the_triggers_in_place(
        sqlite_ledger: tuple[Ledger, Path], attack: str) -> None:
    ledger, path = sqlite_ledger
    with ledger.read() as session:
        before = session.query()
    raw = sqlite3.connect(path)  # the insider's own client, not the engine
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute(INSIDER_SQL[attack])
        raw.commit()
    raw.close()
    with ledger.read() as session:
        assert session.query() == before
    assert _codes(ledger) == []


def test_replace_is_refused_even_with_recursive_triggers_off(sqlite_ledger: tuple[Ledger, Path]) -> None:
    ledger, path = sqlite_ledger
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA recursive_triggers = OFF")  # REPLACE then deletes without DELETE triggers
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute(INSIDER_SQL["replace-by-seq"])
    raw.close()
    assert _codes(ledger) == []


def test_dropped_trigger_is_found(sqlite_ledger: tuple[Ledger, Path]) -> None:
    ledger, path = sqlite_ledger
    raw = sqlite3.connect(path)
    raw.execute("DROP TRIGGER events_append_at_head")
    raw.commit()
    raw.close()
    with ledger.read() as session:
        findings = verify(session).findings
    assert [(d.code, d.location.pointer) for d in findings] == [
        ("ledger-trigger-missing", "/protection/events_append_at_head")]


def test_replaced_and_added_triggers_are_found(sqlite_ledger: tuple[Ledger, Path]) -> None:
    ledger, path = sqlite_ledger
    raw = sqlite3.connect(path)
    raw.execute("DROP TRIGGER events_no_update")
    raw.execute("CREATE TRIGGER events_no_update BEFORE UPDATE ON events WHEN 0 "
                "BEGIN SELECT RAISE(ABORT, 'fairalloc ledger is append-only: UPDATE refused'); END")
    raw.execute("CREATE TRIGGER events_helper AFTER INSERT ON events BEGIN SELECT 1; END")
    raw.commit()
    raw.close()
    assert sorted(_codes(ledger)) == ["ledger-trigger-modified", "ledger-trigger-unexpected"]


def test_a_correctly_chained_grant_by_a_non_admin_is_found(sqlite_ledger: tuple[Ledger, Path]) -> None:
    """The insider appends, with INSERT only and a correct hash, 'tom grants cco to mallory'."""
    ledger, path = sqlite_ledger
    with ledger.read() as session:
        head = session.head()
    assert head is not None
    seq, payload = head.seq + 1, '{"role":"cco","user":"mallory"}'
    row = (seq, head.recorded_at, "tom", "user.role_granted", None, None, "user:mallory", payload,
           head.hash)
    digest = link_hash(head.hash, event_canonical(*row[:8]))
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO events (seq, recorded_at, actor, kind, order_id, key, topic, payload, "
                "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (*row, digest))
    raw.commit()
    raw.close()
    with ledger.read() as session:
        findings = verify(session).findings
    assert [(d.code, d.location.pointer) for d in findings] == [
        ("authority-role-missing", f"/events/{seq}")]
    assert workflow.list_users(ledger).get("mallory") == {"cco"}  # what the record claims ...
    # ... and verify refuses to believe it: a forged grant gives its grantee nothing
    forged_review = Actor.of("mallory", "token", service=me(ledger).name)
    with pytest.raises(RefusedError):
        workflow.set_role(ledger, forged_review, "mallory", "admin", grant=True)


def test_the_last_admin_cannot_be_removed_and_bootstrap_happens_once(
        sqlite_ledger: tuple[Ledger, Path]) -> None:
    ledger, _path = sqlite_ledger
    self = me(ledger)
    workflow.set_role(ledger, self, "ada", "admin", grant=False)
    with pytest.raises(RefusedError) as caught:
        workflow.set_role(ledger, self, self.name, "admin", grant=False)
    assert caught.value.codes == ["last-admin"]
    with pytest.raises(LedgerError) as conflict:
        workflow.initialise(ledger, self, "mallory")
    assert conflict.value.codes == ["ledger-already-initialised"]
    assert workflow.initialise(ledger, self, self.name).seq == 1  # init again: the same event
    assert _codes(ledger) == []


def test_sqlite_writer_waits_only_the_lock_timeout(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Ledger(f"sqlite:///{path}", lock_timeout=0.5) as ledger:
        staff(ledger)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another session holds the write lock
        try:
            with pytest.raises(LedgerError) as caught:
                workflow.set_role(ledger, me(ledger), "pam", "trader", grant=True)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert caught.value.codes == ["ledger-busy"]
        workflow.set_role(ledger, me(ledger), "pam", "trader", grant=True)  # and then it works


# --- PostgreSQL: one role per person -----------------------------------------------------------


def _as(url: str, role: str) -> str:
    return make_url(url).set(username=role).render_as_string(hide_password=False)


@pytest.fixture
def firm_pg(pg_server: str) -> Iterator[tuple[str, str]]:
    """A PostgreSQL ledger initialised by its owner (the server's superuser here), the role split
    in place, admin ``ada``, trader ``tom``, cco ``cole`` and ``mallory`` with no role at all."""
    owner = pgcluster.create_database(pg_server)
    with Ledger(owner) as ledger:
        workflow.initialise(ledger, ledger.actor(), "ada")
        setup_roles(ledger, ["ada", "tom", "cole", "mallory"], ["examiner"])
    with Ledger(_as(owner, "ada")) as ledger:
        for user, role in (("tom", "trader"), ("cole", "cco")):
            workflow.set_role(ledger, ledger.actor(), user, role, grant=True)
    yield owner, owner


def _raw(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
                           autocommit=True)


def test_a_trader_cannot_record_an_event_as_anyone_else(firm_pg: tuple[str, str]) -> None:
    owner, _ = firm_pg
    with Ledger(_as(owner, "tom")) as ledger:
        assert ledger.actor().name == "tom"
        with pytest.raises(RefusedError) as caught:  # through the engine: refused before writing
            workflow.set_role(ledger, Actor.of("ada", "database-role"), "tom", "cco", grant=True)
        assert caught.value.codes == ["actor-not-authenticated"]
    with _raw(_as(owner, "tom")) as conn:  # by hand, with the writer's INSERT privilege
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="connected role"):
            conn.execute("INSERT INTO events SELECT max(seq) + 1, max(recorded_at), 'ada', "
                         "'user.role_granted', NULL, NULL, 'user:tom', '{}', '', '', NULL, NULL, "
                         "NULL FROM events")
        for statement in ("UPDATE events SET actor = 'tom'", "DELETE FROM events",
                          "ALTER TABLE events DISABLE TRIGGER ALL", "DROP TRIGGER "
                          "events_no_update_delete ON events"):
            with pytest.raises(psycopg.Error):
                conn.execute(statement)


def test_a_grant_appended_by_a_non_admin_is_found(firm_pg: tuple[str, str]) -> None:
    owner, _ = firm_pg
    with Ledger(_as(owner, "mallory")) as ledger, ledger.read() as session:
        head = session.head()
    assert head is not None
    seq, payload = head.seq + 1, '{"role":"cco","user":"mallory"}'
    row = (seq, head.recorded_at, "mallory", "user.role_granted", None, None, "user:mallory", payload)
    digest = link_hash(head.hash, event_canonical(*row, "database-role"))
    with _raw(_as(owner, "mallory")) as conn:
        conn.execute("INSERT INTO events VALUES (%s, %s, session_user, %s, %s, %s, %s, %s, %s, %s, "
                     "'database-role', NULL, NULL)", (row[0], row[1], *row[3:], head.hash, digest))
    with Ledger(_as(owner, "examiner")) as ledger, ledger.read() as session:
        findings = verify(session).findings
    assert [(d.code, d.location.pointer) for d in findings] == [("authority-role-missing", f"/events/{seq}")]


def test_disabled_and_replaced_triggers_are_found(firm_pg: tuple[str, str]) -> None:
    owner, _ = firm_pg
    with _raw(owner) as conn:  # the owner can: which is why the engine never writes as it
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_no_update_delete")
        conn.execute("CREATE OR REPLACE FUNCTION fairalloc_actor_is_session_user() RETURNS trigger "
                     "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$")
    with Ledger(_as(owner, "examiner")) as ledger, ledger.read() as session:
        found = sorted((d.code, d.location.pointer) for d in verify(session).findings)
    assert found == [("ledger-trigger-disabled", "/protection/events_no_update_delete"),
                     ("ledger-trigger-modified", "/protection/events_actor_is_session_user")]


def test_the_engine_refuses_to_write_as_the_owner_and_verify_finds_it(firm_pg: tuple[str, str]) -> None:
    owner, _ = firm_pg
    with Ledger(owner) as ledger:
        with pytest.raises(RefusedError) as caught:
            workflow.set_role(ledger, ledger.actor(), "tom", "pm", grant=True)
        assert caught.value.codes == ["ledger-privileged-writer"]
        with ledger.read() as session:
            assert [d.code for d in verify(session).findings] == ["ledger-connected-as-owner"]
    with Ledger(_as(owner, "examiner")) as ledger, ledger.read() as session:
        assert verify(session).ok


def test_a_held_advisory_lock_makes_writers_fail_within_the_lock_timeout(firm_pg: tuple[str, str]) -> None:
    owner, _ = firm_pg
    from fairalloc.ledger.store import _LOCK_KEY

    holder = _raw(owner)
    holder.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))  # a session that never lets go
    try:
        with Ledger(_as(owner, "ada"), lock_timeout=1.0) as ledger:
            started = time.monotonic()
            with pytest.raises(LedgerError) as caught:
                workflow.set_role(ledger, ledger.actor(), "tom", "pm", grant=True)
            waited = time.monotonic() - started
        assert caught.value.codes == ["ledger-busy"]
        assert 0.9 < waited < 30  # it waited for the lock, then gave up instead of hanging
    finally:
        holder.close()
    with Ledger(_as(owner, "ada")) as ledger:  # the lock released, writes go through again
        workflow.set_role(ledger, ledger.actor(), "tom", "pm", grant=True)


def test_a_token_subject_is_recorded_beside_the_service_role(firm_pg: tuple[str, str]) -> None:
    owner, _ = firm_pg
    with Ledger(_as(owner, "ada")) as ledger:
        workflow.set_role(ledger, ledger.actor(), "tom", "service", grant=True)
    with Ledger(_as(owner, "tom")) as ledger:
        subject = Actor.of("pam.lee", "token", service="tom")
        with pytest.raises(RefusedError) as caught:  # the subject holds no role yet
            workflow.set_role(ledger, subject, "x", "pm", grant=True)
        assert caught.value.codes == ["role-required"]
        spoofed = Actor.of("pam.lee", "token", service="ada")
        with pytest.raises(RefusedError) as caught:
            workflow.set_role(ledger, spoofed, "x", "pm", grant=True)
        assert caught.value.codes == ["actor-not-authenticated"]
    with Ledger(_as(owner, "ada")) as ledger:
        event = workflow.set_role(ledger, ledger.actor(), "pam.lee", "admin", grant=True)
    with Ledger(_as(owner, "tom")) as ledger:
        granted = workflow.set_role(ledger, Actor.of("pam.lee", "token", service="tom"), "x", "pm",
                                    grant=True)
    assert (granted.actor, granted.source, granted.service) == ("pam.lee", "token", "tom")
    assert event.source == "database-role" and event.service is None
    with Ledger(_as(owner, "examiner")) as ledger, ledger.read() as session:
        assert verify(session).ok


def test_concurrent_writers_never_wait_forever(firm_pg: tuple[str, str]) -> None:
    """Two writers at once: one waits its turn (well within the timeout) and both succeed."""
    owner, _ = firm_pg
    errors: list[BaseException] = []

    def grant(user: str) -> None:
        try:
            with Ledger(_as(owner, "ada")) as ledger:
                workflow.set_role(ledger, ledger.actor(), user, "pm", grant=True)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=grant, args=(name,)) for name in ("p1", "p2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with Ledger(_as(owner, "examiner")) as ledger:
        users = workflow.list_users(ledger)
    assert users["p1"] == users["p2"] == {"pm"}


def test_writers_keep_idempotency_rows_but_create_no_table_and_readers_change_nothing(
        firm_pg: tuple[str, str]) -> None:
    """The service's retry records are the one table writers may change; its schema is the owner's."""
    owner, _ = firm_pg
    with _raw(_as(owner, "tom")) as conn:
        conn.execute("INSERT INTO fairalloc_idempotency (key, fingerprint, reserved_at) VALUES ('k', 'f', 1)")
        conn.execute("UPDATE fairalloc_idempotency SET status = 200, body = 'x' WHERE key = 'k'")
        conn.execute("DELETE FROM fairalloc_idempotency WHERE key = 'k'")
        for statement in ("CREATE TABLE scratch (n integer)", "DROP TABLE fairalloc_idempotency",
                          "ALTER TABLE fairalloc_idempotency ADD COLUMN n integer",
                          "UPDATE merkle_nodes SET hash = ''"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with _raw(_as(owner, "examiner")) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO fairalloc_idempotency (key, fingerprint, reserved_at) VALUES ('k', 'f', 1)")
    with Ledger(_as(owner, "examiner")) as ledger, ledger.read() as session:
        assert verify(session).ok


def split_at_0003(owner: str, writers: list[str], readers: list[str]) -> None:
    """Migrate the empty database at ``owner`` to revision 0003 only, and set up the role split
    as ``ledger roles`` made it then (before the idempotency table existed)."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    import fairalloc.ledger.store as store
    from fairalloc.ledger.roles import role_statements
    from fairalloc.ledger.store import resolve_url

    engine = create_engine(resolve_url(owner))
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(Path(store.__file__).parent / "migrations"))
        config.attributes["connection"] = conn
        command.upgrade(config, "0003")
        for statement in role_statements(writers, readers):
            if "fairalloc_idempotency" not in statement:
                conn.exec_driver_sql(statement)
    engine.dispose()


def test_a_ledger_split_before_migration_0004_is_migrated_by_its_owner_for_its_writers(
        pg_server: str) -> None:
    """An existing ledger at 0003 with the role split of its time: a writer cannot migrate it (it
    creates no table), the owner can, and the migration grants the writers the new table."""
    owner = pgcluster.create_database(pg_server)
    split_at_0003(owner, ["ada"], ["examiner"])
    with pytest.raises(LedgerError) as caught:
        Ledger(_as(owner, "ada"))
    assert caught.value.codes == ["ledger-database-error"]
    with Ledger(owner) as ledger:
        workflow.initialise(ledger, ledger.actor(), "ada")
    with _raw(_as(owner, "ada")) as conn:
        conn.execute("INSERT INTO fairalloc_idempotency (key, fingerprint, reserved_at) VALUES ('k', 'f', 1)")
    with Ledger(_as(owner, "examiner")) as ledger, ledger.read() as session:
        assert verify(session).ok
