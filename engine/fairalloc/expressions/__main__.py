"""``python -m fairalloc.expressions``: write the parser's tables (:mod:`._lalr`) from the grammar."""

import sys

from fairalloc.expressions.grammar import write_tables

sys.stdout.write(f"wrote {write_tables()}\n")
