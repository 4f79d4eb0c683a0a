"""Stage 1: expression text -> syntax tree (:mod:`.ast`), or located syntax diagnostics.

This is the only place that talks to the parser (:mod:`.lalr`, running the tables of the parser
Lark builds from the grammar). Its failures are translated here, exactly once, into :class:`~fairalloc.errors.Diagnostic` values with the stable code ``expr-syntax`` and a message
that says in words what was expected. Offsets are 0-based character offsets into the source; the
caller's ``locate`` turns them into ``file:line:column``.

Bounds: text longer than :data:`MAX_LENGTH` is refused before parsing (``expr-too-long``), and so
are brackets nested deeper than :data:`MAX_DEPTH`, found by a linear scan (``expr-too-deep``).
The LALR parser builds its tree without recursion; converting it into our tree is an explicit
post-order walk that refuses operator nesting deeper than :data:`MAX_DEPTH` as well. Later stages
recurse over the tree, and the bound keeps them, and the generated Python code, far from any
recursion or nesting limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, TypeVar

from fairalloc.errors import Code
from fairalloc.numbers import MAX_NUMBER_TEXT, number_problem

from .ast import Binary, Call, Expr, ListExpr, Literal, Path, Problem, Unary
from .grammar import parser
from .lalr import END, Token, Tree, UnexpectedInput
from .runtime import EXACT

N = TypeVar("N", int, Decimal)

MAX_LENGTH = 4_000
"""Longest expression text accepted, in characters."""

MAX_DEPTH = 32
"""Deepest nesting accepted, counted twice over: open brackets, and levels of operators, calls
and lists in the tree (``a and b and c`` is 2 levels; a value alone is 0)."""


class ParseFailure(Exception):
    """Raised by :func:`parse` with the one problem that stopped it (parsing never resumes)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def parse(source: str) -> Expr:
    """Parse ``source`` into a tree or raise :class:`ParseFailure` with a located problem."""
    _check_length(source)
    _check_bracket_depth(source)
    try:
        tree = parser().parse(source)
    except UnexpectedInput as error:
        raise ParseFailure(_translate(error, source)) from None
    return _build(tree)


def _check_length(source: str) -> None:
    if len(source) > MAX_LENGTH:
        raise ParseFailure(
            Problem(
                "expr-too-long",
                f"expression is {len(source)} characters long; the limit is {MAX_LENGTH}",
                MAX_LENGTH,
                "split it into smaller named conditions",
            )
        )


def _check_bracket_depth(source: str) -> None:
    """Refuse bracket nesting beyond MAX_DEPTH, skipping string literals, in one linear pass."""
    depth = 0
    quote: str | None = None
    escaped = False
    for offset, char in enumerate(source):
        if quote is not None:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote or char == "\n":
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "([":
            depth += 1
            if depth > MAX_DEPTH:
                raise ParseFailure(_too_deep(offset))
        elif char in ")]":
            depth = max(0, depth - 1)


def _too_deep(offset: int) -> Problem:
    return Problem(
        "expr-too-deep",
        f"expression nests deeper than {MAX_DEPTH} levels",
        offset,
        "split it into smaller named conditions",
    )


# ---------------------------------------------------------------------------------------------
# Tree building: an explicit post-order walk over the parse tree (no recursion, so no depth limit).


def _build(tree: Any) -> Expr:
    results: dict[int, tuple[Expr, int]] = {}  # id(parse tree) -> (node, depth)
    stack: list[tuple[Any, bool]] = [(tree, False)]
    while stack:
        item, ready = stack.pop()
        if isinstance(item, Token):
            continue
        assert isinstance(item, Tree)
        if not ready:
            stack.append((item, True))
            stack.extend((child, False) for child in reversed(item.children) if isinstance(child, Tree))
            continue
        subtrees = [results.pop(id(child)) for child in item.children if isinstance(child, Tree)]
        tokens = [child for child in item.children if isinstance(child, Token)]
        node = _make(str(item.data), tokens, [node for node, _ in subtrees])
        nested = max((d for _, d in subtrees), default=0)
        depth = nested if isinstance(node, (Literal, Path)) or item.data == "group" else nested + 1
        if depth > MAX_DEPTH:
            raise ParseFailure(_too_deep(_operator_offset(node)))
        results[id(item)] = (node, depth)
    return results[id(tree)][0]


