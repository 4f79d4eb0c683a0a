"""Opening a ledger and appending events: one transaction per write, one writer at a time.

A :class:`Ledger` is opened from a database URL — a file path or ``sqlite:///path`` for the
embedded default, ``postgresql://…`` for a server shared by many engine processes — and migrates
its schema to the revision this code expects. Every write goes through :meth:`Ledger.write`, a
transaction that first takes the ledger's write lock (SQLite ``BEGIN IMMEDIATE``; a PostgreSQL
transaction-scoped advisory lock), then reads the chain head and the database server's clock.
Everything a workflow step checks and everything it appends happens inside that one transaction:
either all of its events are committed, linked to the head it read, or none is.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from fairalloc.errors import Diagnostic, LedgerError, Location
from fairalloc.ledger.chain import GENESIS, Event, canonical_json, event_canonical, link_hash
from fairalloc.ledger.schema import SCHEMA_REVISION, events

DEFAULT_URL = "sqlite:///fairalloc-ledger.db"
"""Where the ledger lives when neither ``--ledger`` nor ``FAIRALLOC_LEDGER`` says otherwise."""

_LOCK_KEY = 0x46414952  # "FAIR": the PostgreSQL advisory lock that serialises ledger writers
_HANG_ENV = "FAIRALLOC_TEST_HANG_AFTER_INSERT"


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
    """An event to append. ``key`` makes it unique (e.g. one entry per order); ``topic`` groups."""

    kind: str
    actor: str
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
)


_NAMES = "seq, recorded_at, actor, kind, order_id, key, topic, payload, prev_hash, hash"
_INSERT_QMARK = f"INSERT INTO events ({_NAMES}) VALUES ({', '.join('?' * 10)})"
_INSERT_PYFORMAT = f"INSERT INTO events ({_NAMES}) VALUES ({', '.join(['%s'] * 10)})"


def _event(row: Sequence[Any]) -> Event:
    return Event(int(row[0]), *row[1:])


class Session:
    """One transaction on the ledger: queries, and (in a write session) appends."""

    def __init__(self, conn: Connection, *, writable: bool) -> None:
        self.conn = conn
        self.writable = writable
        self._head: Event | None = None
        self._now: str | None = None
        if writable:
            self._head = self.head()
            self._now = self._server_now()

    @property
    def now(self) -> str:
        """The time this write transaction is recorded at: the database server's clock."""
        if self._now is None:
            raise RuntimeError("only a write session records events")  # a defect, not a user error
        return self._now

    def _server_now(self) -> str:
        """Server time in UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; never before the chain head's."""
        if self.conn.dialect.name == "postgresql":
            sql = "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
            raw = str(self.conn.exec_driver_sql(sql).scalar_one())
        else:
            raw = str(self.conn.exec_driver_sql("SELECT strftime('%Y-%m-%dT%H:%M:%f','now')").scalar_one())
        whole, _, fraction = raw.partition(".")
        now = f"{whole}.{(fraction + '000000')[:6]}Z"
        # A clock stepped back must not make the record look reordered: time never decreases.
        if self._head is not None and self._head.recorded_at > now:
            return self._head.recorded_at
        return now

    def stream_rows(self, batch: int = 20_000) -> Iterator[tuple[Any, ...]]:
        """The whole chain in order as the driver's raw rows, in :class:`Event` column order.

        Verification's hot path: rows come in batches from a server-side cursor (PostgreSQL) or
        SQLite's lazy cursor, so memory stays flat, and no row objects are built."""
        raw = self.conn.connection.dbapi_connection
        assert raw is not None
        named = self.conn.dialect.name == "postgresql"
        cursor = raw.cursor(name="fairalloc_verify") if named else raw.cursor()
        try:
            cursor.execute(f"SELECT {_NAMES} FROM events ORDER BY seq")
            while rows := cursor.fetchmany(batch):
                yield from rows
        finally:
            cursor.close()

    def head(self) -> Event | None:
        """The last event of the chain, or None for an empty ledger."""
        row = self.conn.execute(select(*_COLUMNS).order_by(events.c.seq.desc()).limit(1)).first()
        return None if row is None else _event(row)

    def query(
        self,
        *,
        order_id: str | None = None,
        kinds: Sequence[str] | None = None,
        topic: str | None = None,
        before_seq: int | None = None,
    ) -> list[Event]:
        """Events matching every given filter, in chain order."""
        stmt = select(*_COLUMNS).order_by(events.c.seq)
        if order_id is not None:
            stmt = stmt.where(events.c.order_id == order_id)
        if kinds is not None:
            stmt = stmt.where(events.c.kind.in_(list(kinds)))
        if topic is not None:
            stmt = stmt.where(events.c.topic == topic)
        if before_seq is not None:
            stmt = stmt.where(events.c.seq < before_seq)
        return [_event(row) for row in self.conn.execute(stmt)]

    def by_key(self, key: str) -> Event | None:
        """The event recorded under a unique ``key``, if any."""
        row = self.conn.execute(select(*_COLUMNS).where(events.c.key == key)).first()
        return None if row is None else _event(row)

    def latest(self, topic: str) -> Event | None:
        """The most recent event of a topic (e.g. a rotation group), if any."""
        stmt = select(*_COLUMNS).where(events.c.topic == topic).order_by(events.c.seq.desc())
        row = self.conn.execute(stmt.limit(1)).first()
        return None if row is None else _event(row)

    def append(self, *new: NewEvent) -> list[Event]:
        """Chain ``new`` onto the head, recorded at :attr:`now`, in this transaction."""
        if not self.writable:
            raise RuntimeError("append needs a write session")  # a defect, not a user error
        made: list[Event] = []
        prev = self._head.hash if self._head is not None else GENESIS
        seq = self._head.seq if self._head is not None else 0
        now = self.now
        for item in new:
            seq += 1
            payload = canonical_json(item.payload)
            digest = link_hash(
                prev,
                event_canonical(
                    seq, now, item.actor, item.kind, item.order_id, item.key, item.topic, payload
                ),
            )
            made.append(
                Event(seq, now, item.actor, item.kind, item.order_id, item.key, item.topic,
                      payload, prev, digest)
            )
            prev = digest
        if not made:
            return []
        # Events are tuples in column order and go straight to the driver's executemany:
        # batches are the ledger's hot path.
        rows: list[Event] = made
        sql = _INSERT_PYFORMAT if self.conn.dialect.paramstyle == "pyformat" else _INSERT_QMARK
        hang = os.environ.get(_HANG_ENV)
        try:
            if hang:
                # Test-only: stop inside the transaction after the first insert so a test can kill
                # the process there and check that nothing of the step was committed.
                self.conn.exec_driver_sql(sql, rows[:1])
                Path(hang).write_text(str(os.getpid()))
                time.sleep(600)
                rows = rows[1:]
            if rows:
                self.conn.exec_driver_sql(sql, rows)
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
        return made


