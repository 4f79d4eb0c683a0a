"""The cache of the events' Merkle tree: hashes of complete perfect subtrees, for fast proofs.

Revision ID: 0003
Revises: 0002

Nothing here is trusted: every proof built from these hashes is checked against a signed
checkpoint, and ``ledger verify --checkpoint`` recomputes the tree from the events alone. A
subtree's hash never changes once all its leaves exist (the events are append-only), so rows are
only ever inserted.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "merkle_nodes",
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the ledger is a system of record; its history is never dropped")
