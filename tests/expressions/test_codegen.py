"""Stage 4: generated code. The sandbox (no user text in code), fast path == checked path."""

from __future__ import annotations

import io
import keyword
import re
import tokenize
from decimal import Decimal

import pytest

from fairalloc.errors import Location, PolicyError
from fairalloc.expressions import ROOTS, Type, compile_expression
from fairalloc.expressions.ast import Literal
from fairalloc.expressions.check import check
from fairalloc.expressions.codegen import Generated, generate
from fairalloc.expressions.optimize import fold
from fairalloc.expressions.parse import parse

from .cases import scope

GENERATED_NAME = re.compile(r"_(?:[a-z]\d+|t\d+|make|fast|checked|type|int|Exception)\Z")


def generated(source: str) -> Generated:
    checked, problems = check(parse(source), scope(), None)
    assert problems == []
    tree, problems = fold(checked.tree)
    assert problems == []
    return generate(tree, lambda offset: Location(line=1, column=offset + 1))


def assert_only_generated_names(code: str) -> None:
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.NAME:
            assert (
                keyword.iskeyword(token.string) or token.string in ROOTS or GENERATED_NAME.match(token.string)
            ), f"unexpected name {token.string!r} in generated code"
        assert token.type not in (tokenize.STRING, tokenize.NUMBER), f"literal {token.string!r} in generated code"


HOSTILE_STRINGS = [
    "'); __import__(\"os\").system(\"echo pwned\"); ('",
    '"\\" + __import__(\'os\').getcwd() + \\""',
    "'\\n\\nimport os\\n'",
    "'\\\\'",
    "'\\u0027\\u0022'",
    "'{__class__}'",
    "'%s%r'",
    "'" + "x" * 3_000 + "'",
]


@pytest.mark.parametrize("literal", HOSTILE_STRINGS)
def test_string_literals_never_become_code(literal: str) -> None:
    source = f"account.type == {literal}"
    code = generated(source).source
    assert_only_generated_names(code)
    compiled = compile_expression(source, scope=scope(), expect=Type.BOOLEAN)
    text = parse(literal)
    assert isinstance(text, Literal) and isinstance(text.value, str)
    assert compiled.evaluate(account={"type": text.value}) is True
    assert compiled.evaluate(account={"type": "other"}) is False


@pytest.mark.parametrize(
    "source",
    [
        "account.type == 'institutional' and allocation < 1% * account.intended and fill.ratio < 0.5",
        "coalesce(account.limit_price, order.limit_price, 0) * 2 / 3 - -allocation >= round(1.5, 1)",
        "account.type in ['a', 'b'] or 'x' not in account.tags or not account.restricted_person",
        "days_between(order.trade_date, date('2026-03-02')) > 0 and account.extra == [1, 2]",
        "min(allocation, 2) < max(1, 3) and starts_with(upper(lower(account.type)), 'A')",
    ],
)
def test_generated_source_contains_only_generated_names(source: str) -> None:
    assert_only_generated_names(generated(source).source)


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os')",
        "account.__class__",
        "().__class__.__bases__",
        "account.type.__class__",
        "getattr(account, 'type')",
        "open('/etc/passwd')",
        "globals()",
        "type(account)",
        "account['type']",
        "account.type.upper()",
        "[x for x in account.tags]",
        "lambda x: x",
        "account.type; import os",
    ],
)
def test_python_is_unreachable(source: str) -> None:
    with pytest.raises(PolicyError) as caught:
        compile_expression(source, scope=scope())
    assert caught.value.codes[0] in {"expr-syntax", "expr-unknown-function", "expr-unknown-name"}


def test_generated_code_has_no_builtins() -> None:
    fast = compile_expression("allocation + 1", scope=scope()).fn
    assert fast.__globals__["__builtins__"] == {}


def test_cross_multiplied_comparison_agrees_with_general_path() -> None:
    compiled = compile_expression("allocation < 1% * account.intended", scope=scope(), expect=Type.BOOLEAN)
    general = generated("allocation < 1% * account.intended").checked
    for allocation in (0, 9, 10, 11, Decimal("9.99"), Decimal("10.00"), -1):
        for intended in (0, 999, 1000, 1001, Decimal("1000.5"), -1000):
            expected = general(None, None, None, None, {"intended": intended}, allocation)
            assert compiled.fn(None, None, None, None, {"intended": intended}, allocation) is expected


def test_fast_path_is_used_and_falls_back_only_on_failure() -> None:
    code = generated("allocation < 1% * account.intended").source
    assert "try:" in code and "except _Exception:" in code
    # the common case compares ints: `allocation * 100 < intended` without creating a Decimal
    assert re.search(r"allocation \* _c\d+ < account\[_k\d+\] if _type\(allocation\) is _int", code)
