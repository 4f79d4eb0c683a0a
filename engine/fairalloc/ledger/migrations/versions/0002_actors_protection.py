"""Authenticated actors and append-only inserts.

Adds the columns that say how an event's actor was authenticated (``source``, ``service``,
``on_behalf_of``); on SQLite a trigger that refuses any INSERT not extending the head with a new
key (closing ``INSERT OR REPLACE``); on PostgreSQL a trigger that refuses any INSERT whose actor
is not the connected role. The trigger texts are those of :mod:`fairalloc.ledger.schema`, which
``ledger verify`` compares with the database.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fairalloc.ledger.schema import POSTGRES_FUNCTIONS, SQLITE_TRIGGERS

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("source", sa.String(32), nullable=True))
    op.add_column("events", sa.Column("service", sa.String(200), nullable=True))
    op.add_column("events", sa.Column("on_behalf_of", sa.String(200), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        body = POSTGRES_FUNCTIONS["fairalloc_actor_is_session_user"]
        op.execute("CREATE FUNCTION fairalloc_actor_is_session_user() RETURNS trigger "
                   f"LANGUAGE plpgsql AS $${body}$$")
        op.execute("CREATE TRIGGER events_actor_is_session_user BEFORE INSERT ON events "
                   "FOR EACH ROW EXECUTE FUNCTION fairalloc_actor_is_session_user()")
    else:
        op.execute(SQLITE_TRIGGERS["events_append_at_head"])


def downgrade() -> None:
    raise NotImplementedError("the ledger is a system of record; its history is never dropped")
