"""Stage 2: name and type resolution, suggestions, collecting every problem."""

from __future__ import annotations

import pytest

from fairalloc.errors import PolicyError
from fairalloc.expressions import Type, compile_expression
from fairalloc.errors import distance, suggest
from fairalloc.expressions.check import check
from fairalloc.expressions.parse import parse

from .cases import scope


def typed(source: str) -> Type:
    checked, problems = check(parse(source), scope(), None)
    assert problems == []
    assert checked.tree.type is not None
    return checked.tree.type


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2", Type.NUMBER),
        ("account.limit_price", Type.NUMBER.or_null()),
        ("account.limit_price * 2", Type.NUMBER),
        ("coalesce(account.limit_price, 0)", Type.NUMBER),
        ("coalesce(account.limit_price, order.limit_price)", Type.NUMBER.or_null()),
        ("coalesce(null, 'x')", Type.STRING),
        ("[1, null]", Type.list_of(Type.NUMBER.or_null())),
        ("[]", Type.list_of(Type.ANY)),
        ("account.tags", Type.list_of(Type.STRING)),
        ("min(order.trade_date, account.opened_on)", Type.DATE),
        ("max(1, account.limit_price)", Type.NUMBER),
        ("days_between(order.trade_date, order.entered_at)", Type.NUMBER),
        ("starts_with(account.type, 'x')", Type.BOOLEAN),
        ("account.extra + 1", Type.NUMBER),
        ("account.extra", Type.ANY),
        ("date('2026-03-02')", Type.DATE),
        ("timestamp('2026-03-02T09:30:00.5+01:00')", Type.TIMESTAMP),
        ("null", Type.NULL),
    ],
)
def test_expression_types(source: str, expected: Type) -> None:
    assert typed(source) == expected


def test_all_problems_are_collected_and_do_not_cascade() -> None:
    source = "account.tpye == 'x' and fill.ratoi < 0.5 and lower(1) == 'y' and nosuch > 2"
    with pytest.raises(PolicyError) as caught:
        compile_expression(source, scope=scope(), expect=Type.BOOLEAN)
    got = [(d.code, d.location.column) for d in caught.value.diagnostics]
    assert got == [
        ("expr-unknown-field", 9),
        ("expr-unknown-field", 30),
        ("expr-type", 52),
        ("expr-unknown-name", 66),
    ]


def test_unknown_field_message_and_hint() -> None:
    with pytest.raises(PolicyError) as caught:
        compile_expression("account.tpye == 'x'", scope=scope(), expect=Type.BOOLEAN)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.message == "unknown field 'account.tpye'"
    assert diagnostic.hint == "did you mean 'account.type'?"


def test_root_not_allowed_names_the_allowed_roots() -> None:
    with pytest.raises(PolicyError) as caught:
        compile_expression("fill.ratio < 1", scope=scope({"account", "allocation"}), expect=Type.BOOLEAN)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "expr-unknown-root"
    assert "account, allocation" in diagnostic.message


def test_names_used() -> None:
    compiled = compile_expression(
        "account.type == 'x' and allocation < 1% * account.intended and fill.ratio < 0.5 and account.type != 'y'",
        scope=scope(),
        expect=Type.BOOLEAN,
    )
    assert compiled.names == frozenset({"account.type", "allocation", "account.intended", "fill.ratio"})
    assert compiled.roots == frozenset({"account", "allocation", "fill"})


def test_expect_none_accepts_anything() -> None:
    assert compile_expression("account.type", scope=scope()).type == Type.STRING


def test_nullable_result_allowed_when_expected_nullable() -> None:
    compiled = compile_expression("account.limit_price", scope=scope(), expect=Type.NUMBER.or_null())
    assert compiled.type == Type.NUMBER.or_null()


def test_distance() -> None:
    assert distance("type", "type") == 0
    assert distance("tpye", "type") == 1  # a swap is one edit
    assert distance("", "abc") == 3
    assert distance("intended", "intnded") == 1
    assert distance("kitten", "sitting") == 3


def test_suggest() -> None:
    assert suggest("tpye", ["type", "assets", "id"]) == "type"
    assert suggest("TYPE", ["type"]) == "type"
    assert suggest("zzzz", ["type", "id"]) is None
    assert suggest("ab", ["ac", "ad"]) == "ac"  # ties go to the first alphabetically
