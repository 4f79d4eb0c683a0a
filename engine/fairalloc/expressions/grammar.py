"""Find the grammar file and build the one LALR parser every expression goes through.

The grammar lives in the repository's top-level ``grammar/fairalloc.lark``; the wheel ships it as
``engine/fairalloc/grammar/fairalloc.lark`` (see :func:`grammar_text` for which copy is read).

The parser is built lazily on first use and kept for the life of the process: building it takes
about 30 ms, cheap enough that no on-disk cache is used (Lark's ``cache=True`` unpickles a file
from the shared temporary directory, which a policy engine should not trust). Importing this
module imports neither Lark nor importlib.resources.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lark import Lark, Token

GRAMMAR_NAME = "fairalloc.lark"


def grammar_text() -> str:
    """The grammar source: the source tree's file in a checkout, else the installed package's.

    The source tree wins when it is there because an editable install also copies the grammar
    into site-packages, once, at install time: that copy goes stale as soon as the file is edited.
    A wheel has no source tree beside the package, so an installed wheel reads its own copy.
    """
    source_tree = Path(__file__).resolve().parents[3] / "grammar" / GRAMMAR_NAME
    if source_tree.is_file():
        return source_tree.read_text(encoding="utf-8")
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
    """The process-wide LALR parser (contextual lexer)."""
    from lark import Lark

    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        maybe_placeholders=False,
        keep_all_tokens=True,
        lexer_callbacks={"NAME": _keyword},
    )


def _keyword(token: Token) -> Token:
    """A NAME that spells a reserved word is that keyword, even where the keyword cannot stand.

    The contextual lexer only knows the terminals acceptable in the current state, so without
    this ``true and and x`` would read the second ``and`` as a name.
    """
    kind = KEYWORDS.get(str(token))
    return token if kind is None else token.update(type=kind)
