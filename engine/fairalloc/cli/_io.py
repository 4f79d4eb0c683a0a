"""Shared plumbing for subcommands: writing output files atomically and printing tables."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import stat
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from fairalloc.errors import Diagnostic, FairallocError, FileAccessError, Location


def argparse_date(text: str) -> dt.date:
    """An ``argparse`` type for ``YYYY-MM-DD`` options, with a message a user can act on."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None


def report_error(error: FairallocError, error_format: str) -> None:
    """Print every diagnostic of ``error`` on stderr, as text for people or JSON for machines."""
    if error_format == "json":
        payload = {"exit_code": int(error.exit_code), "errors": [d.to_json() for d in error.diagnostics]}
        print(json.dumps(payload, indent=2), file=sys.stderr)
        return
    for diagnostic in error.diagnostics:
        # A message may quote input text that UTF-8 cannot carry (a lone surrogate from a JSON
        # escape): shown as its escape, never a failure to report the error.
        print(diagnostic.render().encode("utf-8", "backslashreplace").decode("utf-8"), file=sys.stderr)
    if len(error.diagnostics) > 1:
        print(f"{len(error.diagnostics)} errors", file=sys.stderr)


def dump_json(value: Any) -> str:
    """Deterministic JSON text: the same value always gives the same bytes.

    Objects are indented for people, but each element of a list of objects (one allocation, one
    exception) stands compact on its own line: readable, diff-friendly, and written by the C
    encoder, so a 100,000-account allocation is written in a fraction of a second.
    """
    return _dump(value, "") + "\n"


def _dump(value: Any, indent: str) -> str:
    # the scalars as the encoder writes them (a str and its subclasses by the function it calls)
    if isinstance(value, str):
        return _QUOTE(value)
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return _NULL
    if kind is bool:
        return "true" if value else "false"
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = indent + "  "
        items = [f"{inner}{_QUOTE(key) if type(key) is str else _LINE.encode(key)}: {_dump(item, inner)}"
                 for key, item in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and not value:
        return "[]"
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        inner = indent + "  "
        rows = _rows(value, inner)
        if rows is None:
            rows = ",\n".join([inner + _compact(item) for item in value])
        return "[\n" + rows + "\n" + indent + "]"
    return _compact(value)


_LINE = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))
_QUOTE: Callable[[str], str] = json.encoder.encode_basestring
"""A text as ``_LINE`` writes it (the encoder calls this for a ``str``), without the encoder's call."""

_MAKE_ENCODER = getattr(json.encoder, "c_make_encoder", None)
_C_LINE = None if _MAKE_ENCODER is None else _MAKE_ENCODER(None, _LINE.default, _QUOTE, None, ": ", ", ",
                                                           False, False, True)
"""The C encoder ``_LINE.encode`` makes at every call (with ``_LINE``'s settings), made once. It
keeps no record of the containers it is in (``_LINE`` does, to refuse a value that contains
itself): the values written here are JSON documents, which cannot."""


def _compact(value: Any) -> str:
    """``_LINE.encode(value)`` for a value that is not a ``str``, by the C encoder made once."""
    if _C_LINE is None:
        return _LINE.encode(value)
    return "".join(_C_LINE(value, 0))


_COLUMNS_FROM = 64
"""Rows from which writing column by column pays: below, one encoder call per row is quicker."""


def _rows(items: list[dict[str, Any]], indent: str) -> str | None:
    """``items`` one to a line, as the encoder writes each, built column by column (:func:`_table`);
    ``None`` unless every item has the same keys in the same order."""
    keys = tuple(items[0])
    if len(items) < _COLUMNS_FROM or not keys or set(map(tuple, items)) != {keys}:
        return None
    return _table(keys, [list(map(itemgetter(key), items)) for key in keys], indent)


def _table(keys: Sequence[str], columns: Sequence[list[Any]], indent: str) -> str | None:
    """Rows of objects with ``keys`` whose values are ``columns``, one object to a line, as the
    encoder writes each (:func:`_table_pieces`), as one text."""
    pieces = _table_pieces(keys, columns, indent)
    return None if pieces is None else "".join(pieces)


