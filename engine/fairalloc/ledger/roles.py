"""``ledger roles``: the PostgreSQL role split that makes append-only hold against the engine.

Three kinds of role, so that no role the engine writes with could undo history:

* the **owner** — the role that ran ``ledger init`` (which creates the schema): owns the events
  table, its triggers and their functions; the engine refuses to write as it (or as a superuser);
* ``fairalloc_writer`` — ``SELECT`` and ``INSERT`` on ``events`` and ``merkle_nodes``, and the
  rows of ``fairalloc_idempotency`` (the service's retry records, no part of the chain): what each
  person's or service's login role is given, so each event's actor is that login (``session_user``);
* ``fairalloc_reader`` — ``SELECT`` only: examiners, ``verify``, exports and the forensic review.

:func:`setup_roles` creates the two group roles if they do not exist, grants their privileges,
revokes everything else from ``PUBLIC``, and makes each named login a member of its group
(creating the login role, without a password, if it does not exist: the firm's usual
authentication — a password, a certificate, GSSAPI — is then set by its DBA). Run it as the
owner; it is idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence

from fairalloc.errors import Diagnostic, LedgerError, RefusedError
from fairalloc.ledger.store import Ledger
from fairalloc.names import NameProblem, normalise

WRITER = "fairalloc_writer"
READER = "fairalloc_reader"
IDEMPOTENCY_GRANT = f"GRANT SELECT, INSERT, UPDATE, DELETE ON fairalloc_idempotency TO {WRITER}"
"""The service keeps, answers, releases and takes over its ``Idempotency-Key`` rows as the writer;
the table is outside the chain, so changing its rows rewrites no history (migration 0004 runs
this too when the writer group already exists)."""


def _quoted(name: str) -> str:
    """A role name as a quoted identifier; only names already in normal form are accepted, so
    the database's role is exactly the ledger's actor name."""
    try:
        if normalise(name) != name:
            raise NameProblem("name-not-normal", f"{name!r} is not in normal form ({normalise(name)!r})")
    except NameProblem as problem:
        raise RefusedError(Diagnostic("actor-role-name", f"cannot use {name!r} as a role: {problem}",
                                     hint="role names are lower case, without invisible characters")) from problem
    return '"' + name.replace('"', '""') + '"'


def _ensure(name: str, login: bool) -> str:
    literal = "'" + name.replace("'", "''") + "'"
    return (f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {literal}) THEN "
            f"CREATE ROLE {_quoted(name)} {'LOGIN' if login else 'NOLOGIN'}; END IF; END $$")


def role_statements(writers: Sequence[str], readers: Sequence[str]) -> list[str]:
    """The SQL :func:`setup_roles` runs, in order (``ledger roles --print`` shows it)."""
    statements = [_ensure(WRITER, False), _ensure(READER, False),
                  "REVOKE ALL ON events FROM PUBLIC",
                  f"GRANT USAGE ON SCHEMA public TO {WRITER}, {READER}",
                  f"GRANT SELECT, INSERT ON events TO {WRITER}",
                  f"GRANT SELECT ON events TO {READER}",
                  f"GRANT SELECT ON alembic_version TO {WRITER}, {READER}",
                  # the Merkle tree's cache of subtree hashes (checkpoints, proofs): never trusted
                  f"GRANT SELECT, INSERT ON merkle_nodes TO {WRITER}",
                  f"GRANT SELECT ON merkle_nodes TO {READER}",
                  "REVOKE ALL ON fairalloc_idempotency FROM PUBLIC",
                  IDEMPOTENCY_GRANT]
    for group, names in ((WRITER, writers), (READER, readers)):
        for name in names:
            statements += [_ensure(name, True), f"GRANT {group} TO {_quoted(name)}"]
    return statements


def setup_roles(ledger: Ledger, writers: Sequence[str], readers: Sequence[str]) -> list[str]:
    """Create and grant the role split on a PostgreSQL ledger; returns the statements run."""
    if ledger.backend != "postgresql":
        raise LedgerError(Diagnostic(
            "roles-sqlite", "database roles exist only on PostgreSQL; an SQLite ledger's writers are "
            "the operating-system users allowed to write its file",
            hint="limit write access to the file (chmod, a group) instead"))
    statements = role_statements(writers, readers)
    with ledger.engine.connect() as conn, conn.begin():
        for statement in statements:
            conn.exec_driver_sql(statement)
    return statements
