"""The ledger's tables, as SQLAlchemy Core metadata shared by SQLite and PostgreSQL.

The ledger is one append-only table of hash-chained events: policy publications, role grants,
pre-trade statements, orders, fills, allocations, overrides, reviews and alerts are all events.
Each workflow step reads the events it needs and appends new ones in one transaction, so there is
no second copy of the truth to drift from the chain. The migrations in ``migrations/versions``
create exactly these tables; a test checks the two agree.

Constraints the database enforces on its own, whatever client writes:

* ``seq`` is the primary key and every writer appends ``head + 1``: two writers can never both
  extend the same head, so the chain cannot fork even if the application lock were bypassed;
* ``key`` is unique where set: one statement, one order entry and one allocation per order, one
  fill per fill id, one publication per policy id and version, one review per override;
* triggers refuse UPDATE, DELETE (and TRUNCATE on PostgreSQL): history is append-only;
* on SQLite a trigger refuses an INSERT that does not extend the head or repeats a key, which
  closes ``INSERT OR REPLACE`` (SQLite's REPLACE deletes the conflicting row without firing
  DELETE triggers): no row can be replaced, only a new one appended;
* on PostgreSQL a trigger refuses an INSERT whose actor (or, for a token subject, whose vouching
  service) is not the connected database role, ``session_user``: no one records as someone else.

The trigger texts live here, not only in the migrations, because ``ledger verify`` compares what
the database holds with them: a dropped, disabled or replaced trigger is a finding.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

events = Table(
    "events",
    metadata,
    # On SQLite an INTEGER PRIMARY KEY is the table's rowid: no separate index to maintain.
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("recorded_at", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("order_id", String(200), nullable=True),
    Column("key", String(400), nullable=True, unique=True),
    Column("topic", String(400), nullable=True),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("source", String(32), nullable=True),
    Column("service", String(200), nullable=True),
    Column("on_behalf_of", String(200), nullable=True),
    Index("ix_events_order_id", "order_id"),
    Index("ix_events_kind", "kind"),
    Index("ix_events_topic_seq", "topic", "seq"),
)

merkle_nodes = Table(
    "merkle_nodes",
    metadata,
    # The hash of the perfect subtree of 2**level events from event idx * 2**level + 1: a cache
    # for Merkle proofs (``fairalloc.ledger.tree``), never trusted, only inserted into.
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
)

idempotency = Table(
    "fairalloc_idempotency",
    metadata,
    # ``fairalloc serve``'s Idempotency-Key records (``fairalloc.service.idempotency``): beside the
    # chain, not part of it; rows are reserved, answered, released or taken over when stale.
    Column("key", String(64), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status", Integer, nullable=True),  # NULL while the first request runs
    Column("media_type", String(100), nullable=True),
    Column("body", LargeBinary, nullable=True),
    Column("reserved_at", Float, nullable=False),
)

SCHEMA_REVISION = "0004"
"""The Alembic head revision this code expects; opening a ledger migrates it up to here."""

SQLITE_TRIGGERS: dict[str, str] = {
    "events_no_update": """CREATE TRIGGER events_no_update BEFORE UPDATE ON events
       BEGIN SELECT RAISE(ABORT, 'fairalloc ledger is append-only: UPDATE refused'); END""",
    "events_no_delete": """CREATE TRIGGER events_no_delete BEFORE DELETE ON events
       BEGIN SELECT RAISE(ABORT, 'fairalloc ledger is append-only: DELETE refused'); END""",
    "events_append_at_head": """CREATE TRIGGER events_append_at_head BEFORE INSERT ON events
       WHEN NEW.seq IS NOT coalesce((SELECT max(seq) FROM events), 0) + 1
         OR (NEW.key IS NOT NULL AND EXISTS (SELECT 1 FROM events WHERE key = NEW.key))
       BEGIN SELECT RAISE(ABORT,
         'fairalloc ledger is append-only: an INSERT must extend the head with a new key'); END""",
}
"""Every trigger of the SQLite events table, by name, exactly as created (``sqlite_master.sql``)."""

POSTGRES_FUNCTIONS: dict[str, str] = {
    "fairalloc_append_only": """
       BEGIN
         RAISE EXCEPTION 'fairalloc ledger is append-only: % refused', TG_OP
           USING ERRCODE = 'insufficient_privilege';
       END """,
    "fairalloc_actor_is_session_user": """
       BEGIN
         IF NEW.source = 'token' THEN
           IF NEW.service IS DISTINCT FROM session_user THEN
             RAISE EXCEPTION 'fairalloc ledger: a token event must be vouched for by the connected role %',
               session_user USING ERRCODE = 'insufficient_privilege';
           END IF;
         ELSIF NEW.actor IS DISTINCT FROM session_user OR NEW.service IS NOT NULL THEN
           RAISE EXCEPTION 'fairalloc ledger: an event''s actor must be the connected role %',
             session_user USING ERRCODE = 'insufficient_privilege';
         END IF;
         RETURN NEW;
       END """,
}
"""The bodies (``pg_proc.prosrc``) of the PostgreSQL trigger functions, exactly as created."""

POSTGRES_TRIGGERS: dict[str, tuple[str, str]] = {
    "events_no_update_delete": (
        "BEFORE DELETE OR UPDATE ON events FOR EACH ROW", "fairalloc_append_only"),
    "events_no_truncate": ("BEFORE TRUNCATE ON events FOR EACH STATEMENT", "fairalloc_append_only"),
    "events_actor_is_session_user": (
        "BEFORE INSERT ON events FOR EACH ROW", "fairalloc_actor_is_session_user"),
}
"""Every trigger of the PostgreSQL events table: when it fires (as ``pg_get_triggerdef`` writes
it) and the function it runs."""