def _table_pieces(keys: Sequence[str], columns: Sequence[list[Any]], indent: str) -> Iterator[str] | None:
    """The pieces of :func:`_table`'s text, in order, for one join: one encoder call per column,
    instead of one per object (a 100,000-account allocation has four columns), and no piece made
    per row that the columns already hold (text is quoted by the pieces around it; repeated
    values are one object). ``None`` unless every column holds only integers, or only text, each
    optionally with nulls."""
    parts: list[Iterable[str]] = []
    closing = ""
    for position, (key, column) in enumerate(zip(keys, columns)):
        found = _column_texts(column)
        if found is None:
            return None
        texts, quoted = found
        name = _LINE.encode(key) + (': "' if quoted else ": ")
        if position == 0:
            opening: Iterable[str] = chain([indent + "{" + name], repeat(closing + ",\n" + indent + "{" + name))
        else:
            opening = repeat(closing + ", " + name)
        closing = '"' if quoted else ""
        parts += [opening, texts]
    parts.append(repeat(closing + "}"))
    return chain.from_iterable(zip(*parts))


def dump_allocation(result: Any, *, explain: bool = False) -> str:
    """``dump_json(result.document(explain=explain))``, byte for byte, written from the result's
    columns: no object per account is built unless the explanations or a settlement (each entry's
    pieces, money and clearing are objects, not columns) need them."""
    if explain or result.settlement is not None or not result.columns.ids:
        return dump_json(result.document(explain=explain))
    columns = result.entry_columns()
    pieces: Iterable[str] | None
    if len(columns[0]) < _COLUMNS_FROM:
        rows = _small_table(result.ENTRY_FIELDS, columns, "    ")
        pieces = None if rows is None else (rows,)
    else:
        pieces = _table_pieces(result.ENTRY_FIELDS, columns, "    ")
    if pieces is None:
        return dump_json(result.document())
    # the document's other fields as dump_json writes them, around the entries; those that are
    # the policy's alone are written once per policy
    settings = _settings(result)
    items = [None if key == "allocations" else settings.get(key) or f"  {_QUOTE(key)}: {_dump(value, '  ')}"
             for key, value in result.document(entries=False).items()]
    at = items.index(None)
    before = "".join([f"{item},\n" for item in items[:at]])
    after = "".join([f",\n{item}" for item in items[at + 1:]])
    return "".join(chain(["{\n", before, '  "allocations": [\n'], pieces, ["\n  ]", after, "\n}\n"]))


_POLICY_FIELDS = ("policy", "method", "rounding")
"""The fields of an allocation document that its policy decides alone (with the result's method and
lot, which are the policy's): the same text in every document of the policy."""

_SETTINGS: dict[int, tuple[weakref.ref[Any], Any, Any, dict[str, str]]] = {}


def _settings(result: Any) -> dict[str, str]:
    """The texts of :data:`_POLICY_FIELDS` in ``result``'s document (``  "key": value``), kept for
    the policy while it lives (its id, checked against the policy itself)."""
    policy = result.policy
    key = id(policy)
    kept = _SETTINGS.get(key)
    if kept is not None and kept[0]() is policy and kept[1] == result.method and kept[2] == result.lot:
        return kept[3]
    document = result.document(entries=False)
    texts = {field: f"  {_QUOTE(field)}: {_dump(document[field], '  ')}" for field in _POLICY_FIELDS}

    def forget(_: weakref.ref[Any]) -> None:
        _SETTINGS.pop(key, None)

    _SETTINGS[key] = (weakref.ref(policy, forget), result.method, result.lot, texts)
    return texts


def _small_table(keys: Sequence[str], columns: Sequence[list[Any]], indent: str) -> str | None:
    """:func:`_table` for a few rows: each row formatted from one template (``%`` in C), the
    column values or their texts filled in; ``None`` where :func:`_table_pieces` gives ``None``."""
    formats: list[str] = []
    values: list[list[Any]] = []
    for name, column in zip(_names(tuple(keys)), columns):
        if set(map(type, column)) == {int}:
            formats.append(name + ": %d")  # %d writes an int as int.__repr__ does
            values.append(column)
            continue
        found = _column_texts(column)
        if found is None:
            return None
        texts, quoted = found
        formats.append(name + (': "%s"' if quoted else ": %s"))
        values.append(texts)
    template = indent + "{" + ", ".join(formats) + "}"
    return ",\n".join([template % row for row in zip(*values)])


