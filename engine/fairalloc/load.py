"""Stage 1 — load: YAML text to plain data, remembering where every value came from.

The text goes through PyYAML's event parser (libyaml's, where installed) and this module builds
plain Python values from the events itself, so that

(a) every mapping key and value keeps its ``line:column`` for later stages;
(b) numbers never pass through binary floats (``0.5`` becomes ``Decimal("0.5")``) and stay within
    :func:`fairalloc.numbers.number_problem`'s bounds;
(c) duplicate keys, which YAML loaders would silently overwrite, are refused;
(d) the input is bounded before it can cost anything: the text's length, the nesting depth and
    the number of values are limited (:data:`MAX_CHARS`, :data:`MAX_DEPTH`, :data:`MAX_VALUES`),
    and anchors, aliases and explicit tags are refused, so no alias can expand (the "billion
    laughs") or refer to itself;
(e) a plain scalar means one thing to every reader: it is accepted only when YAML 1.1 (PyYAML,
    this loader's resolver) and YAML 1.2 (ruamel.yaml behind ``fairalloc fmt``, editors and JSON
    Schema tools) read it as the same value. ``yes``, ``on``, ``0777``, ``1_000``, ``1:30`` or
    ``1e3`` written plain are refused with the quoted form as the hint, and so is text made of a
    number's characters (``1.2.3``, ``-_0``), which lenient readers take for a number. :func:`plain_is_text` is
    the same rule for writers (``fmt``).

Later stages address values by their *path* (a tuple of keys and indices) and ask this module
where that path is. Limits are documented in ``docs/policy-language.md#limits``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import os
import re
import stat
from collections.abc import Iterator
from decimal import Decimal
from functools import cached_property
from typing import Any

import msgspec
import yaml
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    NodeEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)

from fairalloc.errors import Code, Diagnostic, FileAccessError, Location, PolicyError
from fairalloc.numbers import MAX_NUMBER_TEXT, number_problem

Path = tuple[str | int, ...]

MAX_CHARS = 4 * 1024 * 1024
"""Characters a YAML document (a policy or a policy test file) may have: 4 MiB of ASCII text."""

MAX_DEPTH = 32
"""Mappings and sequences nested inside each other, the document's top mapping counting as 1."""

MAX_VALUES = 250_000
"""Mappings, sequences and scalars (keys included) in one document."""

MAX_DIAGNOSTICS = 100
"""Problems reported at most from one document; reading stops there."""

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER_11 = yaml.resolver.Resolver()

