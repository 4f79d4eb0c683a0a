"""The columnar form of an expression (fairalloc.expressions.vector) against the compiled closure.

Random expressions over account fields, ``allocation`` and shared fields are evaluated both ways
on random accounts: whenever the columnar form gives an answer it is the closure's answer for
every account, exactly; where it cannot be exact (a product beyond int64), it declines.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from fairalloc.expressions import ExpressionRuntimeError, Scope, Type, compile_expression
from fairalloc.expressions.vector import Frame, Rational, Unsupported, vectorise

SCOPE = Scope.build({"order", "security", "statement", "fill", "account", "allocation"},
                    {"kind": Type.STRING, "flag": Type.BOOLEAN, "n": Type.NUMBER})
FILL = {"quantity": 3700, "ratio": Decimal("0.37"), "average_price": Decimal("100.01"), "count": 2,
        "first_at": None, "last_at": None}
ROOTS: dict[str, Any] = {"order": {"quantity": 10000, "side": "buy"}, "security": {"symbol": "XYZ"},
                         "statement": {"total": 10000, "accounts": 3}, "fill": FILL}

numbers = st.sampled_from(["account.n", "account.intended", "allocation", "fill.ratio", "fill.quantity", "3",
                           "0.25", "12.5%", "-7", "1000000", "100000000000000000000"])


def number_expression(depth: int) -> st.SearchStrategy[str]:
    if depth == 0:
        return numbers
    smaller = number_expression(depth - 1)
    return st.one_of(
        numbers,
        st.tuples(smaller, st.sampled_from(["+", "-", "*"]), smaller).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        smaller.map(lambda e: f"-({e})"),
    )


def boolean_expression(depth: int) -> st.SearchStrategy[str]:
    comparison = st.one_of(
        st.tuples(number_expression(2), st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), number_expression(2))
        .map(" ".join),
        st.tuples(st.sampled_from(["account.kind", '"b"']), st.sampled_from(["==", "!=", "<", ">="]),
                  st.sampled_from(['"a"', '"b"', "account.kind", "account.id"])).map(" ".join),
        st.tuples(st.sampled_from(["account.kind", "account.id"]), st.sampled_from(["in", "not in"]),
                  st.sampled_from(['["a", "c"]', '["A1", "b"]', "[]"])).map(" ".join),
        st.tuples(number_expression(1), st.sampled_from(["in", "not in"]),
                  st.sampled_from(["[1, 2.5, 100]", "[0]"])).map(" ".join),
        st.sampled_from(["account.flag", "account.flag == true", "true != account.flag", "fill.ratio < 0.5"]),
    )
    if depth == 0:
        return comparison
    smaller = boolean_expression(depth - 1)
    return st.one_of(
        comparison,
        st.tuples(smaller, st.sampled_from(["and", "or"]), smaller).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        smaller.map(lambda e: f"not ({e})"),
    )


@st.composite
def accounts(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[int], int]:
    size = draw(st.integers(1, 12))
    big = draw(st.booleans())
    magnitude = 2**61 if big else 10**6
    records = [
        {"id": f"A{i}", "intended": draw(st.integers(1, 10**6)), "kind": draw(st.sampled_from(["a", "b", "c"])),
         "flag": draw(st.booleans()), "n": draw(st.integers(-magnitude, magnitude)),
         "limit_price": None, "received_at": None}
        for i in range(size)
    ]
    scale = draw(st.sampled_from([1, 10, 1000]))
    units = [draw(st.integers(0, 10**6)) for _ in range(size)]
    return records, units, scale


def frame(records: list[dict[str, Any]], units: list[int], scale: int) -> Frame:
    def column(name: str) -> Any:
        values = [record[name] for record in records]
        if name in ("n", "intended"):
            return Rational(np.asarray(values, dtype=np.int64), 1)
        return np.asarray(values, dtype=bool if name == "flag" else object)

    return Frame(ROOTS, column, Rational(np.asarray(units, dtype=np.int64), scale))


def quantity(units: int, scale: int) -> int | Decimal:
    value = Fraction(units, scale)
    return value.numerator if value.denominator == 1 else Decimal(value.numerator) / Decimal(value.denominator)


def closure_values(text: str, records: list[dict[str, Any]], units: list[int], scale: int) -> list[Any] | None:
    compiled = compile_expression(text, SCOPE)
    try:
        return [compiled.fn(ROOTS["order"], ROOTS["security"], ROOTS["statement"], FILL, record, quantity(u, scale))
                for record, u in zip(records, units)]
    except ExpressionRuntimeError:
        return None


def assert_same(text: str, records: list[dict[str, Any]], units: list[int], scale: int) -> None:
    function = vectorise(compile_expression(text, SCOPE))
    if function is None:
        event("no columnar form")
        return
    try:
        value = function(frame(records, units, scale))
    except Unsupported:
        event("declined for these data")
        return
    expected = closure_values(text, records, units, scale)
    assert expected is not None, "the columnar form answered where the language raises"
    event("columnar")
    if isinstance(value, Rational):
        assert [Fraction(int(v), value.denominator) for v in value.numerators] == [Fraction(e) for e in expected]
    elif isinstance(value, np.ndarray):
        assert value.dtype == bool
        assert value.tolist() == expected
    else:
        assert all(e == value for e in expected)


@settings(max_examples=600, deadline=None)
@given(boolean_expression(2), accounts())
def test_conditions_agree_with_the_compiled_closure(text: str, data: tuple[list[dict[str, Any]], list[int], int]) -> None:
    assert_same(text, *data)


@settings(max_examples=300, deadline=None)
@given(number_expression(3), accounts())
def test_numbers_agree_with_the_compiled_closure(text: str, data: tuple[list[dict[str, Any]], list[int], int]) -> None:
    assert_same(text, *data)


@pytest.mark.parametrize("text", [
    "allocation / 2 > 1",  # division: a zero divisor is an error of one account
    "min(allocation, 5) > 1",  # function calls
    "account.limit_price > 1",  # a field with nulls has no column
])
def test_what_has_no_exact_columnar_form_declines(text: str) -> None:
    records = [{"id": "A", "intended": 5, "kind": "a", "flag": True, "n": 1, "limit_price": None, "received_at": None}]
    function = vectorise(compile_expression(text, SCOPE))
    if function is not None:
        with pytest.raises(Unsupported):
            function(frame(records, [0], 1))


def test_products_beyond_int64_decline_instead_of_wrapping() -> None:
    records = [{"id": "A", "intended": 5, "kind": "a", "flag": True, "n": 2**40, "limit_price": None,
                "received_at": None}]
    function = vectorise(compile_expression("account.n * account.n * account.n > 0", SCOPE))
    assert function is not None
    with pytest.raises(Unsupported):
        function(frame(records, [0], 1))
    assert closure_values("account.n * account.n * account.n > 0", records, [0], 1) == [True]


@pytest.mark.parametrize("text", ["account.n * 100000000000000000000 > 1", "account.n == 100000000000000000000",
                                  "account.n + 100000000000000000000 > 0", "account.n < 0.000000000000000000001"])
def test_constants_beyond_int64_decline_even_over_a_column_of_zeros(text: str) -> None:
    records = [{"id": "A", "intended": 5, "kind": "a", "flag": True, "n": 0, "limit_price": None, "received_at": None}]
    function = vectorise(compile_expression(text, SCOPE))
    assert function is not None
    with pytest.raises(Unsupported):
        function(frame(records, [0], 1))