def _operator_offset(node: Expr) -> int:
    return node.op_start if isinstance(node, Binary) else node.start


def _make(rule: str, tokens: list[Token], subs: list[Expr]) -> Expr:
    if rule == "binary":
        op = tokens[0]
        name = "not in" if op.type == "NOT_IN" else str(op)
        return Binary(name, subs[0], subs[1], _pos(op))
    if rule == "unary":
        return Unary(str(tokens[0]), subs[0], _pos(tokens[0]))
    if rule == "group":
        return subs[0]
    if rule == "list":
        return ListExpr(tuple(subs), _pos(tokens[0]))
    if rule == "call":
        return Call(str(tokens[0]), tuple(subs), _pos(tokens[0]))
    if rule == "path":
        names = [token for token in tokens if token.type == "NAME"]
        return Path(tuple(str(t) for t in names), tuple(_pos(t) for t in names))
    assert len(tokens) == 1, rule
    return _make_token(tokens[0])


def _digits(text: str, start: int) -> str:
    """A number literal's digits, refused before conversion when there are too many of them."""
    if len(text) > MAX_NUMBER_TEXT:
        raise ParseFailure(Problem(Code.EXPR_NUMBER_RANGE, f"a number written with more than {MAX_NUMBER_TEXT} characters",
                                   start, "see the limits on numbers in docs/policy-language.md"))
    return text.replace("_", "")


def _bounded(value: N, text: str, start: int) -> N:
    problem = number_problem(value)
    if problem is not None:
        raise ParseFailure(Problem(Code.EXPR_NUMBER_RANGE, f"the number {text} {problem}", start,
                                   "see the limits on numbers in docs/policy-language.md"))
    return value


def _make_token(token: Token) -> Literal:
    text = str(token)
    start = _pos(token)
    kind = token.type
    if kind == "INTEGER":
        return Literal(_bounded(int(_digits(text, start)), text, start), text, start)
    if kind == "DECIMAL":
        return Literal(_bounded(Decimal(_digits(text, start)), text, start), text, start)
    if kind == "PERCENT":
        number = Decimal(_digits(text[:-1], start))
        return Literal(_bounded(number, text, start).scaleb(-2, EXACT), text, start)
    if kind == "STRING":
        return Literal(_decode_string(text, start), text, start)
    if kind == "TRUE":
        return Literal(True, text, start)
    if kind == "FALSE":
        return Literal(False, text, start)
    if kind == "NULL":
        return Literal(None, text, start)
    raise AssertionError(f"unexpected token {kind}")


def _pos(token: Token) -> int:
    return token.start_pos


_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r"}


def _decode_string(text: str, start: int) -> str:
    """Decode a quoted literal's escapes: \\\\ \\" \\' \\n \\t \\r \\uXXXX; anything else is an error."""
    body = text[1:-1]
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        code = body[index + 1]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            index += 2
            continue
        point = _hex_escape(body, index)
        if point is not None:
            low = _hex_escape(body, index + 6) if 0xD800 <= point <= 0xDBFF else None
            if low is not None and 0xDC00 <= low <= 0xDFFF:
                out.append(chr(0x10000 + ((point - 0xD800) << 10) + (low - 0xDC00)))
                index += 12
                continue
            if 0xD800 <= point <= 0xDFFF:
                raise ParseFailure(
                    Problem(
                        "expr-syntax",
                        f"'\\u{body[index + 2 : index + 6]}' is half of a surrogate pair, not a character",
                        start + 1 + index,
                        "write the character itself, or both halves of the pair, as in \\ud83d\\ude00",
                    )
                )
            out.append(chr(point))
            index += 6
            continue
        raise ParseFailure(
            Problem(
                "expr-syntax",
                f"unknown escape '\\{code}' in string",
                start + 1 + index,
                "use \\\\ \\\" \\' \\n \\t \\r or \\uXXXX",
            )
        )
    return "".join(out)


def _hex_escape(body: str, index: int) -> int | None:
    """The code point of a ``\\uXXXX`` escape starting at ``body[index]``, or None if there is none.

    Text must be encodable (it is printed, hashed and written as UTF-8), so a UTF-16 surrogate
    is only accepted as one half of a pair that the caller combines into one character."""
    digits = body[index + 2 : index + 6]
    if body[index : index + 2] != "\\u" or len(digits) != 4:
        return None
    if not all(c in "0123456789abcdefABCDEF" for c in digits):
        return None
    return int(digits, 16)


