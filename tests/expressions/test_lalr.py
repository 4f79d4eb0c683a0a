"""The parser of :mod:`fairalloc.expressions.lalr`, running the shipped tables, against the parser
Lark builds from the grammar: the same tree for every text Lark parses, and for every other text
the same place of failure, the same token there and the same terminals accepted instead."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lark import Token as LarkToken
from lark import Tree as LarkTree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from fairalloc.expressions import _lalr, grammar, lalr

LARK = grammar.built(grammar.grammar_text())
FRAGMENTS = [
    "account", ".", "x", "fill", "ratio", "order", "side", "tags", "in", "not", "not in", "and", "or", "true",
    "false", "null", "==", "!=", "<", "<=", ">", ">=", "=", "+", "-", "*", "/", "(", ")", "[", "]", ",", "1",
    "2.5", "1_000", "25%", "0.5%", "'buy'", '"x"', "'unclosed", "\\", "!", "&", "|", "%", "_x", "é", "notin",
    "andx", "or1", "inx", "f", "max", "min", "round", " ", "  ", "\n", "\t", "1.", ".5", "1__0", "'a\\'b'",
]


def lark_outcome(source: str) -> Any:
    try:
        return shape(LARK.parse(source))
    except UnexpectedInput as error:
        accepted = set(error.interactive_parser.accepts())
        if isinstance(error, UnexpectedCharacters):
            return ("stop", error.pos_in_stream, None, accepted)
        assert isinstance(error, UnexpectedToken)
        token = error.token
        return ("stop", token.start_pos, (token.type, str(token), token.start_pos), accepted)


def our_outcome(parser: lalr.Parser, source: str) -> Any:
    try:
        return shape(parser.parse(source))
    except lalr.UnexpectedInput as error:
        token = error.token
        return ("stop", error.pos, None if token is None else (token.type, token.value, token.start_pos),
                error.accepted)


def shape(node: Any) -> Any:
    if isinstance(node, (LarkTree, lalr.Tree)):
        return (str(node.data), [shape(child) for child in node.children])
    assert isinstance(node, (LarkToken, lalr.Token))
    return (node.type, str(node), node.start_pos)


SHIPPED = grammar.parser()
TAKEN = lalr.Parser(grammar.tables(grammar.grammar_text()), {"NAME": grammar._keyword})


@pytest.mark.parametrize("source", [
    'account.type == "institutional" and allocation < 1% * account.intended and fill.ratio < 0.5',
    "not (account.x in [1, 2.5, -3]) or order.side != 'buy'", "a and and b", "f(x, y", "1 +", "true and false",
    "account.tags contains 'x'", "\u00e9l\u00e8ve == 1", "", "   ", "x not in [1,]", "f()", "[]", "a.in", "1 < 2 < 3",
    "not not x", "- - 1", "(((x)))", "x = 1", "'abc", "a.b.c.d", "max(1, 2,)", "f(x)(y)", "1.5.2", "not\nin",
])
def test_a_text_parses_as_lark_parses_it(source: str) -> None:
    expected = lark_outcome(source)
    assert our_outcome(SHIPPED, source) == expected
    assert our_outcome(TAKEN, source) == expected


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
def test_generated_texts_parse_as_lark_parses_them(source: str) -> None:
    assert our_outcome(SHIPPED, source) == lark_outcome(source)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map(" ".join))
def test_generated_spaced_texts_parse_as_lark_parses_them(source: str) -> None:
    assert our_outcome(SHIPPED, source) == lark_outcome(source)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab01 .,()[]'\"=<>!+-*/%_notiadrf\n", max_size=20))
def test_generated_characters_parse_as_lark_parses_them(source: str) -> None:
    assert our_outcome(SHIPPED, source) == lark_outcome(source)


def test_the_shipped_tables_are_those_lark_builds_from_the_grammar() -> None:
    """Lark numbers its states differently from one process to the next: the tables are held to
    the grammar by its digest and the installed Lark's version, and to Lark's parser above."""
    import hashlib

    import lark

    digest = hashlib.sha256(grammar.grammar_text().encode("utf-8")).hexdigest()
    assert (_lalr.GRAMMAR_SHA256, _lalr.LARK_VERSION) == (digest, lark.__version__), (
        "regenerate the tables: python -m fairalloc.expressions")
    assert set(_lalr.TABLES) == set(grammar.tables(grammar.grammar_text()))


def test_parsing_with_the_shipped_tables_imports_no_lark() -> None:
    code = ("import sys\nfrom fairalloc.expressions import ROOTS, Scope, Type, compile_expression\n"
            "compile_expression('fill.ratio < 50% and order.quantity in [1, 2]', scope=Scope.build(ROOTS), "
            "expect=Type.BOOLEAN)\n"
            "print(sorted(m for m in sys.modules if m == 'lark' or m.startswith('lark.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@given(st.text(min_size=1))
def test_an_escaped_string_is_matched_as_itself(text: str) -> None:
    assert lalr.literal(re.escape(text)) == text


@pytest.mark.parametrize("pattern", sorted(_lalr.TABLES["terminals"].values()))
def test_a_terminal_taken_for_a_string_matches_only_it(pattern: str) -> None:
    text = lalr.literal(pattern)
    if text is not None:
        assert re.fullmatch(pattern, text)
        for extra in ("a", "0", " ", "("):
            found = re.match(pattern, text + extra)
            assert found is not None and found.group(0) == text


@pytest.mark.parametrize("pattern", [r"\d", r"a\b", "(?i)or", "[ab]", "a|b", "a+", "x\\"])
def test_a_pattern_that_is_no_string_is_compiled(pattern: str) -> None:
    assert lalr.literal(pattern) is None