# The YAML 1.2 core schema (yaml.org/spec/1.2.2, 10.3.2), which ruamel.yaml and editors apply.
_CORE_12: tuple[tuple[str, re.Pattern[str]], ...] = (
    (_NULL, re.compile(r"null|Null|NULL|~|")),
    (_BOOL, re.compile(r"true|True|TRUE|false|False|FALSE")),
    (_INT, re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")),
    (_FLOAT, re.compile(
        r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
    )),
)


# Text made of a number's characters (digits, underscores, points, colons, a sign, an exponent or a
# base prefix) with at least one digit or underscore: readers disagree on what such text is.
_NUMBER_LIKE = re.compile(r"(?=.*[0-9_])[-+]?(?:[0-9_.:]+(?:[eE][-+]?[0-9_]*)?|0[xXoObB][0-9a-fA-F_]*)")


def resolve_11(text: str) -> str:
    """The tag YAML 1.1 (PyYAML) gives the plain scalar ``text``."""
    tag: str = _RESOLVER_11.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return tag


def resolve_12(text: str) -> str:
    """The tag the YAML 1.2 core schema gives the plain scalar ``text``."""
    for tag, pattern in _CORE_12:
        if pattern.fullmatch(text):
            return tag
    return _STR


def _octal_11(text: str) -> bool:
    """Whether YAML 1.1 reads this decimal-looking integer as octal (a leading zero)."""
    digits = text.lstrip("+-")
    return len(digits) > 1 and digits[0] == "0" and digits[1] not in "xX"


def plain_agreement(text: str) -> str | None:
    """The one tag both YAML versions give the plain scalar ``text``, or ``None`` if they differ.

    A date (``2026-01-01``) is a timestamp to YAML 1.1 and text to YAML 1.2; this loader keeps it
    as the date that text names, so both read the same date (a JSON Schema tool sees its text).
    Other timestamps (``2026-01-01 10:00:00``) are an instant to one reader and text to another, and
    so are refused. Integers agree only without a leading zero, which YAML 1.1 reads as octal.
    """
    old, new = resolve_11(text), resolve_12(text)
    if old == new == _STR and _NUMBER_LIKE.fullmatch(text):
        return None  # text to both schemas, a number to lenient readers (ruamel.yaml reads -_0 as 0)
    if old == _TIMESTAMP and new == _STR:
        return _TIMESTAMP if _DATE.fullmatch(text) else None
    if old != new:
        return None
    if old == _INT and _octal_11(text):
        return None
    return old


def plain_is_text(text: str) -> bool:
    """Whether ``text`` written as a plain scalar is read back as this same string by every reader."""
    return plain_agreement(text) == _STR and "\n" not in text and text == text.strip()


class Span(msgspec.Struct, frozen=True):
    """Where a YAML node sits: 0-based marks as PyYAML reports them, plus the node's style."""

    line: int
    column: int
    start: int
    end: int
    style: str | None


class SourceDocument(msgspec.Struct, frozen=True, dict=True):
    """A loaded policy file: its text, its plain data, and the span of every path in it."""

    file: str
    text: str
    data: Any
    spans: dict[Path, Span]
    key_spans: dict[Path, Span]

    @cached_property
    def _line_starts(self) -> list[int]:
        """The index of the first character of every line, for locating an index in O(log n)."""
        return [0] + [match.end() for match in re.finditer("\n", self.text)]

    def locate(self, path: Path, *, key: bool = False) -> Location:
        """The location of the value at ``path`` (or of its key), falling back to the nearest parent."""
        table = self.key_spans if key else self.spans
        probe = path
        while True:
            span = table.get(probe) or self.spans.get(probe)
            if span is not None:
                return Location(self.file, span.line + 1, span.column + 1)
            if not probe:
                return Location(self.file, 1, 1)
            probe = probe[:-1]

    def locate_index(self, index: int) -> Location:
        """The ``file:line:column`` of character ``index`` of the text."""
        line = bisect.bisect_right(self._line_starts, index) - 1
        return Location(self.file, line + 1, index - self._line_starts[line] + 1)

    def locate_in_scalar(self, path: Path, offset: int) -> Location:
        """The location of character ``offset`` of the string value at ``path``.

        Quoting, folding and block indentation change only white space and quote characters, so the
        n-th non-blank character of the value is the n-th non-blank character of the node's raw
        text once the quote or block indicator is skipped. Escapes inside double quotes can shift
        the answer by their length; expressions rarely contain them.
        """
        span = self.spans.get(path)
        value = _get(self.data, path)
        if span is None or not isinstance(value, str):
            return self.locate(path)
        raw = self.text[span.start : span.end]
        skip = 0
        if span.style in ("'", '"'):
            skip = 1
        elif span.style in ("|", ">"):
            newline = raw.find("\n")
            skip = newline + 1 if newline >= 0 else len(raw)
        nth = sum(1 for ch in value[: max(0, offset)] if not ch.isspace())
        count = 0
        index = span.start + skip
        end = span.end
        while index < end:
            ch = self.text[index]
            if not ch.isspace():
                if count == nth:
                    break
                count += 1
            index += 1
        return self.locate_index(min(index, len(self.text)))


def _get(data: Any, path: Path) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


MAX_FILE_CHARS = 64 * 1024 * 1024
"""The most characters any input file is read to (the largest input limit, a trade's)."""


def read_text(path: str, *, limit: int | None = MAX_FILE_CHARS) -> str:
    """Read a UTF-8 text file or raise :class:`FileAccessError` saying why.

    At most ``limit + 1`` characters are read, so that a file of any size costs at most that much
    memory; the caller's parser refuses a text longer than its own limit with its own located error
    (a too-large policy is an invalid policy, not an unreadable file).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            info = os.fstat(fd)
            if stat.S_ISREG(info.st_mode) and (limit is None or info.st_size <= limit):
                # a regular file within the limit in bytes (so in characters): read whole with one
                # system call, and decoded as text mode decodes it, newlines included
                data = os.read(fd, info.st_size + 1)
                if len(data) == info.st_size:
                    text = data.decode("utf-8")
                    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
                os.lseek(fd, 0, os.SEEK_SET)  # it changed meanwhile: read it as any other
            with open(fd, encoding="utf-8", closefd=False) as handle:
                if limit is None:
                    return handle.read()
                # read(limit + 1) sets aside a buffer of that size, which costs a small file more
                # than its reading: read what the file holds (no more characters than bytes), then
                # the rest up to the limit should it have grown meanwhile
                size = info.st_size
                text = handle.read(min(size, limit) + 1)
                if len(text) > size:
                    text += handle.read(limit + 1 - len(text))
                return text
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise FileAccessError(
            Diagnostic(Code.FILE_NOT_FOUND, f"no such file: {path}", Location(path))
        ) from None
    except UnicodeDecodeError as error:
        raise FileAccessError(
            Diagnostic(Code.FILE_NOT_UTF8, f"file is not UTF-8 text ({error.reason})", Location(path))
        ) from None
    except OSError as error:
        raise FileAccessError(
            Diagnostic(Code.FILE_UNREADABLE, f"cannot read file: {error.strerror}", Location(path))
        ) from None


def load_yaml(text: str, file: str = "<policy>") -> SourceDocument:
    """Parse YAML ``text`` into a :class:`SourceDocument`; raise :class:`PolicyError` if it is not
    one document within the limits."""
    if len(text) > MAX_CHARS:
        raise PolicyError(Diagnostic(
            Code.YAML_TOO_LARGE,
            f"the document is longer than {MAX_CHARS:,} characters",
            Location(file, 1, 1),
            "a policy is a page of text; split test cases over several files",
        ))
    builder = _Builder(file)
    try:
        data = builder.document(iter(yaml.parse(text, Loader=_LOADER)))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        location = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        message = error.problem or error.context or "malformed YAML"
        if "nesting depth" in message:  # libyaml's own limit, met while it reads ahead of this builder
            builder.diagnostics.append(Diagnostic(
                Code.YAML_TOO_DEEP, f"mappings and lists nest deeper than {MAX_DEPTH} levels", location,
                "a policy nests a few levels deep; flatten the structure"))
            raise PolicyError(builder.diagnostics) from None
        builder.diagnostics.append(Diagnostic(
            Code.YAML_SYNTAX,
            f"YAML syntax error: {message}",
            location,
            "check indentation and quoting; quote expressions that contain ':' or '#'",
        ))
    except yaml.YAMLError as error:
        builder.diagnostics.append(Diagnostic(Code.YAML_SYNTAX, f"YAML error: {error}", Location(file)))
    except _Stop:
        pass
    if builder.diagnostics:
        raise PolicyError(sorted(builder.diagnostics, key=_position))
    if builder.empty:
        raise PolicyError(Diagnostic(Code.YAML_EMPTY, "the policy file is empty", Location(file, 1, 1)))
    return SourceDocument(file, text, data, builder.spans, builder.key_spans)


def _position(diagnostic: Diagnostic) -> tuple[int, int]:
    return (diagnostic.location.line or 0, diagnostic.location.column or 0)


class _Stop(Exception):
    """Reading cannot go on (a limit is reached); the diagnostics say why."""


def _mark(event: Event) -> Any:
    """An event's start mark (the parser always sets it; the stubs allow ``None``)."""
    assert event.start_mark is not None
    return event.start_mark


def _span(start: Event, end: Event) -> Span:
    assert start.start_mark is not None and end.end_mark is not None
    style = (start.style or None) if isinstance(start, ScalarEvent) else None  # libyaml: "" for plain
    return Span(start.start_mark.line, start.start_mark.column, start.start_mark.index,
                end.end_mark.index, style)


class _Builder:
    """Builds plain values from the parser's events, records each value's span, enforces limits.

    Values are built depth-first while the events arrive; the parser is never asked for more than
    the next event, so a document that breaks a limit is abandoned where it breaks it.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.spans: dict[Path, Span] = {}
        self.key_spans: dict[Path, Span] = {}
        self.diagnostics: list[Diagnostic] = []
        self.values = 0
        self.empty = False

    def _error(self, event: Event, code: Code, message: str, hint: str | None = None) -> None:
        mark = _mark(event)
        self.diagnostics.append(Diagnostic(code, message, Location(self.file, mark.line + 1, mark.column + 1), hint))
        if len(self.diagnostics) >= MAX_DIAGNOSTICS:
            raise _Stop

    def _stop(self, event: Event, code: Code, message: str, hint: str) -> _Stop:
        mark = _mark(event)
        self.diagnostics.append(Diagnostic(code, message, Location(self.file, mark.line + 1, mark.column + 1), hint))
        return _Stop()

    def document(self, events: Iterator[Event]) -> Any:
        """The one document of the stream, or ``None`` with :attr:`empty` set if there is none."""
        assert isinstance(next(events), StreamStartEvent)
        event = next(events)
        if isinstance(event, StreamEndEvent):
            self.empty = True
            return None
        assert isinstance(event, DocumentStartEvent)
        data = self.node(events, next(events), (), 1)
        assert isinstance(next(events), DocumentEndEvent)
        event = next(events)
        if not isinstance(event, StreamEndEvent):
            self._error(event, Code.YAML_SYNTAX, "YAML syntax error: expected a single document in the stream",
                        "remove the '---' line: a file holds one document")
        return data

    def node(self, events: Iterator[Event], event: Event, path: Path | None, depth: int) -> Any:
        """The value that starts with ``event``; its span (and its children's) is recorded under
        ``path`` unless ``path`` is ``None`` (a value read only to be dropped)."""
        assert isinstance(event, NodeEvent)
        self.values += 1
        if self.values > MAX_VALUES:
            raise self._stop(event, Code.YAML_TOO_MANY_VALUES, f"the document has more than {MAX_VALUES:,} values",
                             "a policy needs far fewer; split test cases over several files")
        if isinstance(event, AliasEvent):
            self._error(event, Code.YAML_ALIAS, f"YAML alias '*{event.anchor}' is not allowed",
                        "write the value out in full, so that the file reads as it applies")
            return None
        if event.anchor is not None:
            self._error(event, Code.YAML_ALIAS, f"YAML anchor '&{event.anchor}' is not allowed",
                        "remove the anchor and write each value out in full where it applies")
        tag = getattr(event, "tag", None)
        if tag is not None:
            self._error(event, Code.YAML_TAG, f"explicit YAML tag '{tag}' is not allowed",
                        "remove the tag; quote the value if it is text")
        if isinstance(event, CollectionStartEvent) and depth > MAX_DEPTH:
            raise self._stop(event, Code.YAML_TOO_DEEP, f"mappings and lists nest deeper than {MAX_DEPTH} levels",
                             "a policy nests a few levels deep; flatten the structure")
        if isinstance(event, MappingStartEvent):
            return self.mapping(events, event, path, depth)
        if isinstance(event, SequenceStartEvent):
            items: list[Any] = []
            while not isinstance(item := next(events), SequenceEndEvent):
                items.append(self.node(events, item, _child(path, len(items)), depth + 1))
            if path is not None:
                self.spans[path] = _span(event, item)
            return items
        assert isinstance(event, ScalarEvent)
        if path is not None:
            self.spans[path] = _span(event, event)
        return self.scalar(event)

    def mapping(self, events: Iterator[Event], start: MappingStartEvent, path: Path | None,
                depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while not isinstance(key_event := next(events), MappingEndEvent):
            key = self.key(events, key_event, depth)
            value_event = next(events)
            if key is None or key in result:
                if key is not None:
                    self._error(key_event, Code.YAML_DUPLICATE_KEY, f"duplicate key '{key}'",
                                "each key may appear once; YAML would silently keep the last one")
                self.node(events, value_event, None, depth + 1)  # read and drop
                continue
            if path is not None:
                self.key_spans[path + (key,)] = _span(key_event, key_event)
            result[key] = self.node(events, value_event, _child(path, key), depth + 1)
        if path is not None:
            self.spans[path] = _span(start, key_event)
        return result

    def key(self, events: Iterator[Event], event: Event, depth: int) -> str | None:
        """The text of a mapping key, or ``None`` (with a diagnostic) if it is not a plain string."""
        if not isinstance(event, ScalarEvent):
            self._error(event, Code.YAML_KEY, "mapping keys must be plain strings")
            self.node(events, event, None, depth + 1)
            return None
        if event.anchor is not None or event.tag is not None:
            self.node(events, event, None, depth + 1)  # reports the anchor or tag
            return None
        self.values += 1
        text: str = event.value
        if not event.style:
            if resolve_11(text) == _MERGE:
                self._error(event, Code.YAML_MERGE, "YAML merge keys ('<<') are not allowed",
                            "write the keys out in full so the policy reads as it applies")
                return None
            if plain_agreement(text) not in (_STR, _TIMESTAMP):
                self._error(event, Code.YAML_AMBIGUOUS_SCALAR,
                            f"the key {text} is not text to every YAML reader", f"quote it: '{text}'")
                return None
        return text

    def scalar(self, event: ScalarEvent) -> Any:
        text: str = event.value
        if event.style or event.tag is not None:
            return text
        tag = plain_agreement(text)
        if tag is None:
            self._error(event, Code.YAML_AMBIGUOUS_SCALAR, _ambiguous_message(text), _ambiguous_hint(text))
            return text
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return text.lower() == "true"
        if tag == _INT:
            return self.number(event, text, int)
        if tag == _FLOAT:
            return self.number(event, text, Decimal)
        if tag == _TIMESTAMP:
            try:
                return dt.date.fromisoformat(text)
            except ValueError:
                self._error(event, Code.YAML_DATE, f"'{text}' is not a valid calendar date")
        return text

    def number(self, event: ScalarEvent, text: str, kind: type[int] | type[Decimal]) -> Any:
        if len(text) > MAX_NUMBER_TEXT:
            self._error(event, Code.YAML_NUMBER_RANGE, f"a number written with more than {MAX_NUMBER_TEXT} characters",
                        "see the limits on numbers in docs/policy-language.md")
            return None
        if kind is int:
            value: int | Decimal = int(text, 16) if text.startswith("0x") else int(text)
        elif text.lstrip("+-").lower() in (".inf", ".nan"):
            self._error(event, Code.YAML_NUMBER, f"'{text}' is not a finite decimal number")
            return text
        else:
            value = Decimal(text)
        problem = number_problem(value)
        if problem is not None:
            self._error(event, Code.YAML_NUMBER_RANGE, f"the number {text} {problem}",
                        "see the limits on numbers in docs/policy-language.md")
            return None
        return value


def _child(path: Path | None, part: str | int) -> Path | None:
    return None if path is None else path + (part,)


def _ambiguous_message(text: str) -> str:
    old, new = resolve_11(text), resolve_12(text)
    name = {_BOOL: "a boolean", _INT: "an integer", _FLOAT: "a number", _NULL: "null", _TIMESTAMP: "a date",
            _STR: "text"}
    if old == new == _INT:
        return f"{text} is octal {int(text.lstrip('+-'), 8)} to YAML 1.1 but {int(text)} to YAML 1.2"
    return f"{text} is {name.get(old, old)} to YAML 1.1 but {name.get(new, new)} to YAML 1.2"


def _ambiguous_hint(text: str) -> str:
    if resolve_11(text) == _BOOL:
        return f"write true or false for a yes/no value, or quote it ('{text}') if it is text"
    return f"quote it ('{text}') if it is text, or write the number in decimal digits"
