"""``Idempotency-Key``: a retried request is answered as the first one was, and never run twice.

A key is scoped to the caller's subject, the method and the path, so one caller can neither read
nor block another's answers. The request's *fingerprint* is the SHA-256 of its query and body:

- first use of a key: the key is reserved (in flight), the request runs, its answer is stored;
- the same key and fingerprint again: the stored answer (status and body) is returned, marked
  ``Idempotency-Replayed: true``; while the first is still running, 409 ``idempotency-key-in-flight``;
- the same key with another fingerprint: 409 ``idempotency-key-reused``.

Answers with a 5xx status are not stored (the reservation is released), so a retry after a
timeout or an unreachable ledger runs again. With a ledger the keys live in its database (table
``fairalloc_idempotency``, beside the events and not part of the chain), so they hold across
every process serving that ledger; without one, in this process's memory. The table is created by
the ledger's migration 0004 (run by whoever migrates the ledger, its owner on PostgreSQL), never
by the service: its writer role may only change the table's rows. A reservation whose
process died is taken over after ``stale_seconds``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from fairalloc.errors import ExitCode
from fairalloc.ledger.schema import idempotency as _keys
from fairalloc.service.problems import Problem, problem

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored answer: what the first request was answered."""

    status: int
    media_type: str
    body: bytes


def fingerprint(query: str, body: bytes) -> str:
    """What makes two requests "the same": their query string and body bytes."""
    return hashlib.sha256(query.encode("utf-8") + b"\0" + body).hexdigest()


def scope_key(subject: str, method: str, path: str, key: str) -> str:
    """The stored name of a caller's key: a digest of who, what and the key (fixed length, and
    free of the NUL bytes PostgreSQL text cannot hold)."""
    return hashlib.sha256(json.dumps([subject, method, path, key]).encode("utf-8")).hexdigest()


class Store(Protocol):
    def begin(self, key: str, fingerprint: str) -> Stored | None:
        """Reserve ``key`` (None: run the request) or return its stored answer; 409 problems."""

    def finish(self, key: str, answer: Stored) -> None:
        """Store the answer of a reserved key."""

    def release(self, key: str) -> None:
        """Drop a reservation whose request did not produce an answer worth keeping."""


def _reused() -> Problem:
    return problem(409, "idempotency-key-reused", "this Idempotency-Key was used with a different request",
                   hint="use a new key for a new request", exit_code=ExitCode.LEDGER)


def _in_flight() -> Problem:
    return problem(409, "idempotency-key-in-flight", "a request with this Idempotency-Key is still running",
                   hint="retry after it has been answered", exit_code=ExitCode.LEDGER)


class MemoryStore:
    """Keys in this process's memory (a service without a ledger)."""

    def __init__(self, stale_seconds: float = 60.0) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, Stored | None, float]] = {}
        self.stale_seconds = stale_seconds

    def begin(self, key: str, fingerprint: str) -> Stored | None:
        with self._lock:
            entry = self._entries.get(key)
            now = time.monotonic()
            if entry is not None:
                known, answer, reserved = entry
                if known != fingerprint:
                    raise _reused()
                if answer is not None:
                    return answer
                if now - reserved < self.stale_seconds:
                    raise _in_flight()
            self._entries[key] = (fingerprint, None, now)
            return None

    def finish(self, key: str, answer: Stored) -> None:
        with self._lock:
            known, _, reserved = self._entries[key]
            self._entries[key] = (known, answer, reserved)

    def release(self, key: str) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[1] is None:
                del self._entries[key]


class DatabaseStore:
    """Keys in the ledger's database, shared by every process serving it (table
    ``fairalloc_idempotency`` of :mod:`fairalloc.ledger.schema`)."""

    def __init__(self, engine: Engine, stale_seconds: float = 60.0) -> None:
        self.engine = engine
        self.stale_seconds = stale_seconds

    def begin(self, key: str, fingerprint: str) -> Stored | None:
        now = time.time()
        with self.engine.begin() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(_keys.insert().values(key=key, fingerprint=fingerprint, reserved_at=now))
                return None
            except IntegrityError:
                pass
            row = conn.execute(select(_keys).where(_keys.c.key == key)).one()
            if row.fingerprint != fingerprint:
                raise _reused()
            if row.status is not None:
                return Stored(int(row.status), str(row.media_type), bytes(row.body))
            taken = conn.execute(
                update(_keys).where(_keys.c.key == key, _keys.c.status.is_(None),
                                    _keys.c.reserved_at < now - self.stale_seconds).values(reserved_at=now)
            ).rowcount
            if not taken:
                raise _in_flight()
            return None

    def finish(self, key: str, answer: Stored) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(_keys).where(_keys.c.key == key).values(
                status=answer.status, media_type=answer.media_type, body=answer.body))

    def release(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(_keys).where(_keys.c.key == key, _keys.c.status.is_(None)))
