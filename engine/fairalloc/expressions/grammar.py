"""Find the grammar file and build the one LALR parser every expression goes through.

The grammar lives in the repository's top-level ``grammar/fairalloc.lark``; the wheel ships it as
``engine/fairalloc/grammar/fairalloc.lark`` (see :func:`grammar_text` for which copy is read).

The parser is made on first use and kept for the life of the process. Building it from the
grammar (Lark's grammar loader and LALR analysis) costs a process start-up more than the rest of
a small allocation, and importing Lark at all a sixth of a small ``fairalloc allocate``; so the
tables of the parser Lark builds are shipped, generated from the grammar, as plain Python data in
:mod:`._lalr` (``python -m fairalloc.expressions`` writes it; a test holds it to the grammar and
to the installed Lark), and :mod:`.lalr` runs them: no pickle, no cache in a shared temporary
directory, which a policy engine should not trust. The tables are used only if they were made
from this very grammar text (its SHA-256); otherwise they are taken from the parser Lark builds
from the grammar. Importing this module imports neither Lark nor importlib.resources; parsing
with the shipped tables imports no Lark at all.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any, TypeVar

from fairalloc.digest import sha256_hex

if TYPE_CHECKING:
    from pathlib import Path

    from lark import Lark

    from fairalloc.expressions.lalr import Parser

T = TypeVar("T", bound=Any)

GRAMMAR_NAME = "fairalloc.lark"


def grammar_text() -> str:
    """The grammar source: the source tree's file in a checkout, else the installed package's.

    The source tree wins when it is there because an editable install also copies the grammar
    into site-packages, once, at install time: that copy goes stale as soon as the file is edited.
    A wheel has no source tree beside the package, so an installed wheel reads its own copy: from
    the package's folder when it is one (importlib.resources, with pathlib and its readers, costs
    an installed ``fairalloc allocate`` a twentieth of its start-up), else through
    importlib.resources.
    """
    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    for candidate in (os.path.join(os.path.dirname(os.path.dirname(package)), "grammar", GRAMMAR_NAME),
                      os.path.join(package, "grammar", GRAMMAR_NAME)):
        if os.path.isfile(candidate):  # not pathlib: its import costs every start-up
            with open(candidate, encoding="utf-8") as file:
                return file.read()
    import importlib.resources

    installed = importlib.resources.files("fairalloc") / "grammar" / GRAMMAR_NAME
    return installed.read_text(encoding="utf-8")


KEYWORDS: dict[str, str] = {
    "and": "AND",
    "or": "OR",
    "not": "NOT",
    "in": "IN",
    "true": "TRUE",
    "false": "FALSE",
    "null": "NULL",
}
"""Reserved words and their terminals."""


@functools.cache
def parser() -> Parser:
    """The process-wide parser: from the shipped tables when they were made from this grammar by
    this Lark, else from the tables of the parser Lark builds from the grammar."""
    from fairalloc.expressions import _lalr
    from fairalloc.expressions.lalr import Parser

    text = grammar_text()
    return Parser(_lalr.TABLES if _lalr.GRAMMAR_SHA256 == _digest(text) else tables(text), {"NAME": _keyword})


def built(text: str) -> Lark:
    """The Lark parser built from the grammar ``text`` (whose tables :func:`tables` takes)."""
    from lark import Lark

    return Lark(
        text,
        parser="lalr",
        lexer="contextual",
        maybe_placeholders=False,
        keep_all_tokens=True,
        lexer_callbacks={"NAME": _keyword},
    )


def _digest(text: str) -> str:
    return sha256_hex(text)


def tables(text: str) -> dict[str, Any]:
    """What :class:`~fairalloc.expressions.lalr.Parser` runs, taken from the Lark parser built from
    ``text``: the terminals' patterns (as Lark writes them as regular expressions), every distinct
    state lexer (its terminals in Lark's order, its ignored terminals, and for a terminal that also
    spells string terminals, those strings and their terminals), the lexer and the parse actions
    of each state (a shift as the state it goes to, a reduction as
    ``-1 - rule``), and each rule's tree name, head, ``?`` expansion and which children it inlines."""
    from lark.lexer import BasicLexer, CallChain, UnlessCallback
    from lark.parsers.lalr_analysis import Shift

    frontend = built(text).parser
    table = frontend.parser.parser.parse_table
    contextual = frontend.lexer
    terminals: dict[str, str] = {}
    lexers: list[tuple[list[str], list[str], dict[str, dict[str, str]]]] = []
    numbers: dict[int, int] = {}

    def number(lexer: BasicLexer) -> int:
        if id(lexer) not in numbers:
            scanner = lexer.scanner
            assert len(scanner._mres) == 1 and not lexer.g_regex_flags and not lexer.use_bytes
            for terminal in scanner.terminals:
                assert terminals.setdefault(terminal.name, terminal.pattern.to_regexp()) == terminal.pattern.to_regexp()
            unless: dict[str, dict[str, str]] = {}
            for name, callback in lexer.callback.items():
                if isinstance(callback, CallChain):
                    callback = callback.callback1
                if isinstance(callback, UnlessCallback):  # plain strings: a full match is equality
                    strings = callback.scanner.terminals
                    assert all(t.pattern.type == "str" and not t.pattern.flags for t in strings)
                    unless[name] = {}
                    for string in strings:
                        unless[name].setdefault(string.pattern.value, string.name)
            numbers[id(lexer)] = len(lexers)
            lexers.append(([t.name for t in scanner.terminals], sorted(lexer.ignore_types), unless))
        return numbers[id(lexer)]

    states = sorted(table.states)
    assert states == list(range(len(states)))
    rules: dict[Any, int] = {}
    actions: list[dict[str, int]] = []
    for state in states:
        row = {}
        for symbol, (action, argument) in table.states[state].items():
            if action is Shift:
                row[str(symbol)] = int(argument)
            else:
                row[str(symbol)] = -1 - rules.setdefault(argument, len(rules))
        actions.append(row)
    state_lexer = [number(contextual.lexers[state]) for state in states]
    root_lexer = number(contextual.root_lexer)
    return {
        "terminals": terminals,
        "lexers": lexers,
        "state_lexer": state_lexer,
        "root_lexer": root_lexer,
        "actions": actions,
        "rules": [(str(rule.alias or rule.options.template_source or rule.origin.name), str(rule.origin.name),
                   bool(rule.options.expand1 and not rule.alias),
                   tuple(not symbol.is_term and symbol.name.startswith("_") for symbol in rule.expansion))
                  for rule in rules],
        "start": table.start_states["start"],
        "end": table.end_states["start"],
    }


