"""docs/expressions.md against the implementation: its worked examples and its error codes."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from fairalloc.expressions import compile_expression

from .cases import scope

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "expressions.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(r"`([^`]+)` is `([^`]+)`", DOC)
PACKAGE = REPO / "engine" / "fairalloc" / "expressions"


def test_the_reference_has_worked_examples() -> None:
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize(("source", "shown"), EXAMPLES, ids=[source for source, _ in EXAMPLES])
def test_worked_example(source: str, shown: str) -> None:
    result = compile_expression(source, scope=scope()).evaluate()
    if shown.startswith("Decimal("):
        assert repr(result) == shown.replace('"', "'")
    else:
        assert str(result) == shown


def test_every_error_code_is_documented_and_every_documented_code_exists() -> None:
    def codes(paths: list[Path]) -> set[str]:
        return set(re.findall(r'"(expr-[a-z-]+)"', "\n".join(p.read_text(encoding="utf-8") for p in paths)))

    documented = set(re.findall(r"`(expr-[a-z-]+)`", DOC))
    assert codes(sorted(PACKAGE.glob("*.py"))) <= documented
    # a few expr-* checks live in the policy compiler, which knows more than an expression does
    assert documented <= codes(sorted((REPO / "engine" / "fairalloc").rglob("*.py")))


def test_documented_limits_match_the_constants() -> None:
    from fairalloc.expressions import DIVISION_PRECISION, MAX_DEPTH, MAX_LENGTH

    assert f"{MAX_LENGTH:,} characters" in DOC
    assert f"{MAX_DEPTH} levels" in DOC
    assert f"{DIVISION_PRECISION} significant digits" in DOC


def test_functions_table_lists_every_function() -> None:
    from fairalloc.expressions.functions import FUNCTIONS

    for function in FUNCTIONS.values():
        assert f"`{function.signature}`" in DOC, function.name


def test_examples_compile() -> None:
    block = DOC.split("## Examples", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    sources = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(sources) >= 5
    for source in sources:
        compile_expression(source, scope=scope())
