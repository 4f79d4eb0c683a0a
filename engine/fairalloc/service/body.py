"""Request bodies read within bounds and parsed exactly, as the CLI parses files.

The body is read chunk by chunk and refused (413, ``request-too-large``) as soon as it passes the
size limit — a declared ``Content-Length`` above it is refused before anything is read. The text
must be UTF-8 and is parsed by :func:`fairalloc.trade.parse_json`: numbers with a fraction become
:class:`~decimal.Decimal` (and are then refused where the contract wants strings), duplicate keys
are refused with the CLI's code. Nesting deeper than the limit is refused (422, ``json-too-deep``)
before the text is parsed, so no request can make the parser or validation recurse without bound.

A body of ``POST /v1/allocate`` is first offered to :func:`plain_allocation`, which hands the
trade's own text to the library's fast reader (:mod:`msgspec`, in C) instead of building a
dictionary of it first, and a body that is a trade document (the recorded workflow's statement,
entry and fills) to :func:`plain_trade`; a body either cannot clear is read as above, so both
ways answer alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import msgspec
from starlette.requests import Request

from fairalloc.errors import Diagnostic, FairallocError, InputError, Location
from fairalloc.service.config import Limits
from fairalloc.service.problems import Problem, problem
from fairalloc.trade import MAX_CHARS, Trade, keys_written, parse_json, plain_trade_text


async def read_bytes(request: Request, limits: Limits) -> bytes:
    """The raw body, or a 413 problem once it is longer than ``limits.max_body_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise _too_large(limits)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise _too_large(limits)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_body(raw: bytes, limits: Limits) -> Any:
    """Parse a JSON body exactly (see the module docstring); problems carry the CLI's codes."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise problem(400, "json-encoding", f"the body is not UTF-8 (byte {error.start})",
                      hint="send JSON encoded as UTF-8") from None
    if depth(text) > limits.max_depth:
        raise _too_deep(limits)
    try:
        return parse_json(text, "request")
    except FairallocError as error:
        raise Problem.of(error) from None


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # a string literal, escapes included
_NOT_BRACKET = bytes(set(range(256)) - set(b"[]{}"))
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def depth(text: str) -> int:
    """How deeply arrays and objects nest in a JSON text (a scalar is 0), read before parsing.

    String literals are cut out first (brackets inside them do not nest), then the brackets are
    counted; every pass runs in C (a text without backslashes and with its quotes paired is cut
    at its quotes, anything else by a regular expression), so a large body costs little and a
    deep one never reaches the parser's recursion. Malformed text is measured as well as it can
    be and left to the parser to refuse."""
    if "\\" not in text and text.count('"') % 2 == 0:
        outside = "".join(text.split('"')[::2])  # without escapes, every other piece is a string
    else:
        outside = _STRING.sub("", text)
    brackets = outside.encode("utf-8", "surrogatepass").translate(None, _NOT_BRACKET)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def member(body: Any, name: str, *, required: bool = True) -> Any:
    """``body[name]`` of a JSON object body, or a 422 problem pointing at what is missing."""
    if not isinstance(body, dict):
        raise Problem.of(InputError(Diagnostic("request-type", "the request body must be a JSON object",
                                               Location(pointer=""))))
    if name not in body:
        if not required:
            return None
        raise Problem.of(InputError(Diagnostic("request-missing", f"required field '{name}' is missing",
                                               Location(pointer=f"/{name}"))))
    return body[name]


def _too_large(limits: Limits) -> Problem:
    return problem(413, "request-too-large", f"the request body is larger than {limits.max_body_bytes} bytes",
                   hint="split a large batch into several requests")


def _too_deep(limits: Limits) -> Problem:
    return problem(422, "json-too-deep", f"the body nests arrays and objects deeper than {limits.max_depth} levels")


# --- POST /v1/allocate read in one pass ---------------------------------------------------------


class _Envelope(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The members of an allocation request; the values other than the policy are kept as text."""

    policy: str
    trade: msgspec.Raw
    rotation: msgspec.Raw = msgspec.Raw(b"")
    fairness: msgspec.Raw = msgspec.Raw(b"")


_ENVELOPE = msgspec.json.Decoder(_Envelope)


@dataclass(frozen=True, slots=True)
class PlainAllocation:
    """An allocation request read by :func:`plain_allocation`: the policy reference, the trade
    (validated), the trade's own JSON text, and the rotation and fairness states as parsed JSON
    (``None`` when absent or ``null``)."""

    policy: str
    trade: Trade
    trade_text: str
    rotation: Any
    fairness: Any


def plain_allocation(raw: bytes, limits: Limits) -> PlainAllocation | None:
    """The body of ``POST /v1/allocate`` read in one pass, or ``None`` where it must be read the
    general way (:func:`parse_body`, then :func:`member` and :func:`fairalloc.load_trade`).

    The envelope is decoded by :mod:`msgspec` with the trade left as text, and that text goes
    to the library's fast reader (:func:`fairalloc.trade.load_trade` reading a file takes the same
    path). ``None`` is answered for any body that reading would not accept as it stands — not
    UTF-8, too long or too deep, malformed, a member unknown or written twice, a policy
    reference that is not a string, a rotation or fairness state :func:`parse_json` refuses, a
    trade outside the plain form or with a name problem — so every refusal, and every trade the
    plain form does not cover, comes from the general reading and reads as it always has. What
    this accepts, the general reading accepts too, with equal values."""
    if len(raw) > MAX_CHARS:  # a text longer than this is refused (it has at least this many bytes)
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if depth(text) > limits.max_depth:  # first: the decoder nests one call per level
        return None
    try:
        envelope = _ENVELOPE.decode(raw)
    except msgspec.MsgspecError:
        return None
    trade_text = bytes(envelope.trade).decode("utf-8")
    if not (trade_text.startswith("{") and trade_text.endswith("}")):
        return None  # not an object: the general reading says so
    # The keys written outside the trade's text, counted without it: a text starting with '{' and
    # ending with '}' cannot cut a key's quote from its colon, wherever it is found.
    keys = keys_written(text.replace(trade_text, "", 1)) - 2  # less policy and trade
    states: list[Any] = []
    for given in (envelope.rotation, envelope.fairness):
        if not given:
            states.append(None)
            continue
        part = bytes(given).decode("utf-8")
        keys -= 1 + keys_written(part)
        try:
            states.append(parse_json(part, "request"))
        except FairallocError:
            return None
    if keys:  # a member written twice (or a string holding '":')
        return None
    trade = plain_trade_text(trade_text, "trade")
    if trade is None:
        return None
    return PlainAllocation(envelope.policy, trade, trade_text, states[0], states[1])


def plain_trade(raw: bytes, limits: Limits) -> Trade | None:
    """A body that is a trade document in the plain form, read in one pass by the library's fast
    reader (:func:`fairalloc.trade.plain_trade_text`), or ``None`` where the general reading
    (:func:`parse_body`, then :func:`fairalloc.load_trade`) must decide: a body not UTF-8, too
    long or too deep, or a trade outside the plain form or with a name problem. What this
    accepts, the general reading accepts too, with equal values."""
    if len(raw) > MAX_CHARS:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if depth(text) > limits.max_depth:
        return None
    return plain_trade_text(text, "request")
