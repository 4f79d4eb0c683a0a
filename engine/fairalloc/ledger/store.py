"""Opening a ledger and appending events: each write atomic, one writer at a time.

A :class:`Ledger` is opened from a database URL — a file path or ``sqlite:///path`` for the
embedded default, ``postgresql://…`` for a server shared by many engine processes — and migrates
its schema to the revision this code expects. Every write goes through :meth:`Ledger.write`, a
transaction that first takes the ledger's write lock (SQLite ``BEGIN IMMEDIATE``; a PostgreSQL
transaction-scoped advisory lock), then reads the chain head and the database server's clock.
Everything a workflow step checks and everything it appends happens inside that one transaction:
either all of its events are committed, linked to the head it read, or none is. On PostgreSQL,
writes made at once by threads of one process share a transaction and its one durable commit,
each under its own savepoint (group commit: see :meth:`Ledger.write`).

Who writes is established here, not by the caller (see :mod:`fairalloc.ledger.identity`): on
SQLite the operating-system user of this process, on PostgreSQL the connected role, which the
INSERT itself records as ``session_user``. An event whose actor is not that identity (or, for a
token subject, whose vouching service is not) is refused before anything is written. On
PostgreSQL the engine also refuses to write as the owner of the events table or as a superuser —
either could drop the triggers that keep history append-only — unless the ledger was opened with
``test_database=True``, which says it is a throwaway test database.

No writer waits forever: a write that cannot get the lock within ``lock_timeout`` seconds (SQLite
busy timeout; PostgreSQL ``lock_timeout``), or whose statement runs longer than
``statement_timeout`` (PostgreSQL), fails with ``ledger-busy`` and writes nothing.
"""

from __future__ import annotations

import os
import select as selectmodule
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, SQLAlchemyError

from fairalloc.errors import Diagnostic, LedgerError, Location, RefusedError
from fairalloc.ledger.chain import GENESIS, Event, canonical_json, event_canonical, link_hash
from fairalloc.ledger.identity import Actor, Source, os_user
from fairalloc.ledger.schema import SCHEMA_REVISION, events
from fairalloc.names import NameProblem, normalise

DEFAULT_URL = "sqlite:///fairalloc-ledger.db"
"""Where the ledger lives when neither ``--ledger`` nor ``FAIRALLOC_LEDGER`` says otherwise."""

DEFAULT_LOCK_TIMEOUT = 10.0
"""Seconds a writer waits for the ledger's lock before it fails with ``ledger-busy``."""

DEFAULT_STATEMENT_TIMEOUT = 60.0
"""Seconds one PostgreSQL statement of a write may run before it is cancelled (``ledger-busy``)."""

_LOCK_KEY = 0x46414952  # "FAIR": the PostgreSQL advisory lock that serialises ledger writers

GROUP_LIMIT = 32
"""The most writes one PostgreSQL transaction of a process carries (see :meth:`Ledger.write`)."""

_REGISTRY_KINDS = frozenset({"user.role_granted", "user.role_revoked", "policy.published"})
"""Kinds whose append changes what :meth:`Session.remember` may have remembered."""

_T = TypeVar("_T")


