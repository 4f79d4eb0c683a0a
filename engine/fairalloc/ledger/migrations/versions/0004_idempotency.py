"""The service's idempotency keys: a retried request is answered as the first one was.

Revision ID: 0004
Revises: 0003

``fairalloc serve`` keeps each ``Idempotency-Key`` here (scoped digest, request fingerprint, the
stored answer), so every process serving one ledger honours the keys of all the others. The table
sits beside the events and is no part of the chain: nothing in it is evidence, and ``ledger
verify`` neither reads nor trusts it. The schema is created here, by whoever migrates the ledger
(its owner), never by the service at run time: the service's writer role may change rows of this
table only. On PostgreSQL the migration grants ``fairalloc_writer`` what the service needs if the
role split already exists (``ledger roles`` grants it too, for a split made later).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fairalloc.ledger.roles import IDEMPOTENCY_GRANT, WRITER

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fairalloc_idempotency",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("media_type", sa.String(100), nullable=True),
        sa.Column("body", sa.LargeBinary, nullable=True),
        sa.Column("reserved_at", sa.Float, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("REVOKE ALL ON fairalloc_idempotency FROM PUBLIC")
        op.execute(f"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{WRITER}') THEN "
                   f"{IDEMPOTENCY_GRANT}; END IF; END $$")


def downgrade() -> None:
    raise NotImplementedError("the ledger is a system of record; its history is never dropped")
