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
* triggers refuse UPDATE, DELETE (and TRUNCATE on PostgreSQL): history is append-only.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

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

SCHEMA_REVISION = "0002"
"""The Alembic head revision this code expects; opening a ledger migrates it up to here."""