def resolve_url(text_url: str | None) -> str:
    """The SQLAlchemy URL for a user's ledger location (a path, or a database URL)."""
    raw = text_url or os.environ.get("FAIRALLOC_LEDGER") or DEFAULT_URL
    if "://" not in raw:
        return f"sqlite:///{Path(raw).expanduser().resolve()}"
    for prefix in ("postgresql://", "postgres://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


def _unreachable(url: str, error: Exception) -> LedgerError:
    shown = make_url(url).render_as_string(hide_password=True)
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return LedgerError(
        Diagnostic(
            "ledger-unreachable",
            f"cannot open the ledger at {shown}: {reason}",
            hint="check --ledger / FAIRALLOC_LEDGER and that the database server is running",
        )
    )


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append. ``key`` makes it unique (e.g. one entry per order); ``topic`` groups.
    ``actor`` must be the identity the store authenticated (see :meth:`Session.check_actor`)."""

    kind: str
    actor: Actor
    payload: Any
    order_id: str | None = None
    key: str | None = None
    topic: str | None = None


_COLUMNS = (
    events.c.seq,
    events.c.recorded_at,
    events.c.actor,
    events.c.kind,
    events.c.order_id,
    events.c.key,
    events.c.topic,
    events.c.payload,
    events.c.prev_hash,
    events.c.hash,
    events.c.source,
    events.c.service,
    events.c.on_behalf_of,
)


_NAMES = ("seq, recorded_at, actor, kind, order_id, key, topic, payload, prev_hash, hash, "
          "source, service, on_behalf_of")
_INSERT_SQLITE = f"INSERT INTO events ({_NAMES}) VALUES ({', '.join('?' * 13)})"
# PostgreSQL: the database records the authenticated role itself, in the INSERT: the actor's
# column (or, for a token subject, the vouching service's) is session_user, never a parameter.
_PG_VALUES = ["%s"] * 13
_INSERT_PG_ROLE = (f"INSERT INTO events ({_NAMES}) VALUES "
                   f"({', '.join(_PG_VALUES[:2] + ['session_user'] + _PG_VALUES[3:])})")
_INSERT_PG_TOKEN = (f"INSERT INTO events ({_NAMES}) VALUES "
                    f"({', '.join(_PG_VALUES[:11] + ['session_user'] + _PG_VALUES[12:])})")
_PG_CLOCK = "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
_PG_HEAD = f"SELECT {_NAMES} FROM events ORDER BY seq DESC LIMIT 1"
# A PostgreSQL write starts in one round trip: its time limits, the lock, then the head and the
# clock (a migration takes the lock only: the table may not exist yet).
_PG_LOCK = ("SET LOCAL lock_timeout = {lock}; SET LOCAL statement_timeout = {statement}; "
            f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
_PG_START = f"; {_PG_HEAD}; {_PG_CLOCK}"
_PG_STEP = "SAVEPOINT fairalloc_write_{step}; " + _PG_CLOCK  # each write of a group its own savepoint


@dataclass(frozen=True, slots=True)
class Identity:
    """Who this connection is, as the database (or the operating system) establishes it.

    ``name`` is normalised; ``privileged`` says the PostgreSQL role owns the events table or is
    a superuser (always False on SQLite, where file permissions are the only privilege)."""

    name: str
    source: Source
    privileged: bool


_TEXT_FIELDS = tuple(name.strip() for name in _NAMES.split(","))[1:]


def _event(row: Sequence[Any]) -> Event:
    """An :class:`Event` from a stored row, every field but ``seq`` text or null.

    SQLite stores what it is given: a field written by hand as a BLOB or a number (the triggers
    dropped) must be reported by the readers, as ``verify`` reports it, not crash them."""
    seq = row[0]
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise _mistyped(seq, "seq", seq)
    for name, value in zip(_TEXT_FIELDS, row[1:]):
        if value is not None and type(value) is not str:
            raise _mistyped(seq, name, value)
    return Event(seq, *row[1:])


def _mistyped(seq: object, field: str, value: object) -> LedgerError:
    return LedgerError(Diagnostic(
        "ledger-database-error",
        f"event {seq!r} holds {type(value).__name__} in '{field}', which the ledger writes only as text: "
        "the database was changed outside fairalloc",
        Location(pointer=f"/events/{seq}/{field}"), hint="run: fairalloc ledger verify"))


def _driver_rows(conn: Connection, sql: str, params: Sequence[Any] | None = None) -> Any:
    """A PostgreSQL statement on the driver's cursor (its ``%s`` parameters bound, and prepared
    once it recurs), without SQLAlchemy's per-statement work: the write path's hot statements.
    Driver errors are raised as SQLAlchemy's, as every other query's are."""
    dbapi = conn.dialect.loaded_dbapi
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        cursor.execute(sql, params)
    except dbapi.Error as error:
        lost = conn.dialect.is_disconnect(error, raw, cursor)
        if lost:
            conn.invalidate(error)
        raise DBAPIError.instance(sql, params, error, dbapi.Error, connection_invalidated=lost) from error
    return cursor


def identity_of(conn: Connection) -> Identity:
    """The authenticated identity of ``conn``: the OS user (SQLite) or the connected role."""
    if conn.dialect.name != "postgresql":
        return Identity(os_user(), "os-user", False)
    row = conn.exec_driver_sql(
        "SELECT session_user::text, (SELECT rolsuper FROM pg_roles WHERE rolname = session_user), "
        "pg_has_role(session_user, (SELECT relowner FROM pg_class WHERE oid = 'events'::regclass), "
        "'MEMBER')"
    ).one()
    role = str(row[0])
    try:
        name = normalise(role)
    except NameProblem as problem:
        raise RefusedError(Diagnostic("actor-role-name", f"the database role {role!r} is not a "
                                      f"usable name: {problem}")) from problem
    if name != role:
        raise RefusedError(Diagnostic(
            "actor-role-name",
            f"the database role {role!r} is not in normal form ({name!r}): the ledger compares "
            "names after normalising them, so a role must be named in that form",
            hint="create roles with lower-case names (CREATE ROLE \"tom.kim\" LOGIN)"))
    return Identity(name, "database-role", bool(row[1]) or bool(row[2]))


class Session:
    """One transaction on the ledger: queries, and (in a write session) appends."""

    def __init__(self, conn: Connection, *, writable: bool, identity: Identity | None = None,
                 test_database: bool = False,
                 start: tuple[Sequence[Any] | None, str] | None = None) -> None:
        """``start``: the head row and the clock a PostgreSQL write read as it took the lock."""
        self._conn = conn
        self.writable = writable
        self.identity = identity
        self.test_database = test_database
        self.broken = False  # a grouped write's savepoint could not be rolled back to
        self._step = False  # a grouped write begun whose savepoint and clock are not yet read
        self._steps = 0  # grouped writes begun in this transaction
        self._postgres = conn.dialect.name == "postgresql"
        self._head: Event | None = None
        self._now: str | None = None
        self._memo: dict[Any, Any] = {}
        if writable:
            if start is not None:
                self._head = None if start[0] is None else _event(start[0])
                self._now = self._clock(start[1])
            else:
                self._head = self.head()
                raw = conn.exec_driver_sql("SELECT strftime('%Y-%m-%dT%H:%M:%f','now')").scalar_one()
                self._now = self._clock(str(raw))

    @property
    def conn(self) -> Connection:
        """The transaction's connection. In a grouped write, asking for it starts the write's
        savepoint first (:meth:`begin_step`), so that whatever is done on it is the write's own."""
        if self._step:
            self._begin()
        return self._conn

    @property
    def now(self) -> str:
        """The time this write is recorded at: the database server's clock."""
        if self._step:
            self._begin()
        if self._now is None:
            raise RuntimeError("only a write session records events")  # a defect, not a user error
        return self._now

    def _clock(self, raw: str) -> str:
        """Server time ``raw`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; never before the chain head's."""
        whole, _, fraction = raw.partition(".")
        now = f"{whole}.{(fraction + '000000')[:6]}Z"
        # A clock stepped back must not make the record look reordered: time never decreases.
        if self._head is not None and self._head.recorded_at > now:
            return self._head.recorded_at
        return now

    def _rows(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        if not self._step:
            return _driver_rows(self._conn, sql, params)
        # A grouped write's first statement: its savepoint and clock go in the same round trip,
        # the statement's parameters bound as literals (a text of several statements takes
        # none). Should the savepoint itself fail, going back to it fails too (:meth:`undo_step`).
        from psycopg import ClientCursor

        self._step = False
        raw: Any = self._conn.connection.dbapi_connection
        bound = ClientCursor(raw).mogrify(sql, params) if params is not None else sql
        cursor = _driver_rows(self._conn, f"{_PG_STEP.format(step=self._steps)}; {bound}")
        cursor.nextset()
        self._now = self._clock(str(cursor.fetchone()[0]))
        cursor.nextset()
        return cursor

    def _begin(self) -> None:
        """The savepoint and clock of a grouped write, in a round trip of their own."""
        self._step = False
        try:
            cursor = _driver_rows(self._conn, _PG_STEP.format(step=self._steps))
        except DBAPIError:
            self.broken = True
            raise
        cursor.nextset()
        self._now = self._clock(str(cursor.fetchone()[0]))

    def begin_step(self) -> Event | None:
        """Start one write of a group sharing this PostgreSQL transaction: a savepoint of its
        own, so that a write that fails takes back its own events only (:meth:`undo_step`), and
        the clock as it starts (never before the head's). Both are read with the write's first
        statement, in its round trip (or on their own, if the write asks for the time or the
        connection first). Returns the head to go back to."""
        self._steps += 1
        self._step = True
        self._now = None
        return self._head

    def undo_step(self, head: Event | None) -> None:
        """Take back the events of the write :meth:`begin_step` started (nothing to take back if
        it ran no statement). A savepoint that cannot be gone back to breaks the transaction."""
        self._head = head
        self._memo.clear()
        if self._step:
            self._step = False
            return
        try:
            _driver_rows(self._conn, f"ROLLBACK TO SAVEPOINT fairalloc_write_{self._steps}")
        except DBAPIError:
            self.broken = True

    def remember(self, key: Any, compute: Callable[[], _T]) -> _T:
        """``compute()``, once per write transaction while no role grant, revocation or policy
        publication is appended in it (the write lock keeps every other writer out, so what it
        read cannot change underneath); computed every time in a read session."""
        if not self.writable:
            return compute()
        if key not in self._memo:
            self._memo[key] = compute()
        found: _T = self._memo[key]
        return found

    def remembered(self, key: Any) -> bool:
        """Whether :meth:`remember` holds ``key`` (it answers without computing)."""
        return key in self._memo

    def stream_batches(self, batch: int = 20_000) -> Iterator[Sequence[Any]]:
        """The whole chain in order as lists of the driver's raw rows, in :class:`Event` column
        order.

        Verification's hot path: rows come in batches from a server-side cursor (PostgreSQL) or
        SQLite's lazy cursor, so memory stays flat, and no row objects are built."""
        raw = self.conn.connection.dbapi_connection
        assert raw is not None
        named = self.conn.dialect.name == "postgresql"
        cursor = raw.cursor(name="fairalloc_verify") if named else raw.cursor()
        try:
            cursor.execute(f"SELECT {_NAMES} FROM events ORDER BY seq")
            while rows := cursor.fetchmany(batch):
                yield rows
        except self.conn.dialect.loaded_dbapi.Error as error:
            raise driver_refused(error) from error
        finally:
            cursor.close()

    def stream_rows(self, batch: int = 20_000) -> Iterator[tuple[Any, ...]]:
        """The whole chain in order, row by row (see :meth:`stream_batches`)."""
        for rows in self.stream_batches(batch):
            yield from rows

    def head(self) -> Event | None:
        """The last event of the chain, or None for an empty ledger."""
        if self._postgres:
            found = self._rows(_PG_HEAD).fetchone()
            return None if found is None else _event(found)
        row = self.conn.execute(select(*_COLUMNS).order_by(events.c.seq.desc()).limit(1)).first()
        return None if row is None else _event(row)

    def query(
        self,
        *,
        order_id: str | None = None,
        kinds: Sequence[str] | None = None,
        topic: str | None = None,
        before_seq: int | None = None,
        topics: Sequence[str] | None = None,
    ) -> list[Event]:
        """Events matching every given filter, in chain order (``topics``: any of them)."""
        if self._postgres:
            where: list[str] = []
            params: list[Any] = []
            for clause, value in (("order_id = %s", order_id), ("kind = ANY(%s)", kinds),
                                  ("topic = %s", topic), ("seq < %s", before_seq),
                                  ("topic = ANY(%s)", topics)):
                if value is not None:
                    where.append(clause)
                    params.append(value if isinstance(value, (str, int)) else list(value))
            sql = f"SELECT {_NAMES} FROM events{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY seq"
            return [_event(row) for row in self._rows(sql, params)]
        stmt = select(*_COLUMNS).order_by(events.c.seq)
        if order_id is not None:
            stmt = stmt.where(events.c.order_id == order_id)
        if kinds is not None:
            stmt = stmt.where(events.c.kind.in_(list(kinds)))
        if topic is not None:
            stmt = stmt.where(events.c.topic == topic)
        if topics is not None:
            stmt = stmt.where(events.c.topic.in_(list(topics)))
        if before_seq is not None:
            stmt = stmt.where(events.c.seq < before_seq)
        return [_event(row) for row in self.conn.execute(stmt)]

    def count(self, *, kinds: Sequence[str]) -> int:
        """How many events of ``kinds`` the ledger holds (counted by the database, not read)."""
        stmt = select(func.count()).select_from(events).where(events.c.kind.in_(list(kinds)))
        return int(self.conn.execute(stmt).scalar_one())

    def by_key(self, key: str) -> Event | None:
        """The event recorded under a unique ``key``, if any."""
        if self._postgres:
            found = self._rows(f"SELECT {_NAMES} FROM events WHERE key = %s", (key,)).fetchone()
            return None if found is None else _event(found)
        row = self.conn.execute(select(*_COLUMNS).where(events.c.key == key)).first()
        return None if row is None else _event(row)

    def by_keys(self, *keys: str) -> dict[str, Event]:
        """The events recorded under any of ``keys``, by key (one query)."""
        if self._postgres:
            rows = self._rows(f"SELECT {_NAMES} FROM events WHERE key = ANY(%s)", (list(keys),))
        else:
            rows = self.conn.execute(select(*_COLUMNS).where(events.c.key.in_(keys)))
        found = [_event(row) for row in rows]
        return {event.key: event for event in found if event.key is not None}

    def latest(self, topic: str) -> Event | None:
        """The most recent event of a topic (e.g. a rotation group), if any."""
        if self._postgres:
            found = self._rows(f"SELECT {_NAMES} FROM events WHERE topic = %s ORDER BY seq DESC LIMIT 1",
                               (topic,)).fetchone()
            return None if found is None else _event(found)
        stmt = select(*_COLUMNS).where(events.c.topic == topic).order_by(events.c.seq.desc())
        row = self.conn.execute(stmt.limit(1)).first()
        return None if row is None else _event(row)

    def check_actor(self, actor: Actor) -> None:
        """Refuse an actor this connection did not authenticate (``actor-not-authenticated``).

        A person or process acts as itself: its name is the session's identity and its source is
        how this backend authenticates (``os-user`` on SQLite, ``database-role`` on PostgreSQL).
        A token subject acts through a service, and that service must be the session's identity;
        whether the service may vouch for subjects is a role (``service``), checked by the
        workflow and by ``verify``."""
        identity = self.identity
        assert identity is not None  # every write session has one
        if actor.source == "token":
            if actor.service != identity.name:
                raise RefusedError(Diagnostic(
                    "actor-not-authenticated",
                    f"a token subject ({actor.name}) is vouched for by service "
                    f"{actor.service or '(none)'}, but this connection is {identity.name}",
                    hint="the service records token subjects under its own identity"))
            return
        if actor.source != identity.source or actor.name != identity.name or actor.service is not None:
            raise RefusedError(Diagnostic(
                "actor-not-authenticated",
                f"{actor.name} ({actor.source}) is not who this connection is: "
                f"{identity.name} ({identity.source})",
                hint="the ledger records the authenticated identity; --user only names on whose "
                     "behalf it acts"))

    def append(self, *new: NewEvent) -> list[Event]:
        """Chain ``new`` onto the head, recorded at :attr:`now`, in this transaction."""
        if not self.writable:
            raise RuntimeError("append needs a write session")  # a defect, not a user error
        made: list[Event] = []
        prev = self._head.hash if self._head is not None else GENESIS
        seq = self._head.seq if self._head is not None else 0
        now = self.now
        checked: Actor | None = None  # a batch usually has one actor: check it once
        for item in new:
            actor = item.actor
            if actor is not checked:
                self.check_actor(actor)
                checked = actor
            seq += 1
            payload = canonical_json(item.payload)
            digest = link_hash(
                prev,
                event_canonical(
                    seq, now, actor.name, item.kind, item.order_id, item.key, item.topic, payload,
                    actor.source, actor.service, actor.on_behalf_of,
                ),
            )
            made.append(
                Event(seq, now, actor.name, item.kind, item.order_id, item.key, item.topic,
                      payload, prev, digest, actor.source, actor.service, actor.on_behalf_of)
            )
            prev = digest
        if not made:
            return []
        try:
            self._insert(made)
        except IntegrityError as error:
            keys = ", ".join(e.key for e in made if e.key)
            raise LedgerError(
                Diagnostic(
                    "ledger-conflict",
                    "the ledger refused the write: it duplicates a record already held "
                    f"({keys or 'no unique key'}) or another writer extended the chain first",
                    hint="see what is recorded with: fairalloc order show ORDER_ID",
                )
            ) from error
        self._head = made[-1]
        if any(e.kind in _REGISTRY_KINDS for e in made):
            self._memo.clear()
        return made

    def _insert(self, made: list[Event]) -> None:
        """Hand the rows to the driver's executemany (batches are the ledger's hot path)."""
        if self.conn.dialect.name != "postgresql":
            self.conn.exec_driver_sql(_INSERT_SQLITE, made)
            return
        # The column PostgreSQL fills with session_user is left out of the parameters; runs of
        # events with the same kind of actor go in one executemany each.
        start = 0
        while start < len(made):
            token = made[start].source == "token"
            end = start
            while end < len(made) and (made[end].source == "token") == token:
                end += 1
            skip = 11 if token else 2
            rows = [row[:skip] + row[skip + 1:] for row in made[start:end]]
            sql = _INSERT_PG_TOKEN if token else _INSERT_PG_ROLE
            if len(rows) == 1:
                self._rows(sql, rows[0])
            else:
                self.conn.exec_driver_sql(sql, rows)
            start = end


class Ledger:
    """A handle on one ledger database. Cheap to keep open; each call opens a short transaction."""

    def __init__(self, url: str | None = None, *, create: bool = True,
                 lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
                 statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
                 test_database: bool = False) -> None:
        """Open (and migrate) the ledger at ``url``. With ``create=False`` a ledger that does not
        exist yet is an error rather than a new empty one: a mistyped path must not look like an
        intact ledger with no events. The CLI creates ledgers only in ``ledger init``.

        ``lock_timeout`` and ``statement_timeout`` (seconds) bound how long a write may wait for
        the lock and run. ``test_database=True`` declares a throwaway test database, on which
        writing as the table's owner or a superuser is allowed; never set it on a real ledger."""
        self.url = resolve_url(url)
        self.lock_timeout = lock_timeout
        self.statement_timeout = statement_timeout
        self.test_database = test_database
        self.engine: Engine = _make_engine(self.url, create=create, lock_timeout=lock_timeout)
        self.backend = self.engine.dialect.name
        self._identity: Identity | None = None
        self._turn = threading.Condition()  # one write at a time of this process (PostgreSQL)
        self._busy = False
        self._waiting = 0
        self._group: _Group | None = None
        self.migrate(create=create)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self, *, writable: bool, session: bool = False) -> Iterator[
            tuple[Connection, tuple[Sequence[Any] | None, str] | None]]:
        """A transaction, holding the write lock if ``writable``; with ``session`` (PostgreSQL)
        the head row and the clock, read in the same round trip as the lock is taken."""
        try:
            conn = self.engine.connect()
        except SQLAlchemyError as error:
            raise _unreachable(self.url, error) from error
        try:
            if writable:
                conn = conn.execution_options(ledger_write=True)
            with conn.begin():
                start: tuple[Sequence[Any] | None, str] | None = None
                if writable and self.backend == "postgresql":
                    sql = _PG_LOCK.format(lock=int(self.lock_timeout * 1000),
                                          statement=int(self.statement_timeout * 1000))
                    cursor = _driver_rows(conn, sql + _PG_START if session else sql)
                    if session:
                        for _ in range(3):  # past the two SETs and the lock, to the head
                            cursor.nextset()
                        head = cursor.fetchone()
                        cursor.nextset()
                        start = (head, str(cursor.fetchone()[0]))
                yield conn, start
        except LedgerError:
            raise
        except DBAPIError as error:
            raise self._mapped(error) from error
        finally:
            conn.close()

    def _mapped(self, error: DBAPIError) -> LedgerError:
        if error.connection_invalidated:
            return _unreachable(self.url, error)
        return _refused(error)

    def _privileged(self, identity: Identity, bootstrap: bool) -> None:
        if identity.privileged and not (bootstrap or self.test_database):
            raise RefusedError(Diagnostic(
                "ledger-privileged-writer",
                f"the database role {identity.name} owns the events table or is a superuser: "
                "the engine does not write as a role that could drop the append-only triggers",
                hint="connect as a writer role (fairalloc ledger roles --writer NAME, run by "
                     "the owner)"))

    @contextmanager
    def write(self, *, bootstrap: bool = False) -> Iterator[Session]:
        """A write holding the ledger lock: committed on success, rolled back on error.

        Refused as the owner or a superuser (``ledger-privileged-writer``) unless this is a test
        database or the write is the ledger's bootstrap at ``init`` (run by the schema's owner).

        On PostgreSQL, writes made at once by several threads of this process share one
        transaction and its one durable commit (group commit): each runs in turn under its own
        savepoint — a write that fails takes back its own events and fails alone — and each
        returns only once the transaction has committed (if the commit fails, every write in it
        fails). A transaction carries at most :data:`GROUP_LIMIT` writes and commits as soon as
        no other write is waiting. A write waits at most ``lock_timeout`` for its turn."""
        if self.backend != "postgresql" or bootstrap:
            with self._transaction(writable=True, session=True) as (conn, start):
                identity = self._identity or identity_of(conn)
                self._identity = identity
                self._privileged(identity, bootstrap)
                yield Session(conn, writable=True, identity=identity, test_database=self.test_database,
                              start=start)
            return
        group = self._take_turn()
        failure: BaseException | None = None
        try:
            if group is None:
                group = self._group = _Group.open(self)
            mark = group.session.begin_step()
            try:
                yield group.session
            except BaseException as error:  # this write's own failure: it waits for the commit too
                failure = error
                group.session.undo_step(mark)
            group.size += 1
        finally:
            self._end_turn(group)
        group.committed.wait()
        if group.error is not None:  # each write raises its own copy (the threads raise at once)
            raise LedgerError(group.error.diagnostics) from group.error
        if isinstance(failure, DBAPIError):
            raise self._mapped(failure) from failure
        if failure is not None:
            raise failure

    def _take_turn(self) -> _Group | None:
        """Wait (at most ``lock_timeout``) until no other write of this process is running, and
        return the open transaction to join (None: open one)."""
        with self._turn:
            self._waiting += 1
            free = self._turn.wait_for(lambda: not self._busy, self.lock_timeout)
            self._waiting -= 1
            if not free:
                raise LedgerError(Diagnostic(
                    "ledger-busy", f"the ledger is busy: this process's other writes held it for "
                    f"{self.lock_timeout:g} s", hint="nothing was written; retry"))
            self._busy = True
            return self._group

    def _end_turn(self, group: _Group | None) -> None:
        """Commit the open transaction if no write waits to join it (or it is full or broken),
        then let the next write run."""
        with self._turn:
            finish = group is not None and (group.size >= GROUP_LIMIT or group.session.broken
                                            or self._waiting == 0)
            if finish or group is None:
                self._group = None
        if finish:
            assert group is not None
            group.finish()
        with self._turn:
            self._busy = False
            self._turn.notify()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction: a consistent snapshot of the ledger."""
        with self._transaction(writable=False) as (conn, _):
            yield Session(conn, writable=False, test_database=self.test_database)

    def identity(self) -> Identity:
        """Who this ledger handle writes as (the OS user, or the connected database role)."""
        if self._identity is None:
            with self._transaction(writable=False) as (conn, _):
                self._identity = identity_of(conn)
        return self._identity

    def actor(self, on_behalf_of: str | None = None) -> Actor:
        """The authenticated actor of this handle, optionally naming (unverified) on whose behalf."""
        identity = self.identity()
        return Actor.of(identity.name, identity.source, on_behalf_of=on_behalf_of)

    def migrate(self, *, create: bool = True) -> None:
        """Bring the schema to :data:`SCHEMA_REVISION`, under the write lock (idempotent).

        A ledger already at that revision is recognised without the lock, so opening one never
        waits for a writer."""
        with self._transaction(writable=False) as (conn, _):
            if MigrationContext.configure(conn).get_current_revision() == SCHEMA_REVISION:
                return
        with self._transaction(writable=True) as (conn, _):
            current = MigrationContext.configure(conn).get_current_revision()
            if current == SCHEMA_REVISION:
                return
            if current is None and not create:
                raise _not_initialised(self.url)
            config = Config()
            config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
            config.attributes["connection"] = conn
            try:
                command.upgrade(config, SCHEMA_REVISION)
            except CommandError as error:  # alembic_version names a revision this package lacks
                raise LedgerError(Diagnostic(
                    "ledger-database-error", f"the ledger's schema cannot be migrated: {error}",
                    hint="a newer fairalloc created it, or its alembic_version was changed by hand")) from None


class _Group:
    """One PostgreSQL write transaction that concurrent writes of a process share (see
    :meth:`Ledger.write`): opened by the first, committed by the last, waited for by all."""

    def __init__(self, stack: ExitStack, session: Session) -> None:
        self.stack = stack
        self.session = session
        self.size = 0
        self.error: LedgerError | None = None
        self.committed = threading.Event()

    @staticmethod
    def open(ledger: Ledger) -> _Group:
        stack = ExitStack()
        conn, start = stack.enter_context(ledger._transaction(writable=True, session=True))
        try:
            identity = ledger._identity or identity_of(conn)
            ledger._identity = identity
            ledger._privileged(identity, False)
        except BaseException:
            stack.close()  # nothing was written: commits nothing, and frees the connection
            raise
        return _Group(stack, Session(conn, writable=True, identity=identity,
                                     test_database=ledger.test_database, start=start))

    def finish(self) -> None:
        """Commit (roll back if a savepoint was lost) and wake every write waiting on it."""
        try:
            if self.session.broken:
                self.error = LedgerError(Diagnostic(
                    "ledger-database-error", "the ledger database lost a write's savepoint: "
                    "nothing in its transaction was written", hint="retry"))
                self.stack.__exit__(LedgerError, self.error, None)
            else:
                self.stack.close()
        except LedgerError as error:
            self.error = error
        finally:
            self.committed.set()


def _not_initialised(url: str) -> LedgerError:
    shown = make_url(url).render_as_string(hide_password=True)
    return LedgerError(
        Diagnostic(
            "ledger-not-initialised",
            f"there is no ledger at {shown}",
            hint="create one with: fairalloc ledger init --admin NAME (or check --ledger)",
        )
    )


def driver_refused(error: Exception) -> LedgerError:
    """What a read straight from the driver's cursor (outside SQLAlchemy) could not do: the events
    table or a column of it is gone, or (SQLite) a text was stored that is not UTF-8 — a file
    changed outside the ledger, reported rather than crashed on."""
    message = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return LedgerError(Diagnostic("ledger-database-error", f"the ledger database refused the operation: {message}",
                                  hint="the database was changed outside fairalloc, so its events cannot be read: "
                                       "restore it from a copy kept elsewhere"))


def _refused(error: DBAPIError) -> LedgerError:
    message = str(error.orig).strip().splitlines()[0] if error.orig is not None else str(error)
    state = getattr(error.orig, "sqlstate", None)
    if state in ("55P03", "57014") or "database is locked" in message:
        return LedgerError(Diagnostic(
            "ledger-busy", f"the ledger is busy: another session holds its lock ({message})",
            hint="nothing was written; retry, or find the session holding the ledger's lock"))
    if "append-only" in message:
        code = "ledger-append-only"
    elif "connected role" in message:
        code = "ledger-actor-not-session-user"
    else:
        code = "ledger-database-error"
    return LedgerError(Diagnostic(code, f"the ledger database refused the operation: {message}"))


def _make_engine(url: str, *, create: bool, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and explicit BEGIN IMMEDIATE."""
    try:
        parsed = make_url(url)
    except SQLAlchemyError as error:
        raise LedgerError(
            Diagnostic("ledger-bad-url", f"not a database URL: {url}", Location(file=url))
        ) from error
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            if not create and not Path(parsed.database).exists():
                raise _not_initialised(url)
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": lock_timeout})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # Python's sqlite3 would open transactions lazily; the ledger opens them itself.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")
            # REPLACE then fires DELETE triggers too (the INSERT trigger refuses it first).
            cursor.execute("PRAGMA recursive_triggers=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # A writer takes the write lock up front, so its reads and checks see the final head.
            immediate = conn.get_execution_options().get("ledger_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(url, pool_size=2, max_overflow=2)

        @event.listens_for(engine, "checkout")
        def _checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            # A pooled connection the server has closed (restarted, or ended the backend) is
            # replaced before use. An idle connection has nothing to read unless the server
            # has said something since — its close, or the error it sent before — so a
            # zero-timeout poll of its socket tells, without the round trip of a ping.
            if _closed_by_server(dbapi_connection):
                raise DisconnectionError("the database server closed this pooled connection")

        return engine
    raise LedgerError(
        Diagnostic(
            "ledger-bad-url",
            f"unsupported ledger database {parsed.get_backend_name()!r}",
            hint="use a file path, sqlite:///PATH or postgresql://USER@HOST:PORT/DB",
        )
    )


def _closed_by_server(connection: Any) -> bool:
    """Whether an idle psycopg connection is closed, broken, or has something to read (which,
    idle, only the server's goodbye can be)."""
    if connection.closed or connection.broken:
        return True
    fd = connection.pgconn.socket
    if hasattr(selectmodule, "poll"):
        poll = selectmodule.poll()
        poll.register(fd, selectmodule.POLLIN | selectmodule.POLLPRI)
        return bool(poll.poll(0))
    return bool(selectmodule.select([fd], [], [], 0)[0])
