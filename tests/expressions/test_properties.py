"""Property tests: compiled code against the reference evaluator on random well-typed expressions
and random data; fast path against checked path; results independent of the decimal context."""

from __future__ import annotations

import datetime
import decimal
import functools
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairalloc.errors import Location, PolicyError
from fairalloc.expressions import ExpressionRuntimeError, compile_expression
from fairalloc.expressions.check import check
from fairalloc.expressions.codegen import generate
from fairalloc.expressions.optimize import fold
from fairalloc.expressions.ast import unparse
from fairalloc.expressions.parse import parse

from .cases import scope
from .reference import RefError, evaluate, same

NUMBER_FIELDS = ["allocation", "account.intended", "account.assets", "account.limit_price", "fill.ratio", "order.limit_price"]
STRING_FIELDS = ["account.type", "account.nickname"]
BOOLEAN_FIELDS = ["account.restricted_person", "account.flag"]
SCOPE = scope()

ints = st.integers(min_value=0, max_value=10**6).map(str)
decimals = st.tuples(st.integers(0, 10**4), st.integers(1, 10**4)).map(lambda t: f"{t[0]}.{t[1]}")
percents = st.tuples(st.integers(0, 200), st.integers(0, 99)).map(lambda t: f"{t[0]}.{t[1]}%")


@functools.cache
def numbers(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(NUMBER_FIELDS), ints, decimals, percents)
    if depth == 0:
        return leaf
    sub = numbers(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda s: f"-{s}"),
        st.tuples(st.sampled_from(["abs", "floor", "ceil"]), sub).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(["min", "max"]), sub, sub).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(sub, st.integers(-3, 4)).map(lambda t: f"round({t[0]}, {t[1]})" if t[1] >= 0 else f"round({t[0]}, -{-t[1]})"),
        st.tuples(st.sampled_from(["round_lot", "ceil_lot"]), sub, st.sampled_from(["100", "0.25", "1"]))
        .map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(st.sampled_from(["account.limit_price", "order.limit_price"]), sub).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
        strings(0).map(lambda s: f"len({s})"),
        st.tuples(moments(), moments()).map(lambda t: f"days_between({t[0]}, {t[1]})"),
    )


DATE_LEAVES = ["order.trade_date", "account.opened_on", "date('2026-03-02')", "date('2025-12-31')"]
TIMESTAMP_LEAVES = [
    "order.entered_at",
    "account.received_at",
    "timestamp('2026-03-02T09:30:00Z')",
    "timestamp('2026-03-01T23:30:00-05:00')",
]


@functools.cache
def moments() -> st.SearchStrategy[str]:
    """Date or timestamp expressions (min/max keep the kind)."""
    dates = st.sampled_from(DATE_LEAVES)
    stamps = st.sampled_from(TIMESTAMP_LEAVES)
    return st.one_of(
        dates,
        stamps,
        st.tuples(st.sampled_from(["min", "max"]), dates, dates).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(st.sampled_from(["min", "max"]), stamps, stamps).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
    )


@functools.cache
def strings(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(STRING_FIELDS), st.sampled_from(["'a'", "'B'", "\"ab\"", "''"]))
    if depth == 0:
        return leaf
    sub = strings(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(st.sampled_from(["lower", "upper"]), sub).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(sub, sub).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
    )


