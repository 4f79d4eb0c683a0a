"""The favoured-group expression: which accounts the review compares against the rest.

A deliberately tiny language, parsed here by hand and never evaluated by Python:

    expr   := or
    or     := and ("or" and)*
    and    := not ("and" not)*
    not    := "not" not | atom
    atom   := "(" expr ")" | ATTR [("==" | "!=") LITERAL]
    ATTR   := attr.NAME            (an account attribute column of allocations.csv)
    LITERAL:= "text" | 'text' | number | true | false

``attr.NAME`` alone is true when the value is a true-ish word (true, yes, y, 1). Comparisons are
textual after trimming and case-folding, so ``attr.proprietary == true`` matches ``TRUE``.
The special form ``each-account`` (handled by the caller) scans every account against the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fairalloc.errors import Code, Diagnostic, InputError, Location

EACH_ACCOUNT = "each-account"
TRUTHY = frozenset({"true", "yes", "y", "1", "t"})

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>\()|(?P<rparen>\))|(?P<op>==|!=)|
        (?P<string>"[^"]*"|'[^']*')|
        (?P<attr>attr\.[A-Za-z_][A-Za-z0-9_]*)|
        (?P<word>[A-Za-z0-9_.+-]+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Compare:
    attribute: str
    op: str  # "==", "!=" or "truthy"
    literal: str


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or"
    operands: tuple[Node, ...]


Node = Compare | Not | BoolOp


def _fail(text: str, column: int, message: str) -> InputError:
    return InputError(
        Diagnostic(
            Code.FORENSICS_BAD_FAVOURED,
            f"{message} in favoured-group expression {text!r}",
            Location(file="--favoured", line=1, column=column + 1),
            "e.g. 'attr.fee_basis == \"performance\"', 'attr.proprietary', 'each-account'",
        )
    )


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        position = 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if match is None or match.lastgroup is None:
                raise _fail(text, position, "unexpected character")
            kind = match.lastgroup
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            position = match.end()
        self.index = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise _fail(self.text, len(self.text), "unexpected end")
        self.index += 1
        return token

    def is_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "word" and token[1].lower() == word

    def parse(self) -> Node:
        node = self.parse_or()
        token = self.peek()
        if token is not None:
            raise _fail(self.text, token[2], f"unexpected {token[1]!r}")
        return node

    def parse_or(self) -> Node:
        operands = [self.parse_and()]
        while self.is_word("or"):
            self.take()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def parse_and(self) -> Node:
        operands = [self.parse_not()]
        while self.is_word("and"):
            self.take()
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def parse_not(self) -> Node:
        if self.is_word("not"):
            self.take()
            return Not(self.parse_not())
        return self.parse_atom()

    def parse_atom(self) -> Node:
        kind, value, column = self.take()
        if kind == "lparen":
            node = self.parse_or()
            closing = self.take()
            if closing[0] != "rparen":
                raise _fail(self.text, closing[2], "expected ')'")
            return node
        if kind != "attr":
            raise _fail(self.text, column, f"expected attr.NAME, found {value!r}")
        name = value.removeprefix("attr.")
        token = self.peek()
        if token is None or token[0] != "op":
            return Compare(name, "truthy", "")
        op = self.take()[1]
        lit_kind, literal, lit_column = self.take()
        if lit_kind == "string":
            literal = literal[1:-1]
        elif lit_kind != "word":
            raise _fail(self.text, lit_column, f"expected a literal, found {literal!r}")
        return Compare(name, op, literal)


def parse(text: str) -> Node:
    """Parse a favoured-group expression; errors are InputError with the column at fault."""
    if not text.strip():
        raise _fail(text, 0, "empty expression")
    return _Parser(text).parse()


def attributes_used(node: Node) -> set[str]:
    """Names of the account attributes an expression reads."""
    if isinstance(node, Compare):
        return {node.attribute}
    if isinstance(node, Not):
        return attributes_used(node.operand)
    return set().union(*(attributes_used(o) for o in node.operands))


def evaluate(node: Node, attributes: dict[str, str | None]) -> bool:
    """Whether an account with these attribute values belongs to the favoured group."""
    if isinstance(node, Compare):
        raw = attributes.get(node.attribute)
        value = (raw or "").strip().casefold()
        if node.op == "truthy":
            return value in TRUTHY
        equal = value == node.literal.strip().casefold()
        return equal if node.op == "==" else not equal
    if isinstance(node, Not):
        return not evaluate(node.operand, attributes)
    results = (evaluate(o, attributes) for o in node.operands)
    return all(results) if node.op == "and" else any(results)


def favoured_accounts(text: str, table: dict[str, list[str | None]], count: int) -> list[bool]:
    """Per account code, whether the expression ``text`` selects it.

    Raises InputError when the expression names an attribute that allocations.csv lacks.
    """
    node = parse(text)
    unknown = sorted(attributes_used(node) - set(table))
    if unknown:
        known = ", ".join(f"attr.{n}" for n in sorted(table)) or "none"
        raise InputError(
            Diagnostic(
                Code.FORENSICS_UNKNOWN_ATTRIBUTE,
                f"favoured-group expression uses attr.{unknown[0]}, "
                "which is not a column of allocations.csv",
                Location(file="--favoured", line=1),
                f"attributes in the file: {known}",
            )
        )
    return [
        evaluate(node, {name: values[code] for name, values in table.items()})
        for code in range(count)
    ]
