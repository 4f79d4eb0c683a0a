"""Stage 1 — load: YAML text to plain data, remembering where every value came from.

PyYAML's composer gives us a node tree with marks; we construct plain Python values from it
ourselves so that (a) every mapping key and value keeps its ``line:column`` for later stages,
(b) numbers never pass through binary floats (``0.5`` becomes ``Decimal("0.5")``), and
(c) duplicate keys, which PyYAML would silently overwrite, are refused. Later stages address
values by their *path* (a tuple of keys and indices) and ask this module where that path is.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from fairalloc.errors import Diagnostic, FileAccessError, Location, PolicyError

Path = tuple[str | int, ...]

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_STR = "tag:yaml.org,2002:str"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Span:
    """Where a YAML node sits: 0-based marks as PyYAML reports them, plus the node's style."""

    line: int
    column: int
    start: int
    end: int
    style: str | None


@dataclass(frozen=True)
class SourceDocument:
    """A loaded policy file: its text, its plain data, and the span of every path in it."""

    file: str
    text: str
    data: Any
    spans: dict[Path, Span]
    key_spans: dict[Path, Span]

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
        return _location_of_index(self.file, self.text, min(index, len(self.text)))


def _location_of_index(file: str, text: str, index: int) -> Location:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return Location(file, line, column)


def _get(data: Any, path: Path) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def read_text(path: str) -> str:
    """Read a UTF-8 text file or raise :class:`FileAccessError` saying why."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        raise FileAccessError(
            Diagnostic("file-not-found", f"no such file: {path}", Location(path))
        ) from None
    except UnicodeDecodeError as error:
        raise FileAccessError(
            Diagnostic("file-not-utf8", f"file is not UTF-8 text ({error.reason})", Location(path))
        ) from None
    except OSError as error:
        raise FileAccessError(
            Diagnostic("file-unreadable", f"cannot read file: {error.strerror}", Location(path))
        ) from None


def load_yaml(text: str, file: str = "<policy>") -> SourceDocument:
    """Parse YAML ``text`` into a :class:`SourceDocument`; raise :class:`PolicyError` if it is not one document."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        location = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        message = error.problem or error.context or "malformed YAML"
        raise PolicyError(
            Diagnostic(
                "yaml-syntax",
                f"YAML syntax error: {message}",
                location,
                "check indentation and quoting; quote expressions that contain ':' or '#'",
            )
        ) from None
    except yaml.YAMLError as error:
        raise PolicyError(Diagnostic("yaml-syntax", f"YAML error: {error}", Location(file))) from None
    if root is None:
        raise PolicyError(
            Diagnostic("yaml-empty", "the policy file is empty", Location(file, 1, 1))
        )
    builder = _Builder(file)
    data = builder.build(root, ())
    if builder.diagnostics:
        raise PolicyError(builder.diagnostics)
    return SourceDocument(file, text, data, builder.spans, builder.key_spans)


class _Builder:
    """Constructs plain values from YAML nodes and records each node's span."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.spans: dict[Path, Span] = {}
        self.key_spans: dict[Path, Span] = {}
        self.diagnostics: list[Diagnostic] = []

    def _span(self, node: Node) -> Span:
        style = getattr(node, "style", None)
        return Span(
            node.start_mark.line,
            node.start_mark.column,
            node.start_mark.index,
            node.end_mark.index,
            style,
        )

    def _error(self, node: Node, code: str, message: str, hint: str | None = None) -> None:
        mark = node.start_mark
        self.diagnostics.append(
            Diagnostic(code, message, Location(self.file, mark.line + 1, mark.column + 1), hint)
        )

    def build(self, node: Node, path: Path) -> Any:
        self.spans[path] = self._span(node)
        if isinstance(node, MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode):
                    self._error(key_node, "yaml-key", "mapping keys must be plain strings")
                    continue
                key = str(key_node.value)
                if key == "<<":
                    self._error(key_node, "yaml-merge", "YAML merge keys ('<<') are not allowed",
                                "write the keys out in full so the policy reads as it applies")
                    continue
                if key in result:
                    self._error(key_node, "yaml-duplicate-key", f"duplicate key '{key}'",
                                "each key may appear once; YAML would silently keep the last one")
                    continue
                self.key_spans[path + (key,)] = self._span(key_node)
                result[key] = self.build(value_node, path + (key,))
            return result
        if isinstance(node, SequenceNode):
            return [self.build(item, path + (index,)) for index, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._scalar(node)

    def _scalar(self, node: ScalarNode) -> Any:
        text = node.value
        tag = node.tag
        if tag == _STR or node.style is not None:
            return text
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return text.lower() in ("true", "yes", "on")
        if tag == _INT:
            digits = text.replace("_", "")
            for base in (10, 0):
                try:
                    return int(digits, base)
                except ValueError:
                    continue
            return text
        if tag == _FLOAT:
            try:
                value = Decimal(text.replace("_", ""))
            except InvalidOperation:
                value = None
            if value is None or not value.is_finite():
                self._error(node, "yaml-number", f"'{text}' is not a finite decimal number")
                return text
            return value
        if tag == _TIMESTAMP and _DATE.match(text):
            try:
                return dt.date.fromisoformat(text)
            except ValueError:
                self._error(node, "yaml-date", f"'{text}' is not a valid calendar date")
                return text
        return text