# ---------------------------------------------------------------------------------------------
# Parse failure -> Problem

_VALUE_STARTERS = frozenset(
    {"INTEGER", "DECIMAL", "PERCENT", "STRING", "NAME", "TRUE", "FALSE", "NULL", "LPAR", "LBRACKET"}
)
_OPERATORS = frozenset({"OR", "AND", "IN", "NOT_IN", "COMPARE", "PLUS", "MINUS", "STAR", "SLASH"})
_WORDS = {
    "INTEGER": "a number",
    "DECIMAL": "a number",
    "PERCENT": "a percentage",
    "STRING": "a string",
    "NAME": "a name",
    "TRUE": "'true'",
    "FALSE": "'false'",
    "NULL": "'null'",
    "OR": "'or'",
    "AND": "'and'",
    "NOT": "'not'",
    "IN": "'in'",
    "NOT_IN": "'not in'",
    "COMPARE": "a comparison",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LBRACKET": "'['",
    "RBRACKET": "']'",
    "COMMA": "','",
    "DOT": "'.'",
    "$END": "the end of the expression",
}
_CHAR_HINTS = {
    "=": "use '==' to compare",
    "&": "use 'and'",
    "|": "use 'or'",
    "!": "use 'not', or '!=' for 'not equal'",
    "%": "'%' only marks a percentage literal, as in 2.5%",
    '"': "the string is not closed: end it with the same quote on the same line",
    "'": "the string is not closed: end it with the same quote on the same line",
    "_": "names start with a letter",
    ".": "write decimals with a digit before the point, as in 0.5",
}


def expected_words(expected: Sequence[str] | frozenset[str] | set[str]) -> str:
    """Say in words what the parser would have accepted, e.g. "a value or ')'"."""
    names = set(expected)
    parts: list[str] = []
    if "INTEGER" in names:
        parts.append("a value")
        names -= _VALUE_STARTERS | {"MINUS", "NOT"}
    if names & {"STAR", "AND", "OR", "COMPARE"}:
        parts.append("an operator")
        names -= _OPERATORS
    end = "$END" in names
    names.discard("$END")
    parts.extend(sorted({_WORDS.get(name, name) for name in names}))
    if end:
        parts.append(_WORDS["$END"])
    if len(parts) <= 1:
        return "".join(parts) or "nothing more"
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def _translate(error: UnexpectedInput, source: str) -> Problem:
    """The problem of a parse that stopped: on a character, on a token, or at the end. The
    terminals expected are those the parser would really accept where it stopped (LALR's own
    look-ahead set can include terminals merged from other states: a ')' with no '(' open)."""
    token = error.token
    if token is None:
        offset = error.pos
        char = source[offset]
        expected = expected_words(error.accepted)
        hint = _CHAR_HINTS.get(char, "remove it")
        if char == "!" and source[offset + 1 : offset + 2] == "=":
            hint = "'!=' needs values on both sides"
        return Problem("expr-syntax", f"unexpected character {char!r}; expected {expected}", offset, hint)
    if token.type != END:
        return Problem(
            "expr-syntax",
            f"unexpected {_describe(token)}; expected {expected_words(error.accepted)}",
            _pos(token),
            _token_hint(token, error.accepted),
        )
    offset = len(source.rstrip())
    expected = expected_words(error.accepted)
    message = "empty expression" if not source.strip() else "the expression ends too early"
    return Problem("expr-syntax", f"{message}; expected {expected}", offset, "complete the expression")


def _describe(token: Token) -> str:
    if token.type == "NAME":
        return f"name '{token}'"
    if token.type in ("INTEGER", "DECIMAL", "PERCENT"):
        return f"number {token}"
    if token.type == "STRING":
        return f"string {token}"
    return f"'{token}'"


def _token_hint(token: Token, expected: set[str]) -> str:
    if token.type in ("COMPARE", "IN", "NOT_IN") and not expected & {"COMPARE", "IN"}:
        return "comparisons do not chain: write 'a < b and b < c'"
    if token.type == "LPAR" and "NAME" not in expected:
        return "only built-in functions can be called, by their bare name"
    if "NAME" in expected or "INTEGER" in expected:
        return "a value is missing here"
    if token.type in _VALUE_STARTERS:
        return "an operator is missing between two values"
    return "remove it or add what is missing before it"

