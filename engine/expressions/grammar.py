"""Find the grammar file and build the one LALR parser every expression goes through.

The grammar lives in the repository's top-level ``grammar/fairalloc.lark``; the wheel ships it as
``engine/grammar/fairalloc.lark``. The installed location wins, the source tree is the fallback.

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
    """The grammar source, from the installed package if present, else from the source tree."""
    import importlib.resources  # only needed when the parser is built: keeps imports light

    installed = importlib.resources.files("engine") / "grammar" / GRAMMAR_NAME
    if installed.is_file():
        return installed.read_text(encoding="utf-8")
    source_tree = Path(__file__).resolve().parents[2] / "grammar" / GRAMMAR_NAME
    return source_tree.read_text(encoding="utf-8")


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
