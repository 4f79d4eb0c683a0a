"""Stage 3: constant folding."""

from __future__ import annotations

from decimal import Decimal

from fairalloc.expressions.ast import Binary, Call, Expr, Literal, Path
from fairalloc.expressions.check import check
from fairalloc.expressions.optimize import fold
from fairalloc.expressions.parse import parse

from .cases import scope


def folded(source: str) -> Expr:
    checked, problems = check(parse(source), scope(), None)
    assert problems == []
    tree, problems = fold(checked.tree)
    assert problems == []
    return tree


def test_constant_sub_expressions_become_literals() -> None:
    tree = folded("allocation < 1% * 2 * account.intended")
    assert isinstance(tree, Binary) and isinstance(tree.right, Binary)
    constant = tree.right.left
    assert isinstance(constant, Literal) and constant.value == Decimal("0.02")
    assert isinstance(tree.right.right, Path)


def test_functions_and_lists_fold() -> None:
    tree = folded("round(1 / 3, 2)")
    assert isinstance(tree, Literal) and tree.value == Decimal("0.33")
    items = folded("[1, 2 + 3]")
    assert isinstance(items, Literal) and items.value == (1, 5)
    assert folded("date('2026-03-02') < date('2026-03-03')") == Literal(True, "(date('2026-03-02') < date('2026-03-03'))", 0)


def test_folded_literals_keep_their_type_and_position() -> None:
    tree = folded("  2 * 3")
    assert isinstance(tree, Literal)
    assert tree.start == 2 and tree.type is not None and str(tree.type) == "number"


def test_non_constant_parts_stay() -> None:
    tree = folded("min(allocation, 1 + 1)")
    assert isinstance(tree, Call)
    assert isinstance(tree.args[1], Literal) and tree.args[1].value == 2


def test_failing_constant_is_a_located_problem() -> None:
    checked, _ = check(parse("allocation > 1 + 1 / 0"), scope(), None)
    _, problems = fold(checked.tree)
    assert [(p.code, p.offset) for p in problems] == [("expr-division-by-zero", 19)]


def test_folded_trees_print_back_with_the_same_meaning() -> None:
    from fairalloc.expressions.ast import unparse

    assert unparse(folded("(1 + 2) * allocation")) == "(1 + 2) * allocation"
    assert unparse(folded("-(2) * allocation")) == "(-2) * allocation"
    assert unparse(folded("allocation - (1 - 2)")) == "allocation - (1 - 2)"
