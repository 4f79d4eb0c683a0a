"""Find the grammar file and build the one LALR parser every expression goes through.

The grammar lives in the repository's top-level ``grammar/fairalloc.lark``; the wheel ships it as
``engine/fairalloc/grammar/fairalloc.lark`` (see :func:`grammar_text` for which copy is read).

The parser is made on first use and kept for the life of the process. Building it from the
grammar (Lark's grammar loader and LALR analysis) costs a process start-up more than the rest of
a small allocation, so its tables are shipped, generated from the grammar, as plain Python data in
:mod:`._lalr` (``python -m fairalloc.expressions`` writes it; a test holds it to the
grammar): no pickle, no cache in a shared temporary directory, which a policy engine should not
trust. The tables are used only if they were made from this very grammar text (its SHA-256) by
this version of Lark; otherwise the parser is built from the grammar as before. Importing this
module imports neither Lark nor importlib.resources.
"""

from __future__ import annotations

import functools
import hashlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from lark import Lark, Token

GRAMMAR_NAME = "fairalloc.lark"


def grammar_text() -> str:
    """The grammar source: the source tree's file in a checkout, else the installed package's.

    The source tree wins when it is there because an editable install also copies the grammar
    into site-packages, once, at install time: that copy goes stale as soon as the file is edited.
    A wheel has no source tree beside the package, so an installed wheel reads its own copy.
    """
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))
    source_tree = os.path.join(root, "grammar", GRAMMAR_NAME)
    if os.path.isfile(source_tree):  # not pathlib: its import costs every start-up
        with open(source_tree, encoding="utf-8") as file:
            return file.read()
    import importlib.resources  # only needed when the parser is built: keeps imports light

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
def parser() -> Lark:
    """The process-wide LALR parser (contextual lexer): from the shipped tables when they were
    made from this grammar by this Lark, else built from the grammar."""
    import lark

    from fairalloc.expressions import _lalr

    text = grammar_text()
    if _lalr.GRAMMAR_SHA256 == _digest(text) and _lalr.LARK_VERSION == lark.__version__:
        # the loader behind Lark's standalone parsers, from plain data (Lark leaves it untyped)
        loaded: Lark = lark.Lark._load_from_dict(  # type: ignore[no-untyped-call]
            _lalr.DATA, _lalr.MEMO, lexer_callbacks={"NAME": _keyword})
        return loaded
    return built(text)


def built(text: str) -> Lark:
    """The parser built from the grammar ``text``."""
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
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tables_module(text: str) -> str:
    """The source of :mod:`._lalr`: the tables of the parser built from ``text``, as literals."""
    import lark
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    data, memo = built(text).memo_serialize([TerminalDef, Rule])
    options: dict[str, Any] = dict(data["options"])
    del options["lexer_callbacks"]  # a function: given again when the tables are loaded
    data["options"] = options
    return (
        '"""The expression parser\'s LALR tables, generated from grammar/fairalloc.lark by\n'
        "``python -m fairalloc.expressions``: do not edit (see :mod:`.grammar`).\"\"\"\n\n"
        "from typing import Any\n\n"
        f"GRAMMAR_SHA256 = {_digest(text)!r}\n"
        f"LARK_VERSION = {lark.__version__!r}\n"
        f"DATA: dict[str, Any] = {data!r}\n"
        f"MEMO: dict[int, Any] = {memo!r}\n"
    )


def _keyword(token: Token) -> Token:
    """A NAME that spells a reserved word is that keyword, even where the keyword cannot stand.

    The contextual lexer only knows the terminals acceptable in the current state, so without
    this ``true and and x`` would read the second ``and`` as a name.
    """
    kind = KEYWORDS.get(str(token))
    return token if kind is None else token.update(type=kind)



def write_tables() -> Path:
    """Write :mod:`._lalr` from the grammar (``python -m fairalloc.expressions``)."""
    from pathlib import Path

    target = Path(__file__).with_name("_lalr.py")
    target.write_text(tables_module(grammar_text()), encoding="utf-8")
    return target
