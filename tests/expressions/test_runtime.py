"""Run-time semantics: exact numbers, no floats, independence from the thread's decimal context,
located run-time errors."""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest

from fairalloc.errors import ExitCode, FairallocError, Location
from fairalloc.expressions import DIVISION_PRECISION, ExpressionRuntimeError, Type, compile_expression

from .cases import scope

EXPRESSIONS = [
    "allocation / 7",
    "allocation * 3 + account.intended",
    "-allocation",
    "abs(-allocation)",
    "round(allocation / 3, 10)",
    "round_lot(allocation, 0.001)",
    "allocation < 1% * account.intended",
    "account.intended * 0.5 - allocation",
]
DATA = [
    {"allocation": Decimal("1.234567890123456789012345678901234567"), "account": {"intended": Decimal("9" * 40)}},
    {"allocation": 10**40 + 1, "account": {"intended": 7}},
    {"allocation": Decimal("-0.5"), "account": {"intended": Decimal("0.0000000001")}},
]


def run_all() -> list[object]:
    results: list[object] = []
    for source in EXPRESSIONS:
        compiled = compile_expression(source, scope=scope())
        results.extend(compiled.evaluate(**data) for data in DATA)
    return results


@contextmanager
def hostile_decimal_context() -> Iterator[None]:
    """A host application that set a tiny, truncating, trapping global decimal context."""
    with decimal.localcontext() as context:
        context.prec = 3
        context.rounding = decimal.ROUND_DOWN
        context.traps[decimal.Inexact] = True
        context.traps[decimal.Rounded] = True
        context.Emax = 10
        yield


@pytest.fixture
def hostile_context() -> Iterator[None]:
    with hostile_decimal_context():
        yield


def test_results_do_not_depend_on_the_thread_decimal_context() -> None:
    reference = run_all()
    with hostile_decimal_context():
        assert run_all() == reference
        assert [str(r) for r in run_all()] == [str(r) for r in reference]


def test_compiling_under_a_hostile_context_gives_the_same_constants(hostile_context: None) -> None:
    compiled = compile_expression("1 / 3 + 2.5% * 1234567.891", scope=scope())
    with decimal.localcontext(decimal.Context()):
        fresh = compile_expression("1 / 3 + 2.5% * 1234567.891", scope=scope())
    assert str(compiled.evaluate()) == str(fresh.evaluate())


def test_multiplication_and_addition_never_round() -> None:
    big = Decimal("1." + "3" * 60)
    compiled = compile_expression("allocation * allocation + allocation", scope=scope())
    exact = decimal.Context(prec=500)
    assert compiled.evaluate(allocation=big) == exact.add(exact.multiply(big, big), big)


def test_division_precision() -> None:
    third = compile_expression("1 / 3", scope=scope()).evaluate()
    assert isinstance(third, Decimal)
    assert len(third.as_tuple().digits) == DIVISION_PRECISION
    assert compile_expression("allocation / 8", scope=scope()).evaluate(allocation=1) == Decimal("0.125")
    assert type(compile_expression("allocation / 4", scope=scope()).evaluate(allocation=8)) is int


def test_no_float_ever_appears() -> None:
    sources = ["0.5 * 3", "7 / 2", "2.5%", "abs(-0.5)", "round(1 / 3, 4)", "floor(0.5)", "max(0.5, 1)"]
    for source in sources:
        result = compile_expression(source, scope=scope()).evaluate()
        assert not isinstance(result, float), source
        assert type(result) in (int, Decimal), source


def test_runtime_error_is_a_located_input_error() -> None:
    def locate(offset: int) -> Location:
        return Location("policy.yaml", 12, 9 + offset)

    compiled = compile_expression("allocation / account.intended > 1", scope=scope(), locate=locate)
    with pytest.raises(ExpressionRuntimeError) as caught:
        compiled.evaluate(allocation=1, account={"intended": 0})
    error = caught.value
    assert isinstance(error, FairallocError)
    assert error.exit_code == ExitCode.INVALID_INPUT
    (diagnostic,) = error.diagnostics
    assert diagnostic.code == "expr-division-by-zero"
    assert str(diagnostic.location) == "policy.yaml:12:20"
    assert diagnostic.hint


def test_floats_in_data_are_refused_where_they_fail() -> None:
    compiled = compile_expression("allocation + 1", scope=scope())
    with pytest.raises(ExpressionRuntimeError) as caught:
        compiled.evaluate(allocation=0.5)
    assert caught.value.codes == ["expr-bad-value"]


def test_evaluate_defaults_missing_roots_to_none() -> None:
    compiled = compile_expression("allocation == null", scope=scope(), expect=Type.BOOLEAN)
    assert compiled.evaluate() is True


def test_runtime_messages_name_the_operand_that_failed() -> None:
    compiled = compile_expression("allocation < 1% * account.intended", scope=scope(), expect=Type.BOOLEAN)
    with pytest.raises(ExpressionRuntimeError) as caught:
        compiled.evaluate(allocation=1, account={"intended": None})
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "expr-null"
    assert diagnostic.message.startswith("'account.intended' is null")
    assert diagnostic.location.column == 17
