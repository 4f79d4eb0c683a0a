"""Request bodies read within bounds and parsed exactly, as the CLI parses files.

The body is read chunk by chunk and refused (413, ``request-too-large``) as soon as it passes the
size limit — a declared ``Content-Length`` above it is refused before anything is read. The text
must be UTF-8 and is parsed by :func:`fairalloc.trade.parse_json`: numbers with a fraction become
:class:`~decimal.Decimal` (and are then refused where the contract wants strings), duplicate keys
are refused with the CLI's code. Nesting deeper than the limit is refused (422, ``json-too-deep``)
before the text is parsed, so no request can make the parser or validation recurse without bound.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from fairalloc.errors import Diagnostic, FairallocError, InputError, Location
from fairalloc.service.config import Limits
from fairalloc.service.problems import Problem, problem
from fairalloc.trade import parse_json


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
_BRACKET = re.compile(r"[\[\]{}]")


def depth(text: str) -> int:
    """How deeply arrays and objects nest in a JSON text (a scalar is 0), read before parsing.

    String literals are cut out first (brackets inside them do not nest), then the brackets are
    counted; both passes are regular expressions, so a large body costs little and a deep one
    never reaches the parser's recursion. Malformed text is measured as well as it can be and
    left to the parser to refuse."""
    deepest = level = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in "[{":
            level += 1
            if level > deepest:
                deepest = level
        else:
            level -= 1
    return deepest


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
