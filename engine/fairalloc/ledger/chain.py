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
from decimal import Decimal
from json.encoder import encode_basestring_ascii as _quote
from typing import Any, NamedTuple

import msgspec

from fairalloc.errors import Diagnostic, LedgerError, Location

GENESIS = "0" * 64
"""The ``prev_hash`` of the first event of every ledger."""


def _default(value: object) -> object:
    """JSON fallback: decimals are written as plain decimal strings."""
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable in a ledger payload")


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_default)
# One encoder for every payload: building one per call costs as much as encoding a small payload.

_FAST = msgspec.json.Encoder(order="sorted")
_FLOAT = object()  # equal to nothing: a decoded float makes the round trip below fail
_ROUND_TRIP = msgspec.json.Decoder(float_hook=lambda _text: _FLOAT)


def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value``: sorted keys, compact, ASCII.

    Quantities and prices reach the ledger as integers or decimal strings (the trade contract
    allows nothing else). A free account attribute may be a JSON number with a fraction; Python
    writes such a float as its shortest round-trip repr, so its text, and the hash, are stable.

    The text is that of ``json.dumps(value, sort_keys=True, separators=(",", ":"))`` (decimals
    as plain decimal strings). Most payloads are objects, arrays, ASCII strings without escapes,
    integers, booleans and nulls, for which msgspec writes the same bytes several times faster;
    its text is taken only when it is ASCII with no backslash escape or DEL and decodes back to
    a value equal to ``value`` with no float in it (a decimal, tuple, date or other type would
    decode to something else, and msgspec writes floats and escapes differently). Everything
    else, and whatever msgspec refuses, is written by the standard encoder, as before.
    """
    try:
        text = _FAST.encode(value)
    except (TypeError, ValueError, OverflowError, RecursionError, msgspec.MsgspecError):
        return _ENCODER.encode(value)
    if text.isascii() and b"\\" not in text and b"\x7f" not in text and _ROUND_TRIP.decode(text) == value:
        return text.decode("ascii")
    return _ENCODER.encode(value)


class Event(NamedTuple):
    """One recorded event as stored: the chained fields plus its own hash.

    A tuple in column order, so rows fetched straight from the database driver can be checked
    without building objects (see ``verify``). The last three fields say how the actor was
    authenticated (see :mod:`fairalloc.ledger.identity`): ``source`` (``os-user``,
    ``database-role``, ``token``), ``service`` (for a token, the authenticated process that
    vouches for its subject) and ``on_behalf_of`` (a name the caller gave, never checked).
    Events recorded before these existed hold None in all three."""

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
    source: str | None = None
    service: str | None = None
    on_behalf_of: str | None = None

    def data(self) -> Any:
        """The payload parsed back into JSON values.

        The engine only stores JSON; a payload that is not (the file was edited outside the
        ledger) is reported as a database error naming the event, never a crash."""
        try:
            return json.loads(self.payload)
        except (TypeError, ValueError):
            raise LedgerError(Diagnostic(
                "ledger-database-error", f"event {self.seq} ({self.kind}) holds a payload that is not JSON",
                Location(pointer=f"/events/{self.seq}"),
                "the database was changed outside fairalloc: run fairalloc ledger verify")) from None


def event_canonical(
    seq: int,
    recorded_at: str,
    actor: str,
    kind: str,
    order_id: str | None,
    key: str | None,
    topic: str | None,
    payload: str,
    source: str | None = None,
    service: str | None = None,
    on_behalf_of: str | None = None,
) -> str:
    """The canonical JSON text of an event (without its hashes); ``payload`` is canonical text.

    The authentication fields (``source``, ``service``, ``on_behalf_of``) appear only when set,
    so an event recorded before they existed keeps its canonical form and its hash."""
    # One f-string: the hot path of both append and verify.
    null = "null"
    behalf = "" if on_behalf_of is None else ',"on_behalf_of":' + _quote(on_behalf_of)
    vouched = "" if service is None else ',"service":' + _quote(service)
    how = "" if source is None else ',"source":' + _quote(source)
    return (
        f'{{"actor":{_quote(actor)},"key":{null if key is None else _quote(key)},'
        f'"kind":{_quote(kind)}{behalf},"order_id":{null if order_id is None else _quote(order_id)},'
        f'"payload":{payload},"recorded_at":{_quote(recorded_at)},"seq":{seq}{vouched}{how},'
        f'"topic":{null if topic is None else _quote(topic)}}}'
    )


def link_hash(prev_hash: str, canonical: str) -> str:
    """The chained hash: it covers the previous event's hash and this event's canonical form."""
    # The engine writes ASCII only; text edited outside it may be anything, and must only
    # fail to match (UTF-8 is ASCII for ASCII text, so recorded hashes are unchanged).
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode("utf-8", "surrogatepass")).hexdigest()


def recompute(event: tuple[Any, ...]) -> str:
    """The hash an event (an :class:`Event` or a raw row in its column order) should carry."""
    e = event
    try:
        return link_hash(e[8], event_canonical(e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7], *e[10:13]))
    except TypeError:  # a field stored by hand as a BLOB (bytes): it cannot match, and must not crash
        e = tuple(repr(value) if isinstance(value, bytes) else value for value in e)
        return link_hash(e[8], event_canonical(e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7], *e[10:13]))
