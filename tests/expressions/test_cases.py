"""Golden cases (tests/cases/expressions/*.yaml) through the public facade."""

from __future__ import annotations

from typing import Any

import pytest

from fairalloc.errors import PolicyError
from fairalloc.expressions import ROOTS, ExpressionRuntimeError, compile_expression

from .cases import TYPES, ids, load, scope, value

INVALID = load("invalid.yaml")
EVALUATE = load("evaluate.yaml")


def test_there_are_enough_invalid_cases() -> None:
    assert len(INVALID) >= 25
    assert {case["code"] for case in INVALID} >= {
        "expr-syntax",
        "expr-unknown-name",
        "expr-unknown-root",
        "expr-unknown-field",
        "expr-unknown-function",
        "expr-type",
        "expr-arity",
        "expr-bad-literal",
    }


@pytest.mark.parametrize("case", INVALID, ids=ids(INVALID))
def test_invalid_expression_reports_code_and_column(case: dict[str, Any]) -> None:
    with pytest.raises(PolicyError) as caught:
        compile_expression(
            case["source"],
            scope=scope(case.get("roots", ROOTS)),
            expect=TYPES[case.get("expect", "boolean")],
        )
    first = caught.value.diagnostics[0]
    assert (first.code, first.location.line, first.location.column) == (case["code"], 1, case["column"])
    assert first.hint, "every diagnostic carries a one-line hint"
    assert "\n" not in first.hint
    if "hint" in case:
        assert first.hint == case["hint"]


@pytest.mark.parametrize("case", EVALUATE, ids=ids(EVALUATE))
def test_evaluation(case: dict[str, Any]) -> None:
    data = value(case.get("data", {}))
    try:
        compiled = compile_expression(case["source"], scope=scope(), expect=TYPES[case.get("expect", "any")])
        result = compiled.evaluate(**data)
    except (PolicyError, ExpressionRuntimeError) as error:
        first = error.diagnostics[0]
        assert (first.code, first.location.column) == (case.get("error"), case.get("column")), first.message
        return
    assert "error" not in case, f"expected {case['error']}, got {result!r}"
    expected = value(case["result"])
    if isinstance(expected, list):
        expected = tuple(expected)
    assert type(result) is type(expected)
    assert result == expected
    assert str(result) == str(expected), "same digits and exponent, not just the same value"