def tables_module(text: str) -> str:
    """The source of :mod:`._lalr`: :func:`tables` of ``text``, as literals."""
    import lark

    return (
        '"""The expression parser\'s tables, generated from grammar/fairalloc.lark by\n'
        "``python -m fairalloc.expressions``: do not edit (see :mod:`.grammar`).\"\"\"\n\n"
        "from typing import Any\n\n"
        f"GRAMMAR_SHA256 = {_digest(text)!r}\n"
        f"LARK_VERSION = {lark.__version__!r}\n"
        f"TABLES: dict[str, Any] = {tables(text)!r}\n"
    )


def _keyword(token: T) -> T:
    """A NAME that spells a reserved word is that keyword, even where the keyword cannot stand
    (for the parser of :mod:`.lalr` and for Lark's, whose tokens also take a new ``type``).

    The contextual lexer only knows the terminals acceptable in the current state, so without
    this ``true and and x`` would read the second ``and`` as a name.
    """
    kind = KEYWORDS.get(str(token))
    if kind is not None:
        token.type = kind
    return token


def write_tables() -> Path:
    """Write :mod:`._lalr` from the grammar (``python -m fairalloc.expressions``)."""
    from pathlib import Path

    target = Path(__file__).with_name("_lalr.py")
    target.write_text(tables_module(grammar_text()), encoding="utf-8")
    return target