class Ledger:
    """A handle on one ledger database. Cheap to keep open; each call opens a short transaction."""

    def __init__(self, url: str | None = None, *, create: bool = True) -> None:
        """Open (and migrate) the ledger at ``url``. With ``create=False`` a ledger that does not
        exist yet is an error rather than a new empty one: a mistyped path must not look like an
        intact ledger with no events. The CLI creates ledgers only in ``ledger init``."""
        self.url = resolve_url(url)
        self.engine: Engine = _make_engine(self.url, create=create)
        self.backend = self.engine.dialect.name
        self.migrate(create=create)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self, *, writable: bool) -> Iterator[Connection]:
        try:
            conn = self.engine.connect()
        except SQLAlchemyError as error:
            raise _unreachable(self.url, error) from error
        try:
            if writable:
                conn = conn.execution_options(ledger_write=True)
            with conn.begin():
                if writable and self.backend == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
                yield conn
        except LedgerError:
            raise
        except DBAPIError as error:
            if error.connection_invalidated:
                raise _unreachable(self.url, error) from error
            raise _refused(error) from error
        finally:
            conn.close()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction holding the ledger lock: commit on success, roll back on error."""
        with self._transaction(writable=True) as conn:
            yield Session(conn, writable=True)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction: a consistent snapshot of the ledger."""
        with self._transaction(writable=False) as conn:
            yield Session(conn, writable=False)

    def migrate(self, *, create: bool = True) -> None:
        """Bring the schema to :data:`SCHEMA_REVISION`, under the write lock (idempotent)."""
        with self._transaction(writable=True) as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            if current == SCHEMA_REVISION:
                return
            if current is None and not create:
                raise _not_initialised(self.url)
            config = Config()
            config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
            config.attributes["connection"] = conn
            command.upgrade(config, SCHEMA_REVISION)


def _not_initialised(url: str) -> LedgerError:
    shown = make_url(url).render_as_string(hide_password=True)
    return LedgerError(
        Diagnostic(
            "ledger-not-initialised",
            f"there is no ledger at {shown}",
            hint="create one with: fairalloc ledger init --admin NAME (or check --ledger)",
        )
    )


def _refused(error: DBAPIError) -> LedgerError:
    message = str(error.orig).strip().splitlines()[0] if error.orig is not None else str(error)
    code = "ledger-append-only" if "append-only" in message else "ledger-database-error"
    return LedgerError(Diagnostic(code, f"the ledger database refused the operation: {message}"))


def _make_engine(url: str, *, create: bool) -> Engine:
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
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # Python's sqlite3 would open transactions lazily; the ledger opens them itself.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # A writer takes the write lock up front, so its reads and checks see the final head.
            immediate = conn.get_execution_options().get("ledger_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_size=2, max_overflow=2, pool_pre_ping=True)
    raise LedgerError(
        Diagnostic(
            "ledger-bad-url",
            f"unsupported ledger database {parsed.get_backend_name()!r}",
            hint="use a file path, sqlite:///PATH or postgresql://USER@HOST:PORT/DB",
        )
    )
