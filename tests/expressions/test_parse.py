"""Stage 1: parse. Tree shapes, literal decoding, round trips, located syntax errors, bounds."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from fairalloc.errors import Location, PolicyError
from fairalloc.expressions import MAX_DEPTH, MAX_LENGTH, compile_expression
from fairalloc.expressions.ast import Binary, Call, Expr, ListExpr, Literal, Path, Unary, unparse
from fairalloc.expressions.parse import ParseFailure, expected_words, parse

from .cases import ids, load, scope

ROUNDTRIP = load("roundtrip.yaml")


def problem(source: str) -> tuple[str, int]:
    with pytest.raises(ParseFailure) as caught:
        parse(source)
    return caught.value.problem.code, caught.value.problem.offset


def test_precedence_and_associativity() -> None:
    tree = parse("a or b and not c == 1 + 2 * -d")
    assert isinstance(tree, Binary) and tree.op == "or"
    right = tree.right
    assert isinstance(right, Binary) and right.op == "and"
    negation = right.right
    assert isinstance(negation, Unary) and negation.op == "not"
    comparison = negation.operand
    assert isinstance(comparison, Binary) and comparison.op == "=="
    total = comparison.right
    assert isinstance(total, Binary) and total.op == "+"
    product = total.right
    assert isinstance(product, Binary) and product.op == "*"
    assert isinstance(product.right, Unary) and product.right.op == "-"
    left_assoc = parse("a - b - c")
    assert isinstance(left_assoc, Binary) and isinstance(left_assoc.left, Binary)


def test_offsets_point_at_first_characters() -> None:
    tree = parse("  account.type ==\n 'x'")
    assert isinstance(tree, Binary)
    assert tree.start == 2 and tree.op_start == 15
    assert isinstance(tree.left, Path) and tree.left.offsets == (2, 10)
    assert isinstance(tree.right, Literal) and tree.right.start == 19


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1_000_000", 1_000_000),
        ("0.10", Decimal("0.10")),
        ("2.5%", Decimal("0.025")),
        ("12_5.5%", Decimal("1.255")),
        ("'a\\'b'", "a'b"),
        ('"a\\"b"', 'a"b'),
        ('"back\\\\slash"', "back\\slash"),
        ('"line\\nbreak"', "line\nbreak"),
        ('"\\u00e9t\\u00e9"', "été"),
        ("true", True),
        ("false", False),
        ("null", None),
    ],
)
def test_literals_decode_exactly(source: str, expected: Any) -> None:
    tree = parse(source)
    assert isinstance(tree, Literal)
    assert type(tree.value) is type(expected) and tree.value == expected
    assert tree.text == source


def test_percent_is_exact_not_float() -> None:
    tree = parse("33.333333333333333333333333333333333333%")
    assert isinstance(tree, Literal)
    assert tree.value == Decimal("0.33333333333333333333333333333333333333")


def test_calls_and_lists() -> None:
    tree = parse("min(1, [2, 3], x.y)")
    assert isinstance(tree, Call) and tree.name == "min" and len(tree.args) == 3
    assert isinstance(tree.args[1], ListExpr) and len(tree.args[1].items) == 2
    assert parse("f()") == Call("f", (), 0)


@pytest.mark.parametrize("case", ROUNDTRIP, ids=ids(ROUNDTRIP))
def test_round_trip(case: dict[str, Any]) -> None:
    tree = parse(case["source"])
    printed = unparse(tree)
    assert printed == case.get("canonical", case["source"])
    assert unparse(parse(printed)) == printed


def test_keywords_are_not_names() -> None:
    assert problem("true and and false") == ("expr-syntax", 9)
    assert problem("account.null") == ("expr-syntax", 8)
    assert isinstance(parse("notable"), Path)


def test_expected_words() -> None:
    assert expected_words({"RPAR"}) == "')'"
    assert expected_words({"INTEGER", "NAME", "LPAR", "RPAR"}) == "a value or ')'"
    assert expected_words({"PLUS", "STAR", "AND", "$END"}) == "an operator or the end of the expression"
    assert expected_words(set()) == "nothing more"


def test_syntax_error_location_goes_through_locate() -> None:
    def locate(offset: int) -> Location:
        # the expression starts at line 7, column 12 of policy.yaml, on one line
        return Location("policy.yaml", 7, 12 + offset)

    with pytest.raises(PolicyError) as caught:
        compile_expression("allocation >> 1", scope=scope(), locate=locate)
    (only,) = caught.value.diagnostics
    assert only.code == "expr-syntax"
    assert str(only.location) == "policy.yaml:7:24"
    assert "expected a value" in only.message


def test_a_syntax_error_stops_before_checking() -> None:
    with pytest.raises(PolicyError) as caught:
        compile_expression("nosuch + (", scope=scope())
    assert caught.value.codes == ["expr-syntax"]


# -- bounds -------------------------------------------------------------------------------------


def test_length_limit() -> None:
    ok = "1" + " + 1" * ((MAX_LENGTH - 1) // 4)
    assert len(ok) <= MAX_LENGTH
    with pytest.raises(ParseFailure) as caught:  # long but shallow is fine for length; depth stops it
        parse(ok)
    assert caught.value.problem.code == "expr-too-deep"
    padded = "1" + " " * (MAX_LENGTH - 1)
    assert isinstance(parse(padded), Literal)
    assert problem(padded + " ") == ("expr-too-long", MAX_LENGTH)


def test_parenthesis_bomb_fails_cleanly() -> None:
    bomb = "(" * 10_000 + "1" + ")" * 10_000
    assert problem(bomb) == ("expr-too-long", MAX_LENGTH)
    within_length = "(" * 1_900 + "1" + ")" * 1_900
    assert problem(within_length) == ("expr-too-deep", MAX_DEPTH)


def test_bracket_depth_limit_is_exact() -> None:
    ok = "(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH
    assert isinstance(parse(ok), Literal)
    assert problem("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)) == ("expr-too-deep", MAX_DEPTH)


def test_brackets_inside_strings_do_not_count() -> None:
    text = "'" + "(" * 100 + "'"
    assert isinstance(parse(text), Literal)


@pytest.mark.parametrize(
    "source",
    [
        " + ".join(["1"] * 40),
        "not " * 40 + "true",
        "-" * 40 + "1",
        "abs(" * 20 + "1" + ")" * 20 + " + 1" * 20,
    ],
    ids=["sum chain", "not chain", "minus chain", "calls and sums"],
)
def test_operator_depth_limit(source: str) -> None:
    code, _ = problem(source)
    assert code == "expr-too-deep"


def test_depth_bomb_through_the_facade_is_a_policy_error() -> None:
    with pytest.raises(PolicyError) as caught:
        compile_expression("-" * 3_000 + "1", scope=scope())
    assert caught.value.codes == ["expr-too-deep"]


def tree_depth(node: Expr) -> int:
    """Levels of operators, calls and lists above the deepest value (a value alone is 0)."""
    if isinstance(node, (Literal, Path)):
        return 0
    if isinstance(node, Unary):
        below: tuple[Expr, ...] = (node.operand,)
    elif isinstance(node, Binary):
        below = (node.left, node.right)
    elif isinstance(node, ListExpr):
        below = node.items
    else:
        below = node.args
    return 1 + max((tree_depth(child) for child in below), default=0)


@pytest.mark.parametrize(
    "source",
    [
        "(" * 31 + "1" + " + 1)" * 31 + " + 1",
        "1" + " + 1" * MAX_DEPTH,
        "-" * MAX_DEPTH + "allocation",
        "not " * MAX_DEPTH + "true",
        "abs(" * MAX_DEPTH + "allocation" + ")" * MAX_DEPTH,
        "[" * MAX_DEPTH + "]" * MAX_DEPTH,
        "allocation * 2 < 1% * (" + "allocation + (" * 30 + "allocation" + ")" * 31,
        "coalesce(account.limit_price, " * MAX_DEPTH + "1" + ")" * MAX_DEPTH,
    ],
    ids=["right-nested sum", "sum chain", "negations", "nots", "calls", "lists", "scaled comparison", "coalesce"],
)
def test_deepest_accepted_expressions_compile(source: str) -> None:
    assert tree_depth(parse(source)) == MAX_DEPTH
    compiled = compile_expression(source, scope=scope())
    assert compiled.fn is not None
    deeper = "[" + source + "]"
    with pytest.raises(PolicyError) as caught:
        compile_expression(deeper, scope=scope())
    assert caught.value.codes == ["expr-too-deep"]
