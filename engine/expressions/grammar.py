"""Find the grammar file and build the one LALR parser every expression goes through.

The grammar lives in the repository's top-level ``grammar/fairalloc.lark``; the wheel ships it as
``engine/grammar/fairalloc.lark``. The installed location wins, the source tree is the fallback.

The parser is built lazily on first use and kept for the life of the process: building it takes
about 30 ms, cheap enough that no on-disk cache is used (Lark's ``cache=True`` unpickles a file
from the shared temporary directory, which a policy engine should not trust). Importing this
module does not import Lark.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lark import Lark

GRAMMAR_NAME = "fairalloc.lark"


def grammar_text() -> str:
    """The grammar source, from the installed package if present, else from the source tree."""
    installed = importlib.resources.files("engine") / "grammar" / GRAMMAR_NAME
    if installed.is_file():
        return installed.read_text(encoding="utf-8")
    source_tree = Path(__file__).resolve().parents[2] / "grammar" / GRAMMAR_NAME
    return source_tree.read_text(encoding="utf-8")


@functools.cache
def parser() -> Lark:
    """The process-wide LALR parser (contextual lexer, keywords resolved against ``NAME``)."""
    from lark import Lark

    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        maybe_placeholders=False,
        keep_all_tokens=True,
    )
