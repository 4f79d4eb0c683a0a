"""Alembic environment: migrations always run on a connection the ledger opened and locked.

The ledger calls Alembic programmatically (``fairalloc.ledger.store.migrate``) inside its own write
transaction, which holds the ledger's lock, so concurrent engine processes opening a fresh
database never race to create the schema.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