@functools.cache
def booleans(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(BOOLEAN_FIELDS + ["true", "false"]))
    compare_numbers = st.tuples(numbers(2), st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), numbers(2))
    compare_strings = st.tuples(strings(1), st.sampled_from(["==", "!=", "<", ">="]), strings(1))
    compare_dates = st.tuples(st.sampled_from(DATE_LEAVES), st.sampled_from(["==", "<", ">="]), st.sampled_from(DATE_LEAVES))
    compare_stamps = st.tuples(
        st.sampled_from(TIMESTAMP_LEAVES), st.sampled_from(["!=", "<=", ">"]), st.sampled_from(TIMESTAMP_LEAVES)
    )
    comparisons = st.one_of(compare_numbers, compare_strings, compare_dates, compare_stamps).map(
        lambda t: f"{t[0]} {t[1]} {t[2]}"
    )
    membership = st.one_of(
        st.tuples(numbers(1), st.sampled_from(["in", "not in"])).map(lambda t: f"{t[0]} {t[1]} [0, 1, 2.5, 100]"),
        st.tuples(strings(1), st.sampled_from(["in", "not in"])).map(lambda t: f"{t[0]} {t[1]} ['a', 'ab']"),
        st.tuples(strings(1), st.sampled_from(["in", "not in"])).map(lambda t: f"{t[0]} {t[1]} account.tags"),
    )
    starts = st.tuples(strings(1), strings(0)).map(lambda t: f"starts_with({t[0]}, {t[1]})")
    if depth == 0:
        return st.one_of(leaf, comparisons, membership, starts)
    sub = booleans(depth - 1)
    return st.one_of(
        leaf,
        comparisons,
        membership,
        starts,
        st.tuples(sub, st.sampled_from(["and", "or"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda s: f"not ({s})"),
    )


def number_values(nullable: bool) -> st.SearchStrategy[Any]:
    exact = st.one_of(
        st.just(0),
        st.integers(-1000, 1000),
        st.sampled_from([1, 100, 10**30]),
        st.tuples(st.integers(-10**6, 10**6), st.integers(-6, 2)).map(lambda t: Decimal(t[0]).scaleb(t[1], decimal.Context(prec=100))),
    )
    return st.one_of(st.none(), exact) if nullable else exact


text_values = st.sampled_from(["a", "ab", "B", "", "Ab"])
days = st.dates(datetime.date(2025, 12, 25), datetime.date(2026, 3, 10))
zones = st.sampled_from([datetime.timezone.utc, datetime.timezone(datetime.timedelta(hours=-5)), datetime.timezone(datetime.timedelta(hours=9))])
instants = st.datetimes(datetime.datetime(2025, 12, 25), datetime.datetime(2026, 3, 10), timezones=zones)

data = st.fixed_dictionaries(
    {
        "allocation": number_values(False),
        "account": st.fixed_dictionaries(
            {
                "intended": number_values(False),
                "assets": number_values(False),
                "limit_price": number_values(True),
                "type": text_values,
                "nickname": st.one_of(st.none(), text_values),
                "restricted_person": st.booleans(),
                "flag": st.one_of(st.none(), st.booleans()),
                "tags": st.lists(text_values, max_size=3),
                "opened_on": days,
                "received_at": st.one_of(st.none(), instants),
            }
        ),
        "fill": st.fixed_dictionaries({"ratio": number_values(False)}),
        "order": st.fixed_dictionaries(
            {"limit_price": number_values(True), "trade_date": days, "entered_at": instants}
        ),
    }
)

expressions = st.one_of(booleans(2), numbers(3), strings(2))
ROOT_ORDER = ("order", "security", "statement", "fill", "account", "allocation")


def run(fn: Any, roots: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "value", fn(*(roots.get(name) for name in ROOT_ORDER))
    except ExpressionRuntimeError as error:
        diagnostic = error.diagnostics[0]
        return diagnostic.code, diagnostic.location.column


def locate(offset: int) -> Location:
    return Location(line=1, column=offset + 1)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=expressions, roots=data)
def test_compiled_code_matches_the_reference_evaluator(source: str, roots: dict[str, Any]) -> None:
    try:
        compiled = compile_expression(source, scope=SCOPE, locate=locate)
    except PolicyError as error:
        # only constants evaluated at compile time may fail, with a run-time code
        assert set(error.codes) <= {"expr-division-by-zero", "expr-invalid-argument"}, error
        return
    outcome, value = run(compiled.fn, roots)
    try:
        expected = evaluate(parse(source), roots)
    except RefError as error:
        assert (outcome, value) == (error.code, error.offset + 1), source
        return
    assert outcome == "value", f"{source}: {outcome} at column {value}"
    assert same(value, expected), f"{source}: {value!r} != reference"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=expressions, roots=data)
def test_fast_path_equals_checked_path_and_ignores_decimal_context(source: str, roots: dict[str, Any]) -> None:
    checked, problems = check(parse(source), SCOPE, None)
    assert problems == []
    tree, problems = fold(checked.tree)
    if problems:
        return
    code = generate(tree, locate)
    fast = run(code.fast, roots)
    assert fast == run(code.checked, roots)
    with decimal.localcontext() as context:
        context.prec = 2
        context.rounding = decimal.ROUND_UP
        hostile = run(code.fast, roots)
    assert hostile == fast
    assert str(hostile[1]) == str(fast[1])
    assert not isinstance(fast[1], float)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=expressions)
def test_unparse_round_trips(source: str) -> None:
    printed = unparse(parse(source))
    assert unparse(parse(printed)) == printed


ALPHABET = st.sampled_from(
    list("()[],.+-*/<>=!%'\"\\_ \n\t0123456789")
    + ["and", "or", "not", "in", "true", "null", "account", ".type", "allocation", "min(", "date(", "1%", "é", "\x00"]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.one_of(st.text(max_size=60), st.lists(ALPHABET, max_size=40).map("".join)))
def test_any_text_either_compiles_or_raises_located_policy_errors(source: str) -> None:
    try:
        compile_expression(source, scope=SCOPE, locate=locate)
    except PolicyError as error:
        assert error.diagnostics
        for diagnostic in error.diagnostics:
            assert diagnostic.code.startswith("expr-")
            assert diagnostic.hint
            column = diagnostic.location.column
            assert column is not None and 1 <= column <= len(source) + 1


@settings(max_examples=300, deadline=None)
@given(
    op=st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
    factor=st.one_of(percents, decimals, st.sampled_from(["1%", "0.5", "2.5%", "150%", "0.001"])),
    mirrored=st.booleans(),
    product_first=st.booleans(),
    allocation=number_values(False),
    intended=number_values(True),
)
def test_cross_multiplied_comparisons_equal_the_general_path(
    op: str, factor: str, mirrored: bool, product_first: bool, allocation: Any, intended: Any
) -> None:
    product = f"{factor} * account.intended" if product_first else f"account.intended * {factor}"
    source = f"{product} {op} allocation" if mirrored else f"allocation {op} {product}"
    checked, _ = check(parse(source), SCOPE, None)
    tree, _ = fold(checked.tree)
    code = generate(tree, locate)
    roots = {"allocation": allocation, "account": {"intended": intended}}
    fast = run(code.fast, roots)
    assert fast == run(code.checked, roots)
    try:
        expected = evaluate(parse(source), roots)
    except RefError as error:
        assert fast == (error.code, error.offset + 1)
    else:
        assert fast == ("value", expected)
