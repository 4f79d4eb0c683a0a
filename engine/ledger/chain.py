"""The hash chain: the canonical form of a ledger event and the hash that links it to the last one.

Every event's ``hash`` is ``sha256(prev_hash + "\\n" + canonical)`` in lower-case hex, where
``canonical`` is the event's canonical JSON text (below) and ``prev_hash`` is the hash of the event
before it (:data:`GENESIS` for the first). Changing any recorded byte of an event — its number,
time, actor, kind, order, key or payload — changes its hash, and the next event's ``prev_hash`` no
longer matches: an edit, a deletion or a reordering cannot go unnoticed by ``ledger verify``.

The canonical form is the JSON object of the event's fields with sorted keys, no insignificant
whitespace and ASCII escapes (``json.dumps(obj, sort_keys=True, separators=(",", ":"))``). The
payload is stored as its own canonical text, so the event's canonical form is built by splicing
that text in verbatim: verification never re-serialises the payload, which keeps it fast and
makes any byte change to the stored payload visible.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from json.encoder import encode_basestring_ascii as _quote  # type: ignore[attr-defined]
from typing import Any

GENESIS = "0" * 64
"""The ``prev_hash`` of the first event of every ledger."""


def _default(value: object) -> object:
    """JSON fallback: decimals are written as plain decimal strings, never binary floats."""
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable in a ledger payload")


def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value``: sorted keys, compact, ASCII; floats are refused."""
    _refuse_floats(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_default
    )


def _refuse_floats(value: Any) -> None:
    """Binary floats have no single decimal reading; quantities and prices must be int or text."""
    if isinstance(value, float):
        raise TypeError("binary floats are not allowed in ledger payloads; use int or a string")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_floats(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _refuse_floats(item)


def _opt(value: str | None) -> str:
    return "null" if value is None else str(_quote(value))


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded event as stored: the chained fields plus its own hash."""

    seq: int
    recorded_at: str
    actor: str
    kind: str
    order_id: str | None
    key: str | None
    topic: str | None
    payload: str
    prev_hash: str
    hash: str

    def data(self) -> Any:
        """The payload parsed back into JSON values."""
        return json.loads(self.payload)


def event_canonical(
    seq: int,
    recorded_at: str,
    actor: str,
    kind: str,
    order_id: str | None,
    key: str | None,
    topic: str | None,
    payload: str,
) -> str:
    """The canonical JSON text of an event (without its hashes); ``payload`` is canonical text."""
    return (
        '{"actor":' + _quote(actor)
        + ',"key":' + _opt(key)
        + ',"kind":' + _quote(kind)
        + ',"order_id":' + _opt(order_id)
        + ',"payload":' + payload
        + ',"recorded_at":' + _quote(recorded_at)
        + ',"seq":' + str(seq)
        + ',"topic":' + _opt(topic)
        + "}"
    )


def link_hash(prev_hash: str, canonical: str) -> str:
    """The chained hash: it covers the previous event's hash and this event's canonical form."""
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode("ascii")).hexdigest()


def recompute(event: Event) -> str:
    """The hash ``event`` should carry, given its stored fields and its stored ``prev_hash``."""
    return link_hash(
        event.prev_hash,
        event_canonical(
            event.seq,
            event.recorded_at,
            event.actor,
            event.kind,
            event.order_id,
            event.key,
            event.topic,
            event.payload,
        ),
    )