@functools.lru_cache(maxsize=16)
def _names(keys: tuple[str, ...]) -> list[str]:
    """Each key as the encoder writes it, ``%`` doubled for a template."""
    return [_LINE.encode(key).replace("%", "%%") for key in keys]


def _column_texts(column: list[Any]) -> tuple[list[str], bool] | None:
    """The JSON text of every value of ``column``, if it holds integers or text (and nulls), and
    whether the texts leave out their quotes (text without nulls: the pieces around supply them)."""
    kinds = set(map(type, column))
    nulls = type(None) in kinds
    kinds.discard(type(None))
    if kinds == {int}:
        return _repeated(column, int.__repr__), False
    if kinds == {str}:
        joined = "".join(filter(None, column) if nulls else column)  # an empty text adds nothing
        # nothing needed escaping (escapes only lengthen): each text is written as it is, in quotes
        if len(_QUOTE(joined)) != len(joined) + 2:
            return None
        if not nulls:
            return column, True
        return _repeated(column, lambda v: f'"{v}"'), False
    return None


def _repeated(column: list[Any], text: Callable[[Any], str]) -> list[str]:
    """``text`` of every value, nulls as ``null``; each distinct value's text made once when the
    values repeat (a price, an intended quantity), so a long column costs references only."""
    distinct = set(column)
    if 2 * len(distinct) > len(column):
        return [_NULL if v is None else text(v) for v in column]
    texts = {v: _NULL if v is None else text(v) for v in distinct}
    return list(map(texts.__getitem__, column))


_NULL = "null"


def write_output(text: str, path: str | None) -> None:
    """Write ``text`` to ``path`` atomically (temporary file + rename), or to stdout when ``path`` is None.

    A reader never sees a half-written file: either the old content or the new. A file that is
    replaced keeps its permissions (``fmt`` rewrites policy files in place); a new file gets the
    permissions the umask gives, as ``open`` would, not the private mode of a temporary file.
    """
    if path is None or path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    import tempfile  # imports random and hashlib: only a command writing a file pays for them

    directory = os.path.dirname(os.path.abspath(path))
    temporary = None
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".fairalloc-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, _mode_for(path))
        os.replace(temporary, path)
    except OSError as error:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        raise FileAccessError(
            Diagnostic("file-unwritable", f"cannot write {path}: {error.strerror}", Location(path))
        ) from None


def _mode_for(path: str) -> int:
    """The permission bits ``path`` has, or those a newly created file would get under the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def print_allocation(result: Any, title: str | None = None) -> None:
    """An allocation as a table for people, captioned with its method, fill and policy version,
    followed by the allocation's notes (what the engine did that the numbers alone do not say).

    The table is at least as wide as its longest caption line, so the policy digest is never
    wrapped: people copy it from here into a ledger query or an examiner's letter."""
    policy = result.policy
    caption = [f"{result.method}, filled {result.document()['filled']} "
               f"@ {result.price_text(result.average_price) or '-'}; {len(result.exceptions)} exception(s)",
               f"policy {policy.ref}", policy.digest]
    print_table(title or f"Allocation of order {result.order_id}",
                ("account", "intended", "allocated", "avg price", "% of intended", "rules"),
                result.rows(), right=(1, 2, 3, 4), caption="\n".join(caption),
                min_width=max(len(line) for line in caption))
    for note in result.notes:
        print(f"note: {note}")


def words(value: Any) -> str:
    """A value of an explanation as a policy author writes it: ``true``/``false``, lists
    comma-separated (``none`` when empty), a fill as ``ID: QUANTITY`` — never a Python repr."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, dict):
        return ", ".join(f"{key}: {words(item)}" for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return "; ".join(words(item) for item in value) if value else "none"
    return str(value)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *,
                right: Sequence[int] = (), caption: str | None = None, min_width: int | None = None) -> None:
    """Print a table for people (plain text when stdout is not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, caption=caption, show_lines=False, min_width=min_width)
    for index, column in enumerate(columns):
        table.add_column(column, justify="right" if index in right else "left")
    for row in rows:
        table.add_row(*row)
    Console(soft_wrap=False, width=max(100, Console().width)).print(table)
