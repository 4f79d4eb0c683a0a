"""Shared plumbing for subcommands: writing output files atomically and printing tables."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from engine.errors import Diagnostic, FileAccessError, Location


def dump_json(value: Any) -> str:
    """Deterministic JSON text: the same value always gives the same bytes."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def write_output(text: str, path: str | None) -> None:
    """Write ``text`` to ``path`` atomically (temporary file + rename), or to stdout when ``path`` is None.

    A reader never sees a half-written file: either the old content or the new.
    """
    if path is None or path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".fairalloc-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except OSError as error:
        raise FileAccessError(
            Diagnostic("file-unwritable", f"cannot write {path}: {error.strerror}", Location(path))
        ) from None


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *,
                right: Sequence[int] = (), caption: str | None = None) -> None:
    """Print a table for people (plain text when stdout is not a terminal)."""
    table = Table(title=title, caption=caption, show_lines=False)
    for index, column in enumerate(columns):
        table.add_column(column, justify="right" if index in right else "left")
    for row in rows:
        table.add_row(*row)
    Console(soft_wrap=False, width=max(100, Console().width)).print(table)
