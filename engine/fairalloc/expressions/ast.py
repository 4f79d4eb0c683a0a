"""The expression syntax tree: immutable records (msgspec structs) produced by :mod:`.parse`.

Every node records ``start``, the 0-based character offset of its first character in the source,
so a later stage can locate a diagnostic without the source text. Operators also record where the
operator itself is (``op_start``), because an operator's type error points there.

The checker (:mod:`.check`) returns a copy of the tree with ``type`` filled in on every node;
``type`` takes no part in equality, so a parsed and a checked tree of the same text compare equal.
:func:`unparse` prints a tree back as canonical source text (minimal parentheses), which the tests
use for round trips and a formatter can use as is.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any, Union

import msgspec

from fairalloc.structs import ComparedWithout

from .types import Type

Value = Union[int, Decimal, str, bool, None, datetime.date, datetime.datetime, tuple["Value", ...]]
"""A runtime value of the language (lists are tuples once compiled)."""


class _Node(ComparedWithout, frozen=True):
    """A node's equality and hash: its fields but ``type``."""

    left_out = "type"


class Literal(_Node, frozen=True):
    """A constant: number, percent, string, boolean, null, or a ``date(...)``/``timestamp(...)``."""

    value: Value
    text: str
    start: int
    type: Type | None = None


class ListExpr(_Node, frozen=True):
    """A list display ``[a, b, c]``."""

    items: tuple[Expr, ...]
    start: int
    type: Type | None = None


class Path(_Node, frozen=True):
    """A name or dotted path: ``allocation``, ``account.type``. ``offsets`` has one per part."""

    parts: tuple[str, ...]
    offsets: tuple[int, ...]
    type: Type | None = None

    @property
    def start(self) -> int:
        return self.offsets[0]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


class Call(_Node, frozen=True):
    """A call of a built-in function ``name(args...)``; ``start`` is the name's first character."""

    name: str
    args: tuple[Expr, ...]
    start: int
    type: Type | None = None


class Unary(_Node, frozen=True):
    """``not x`` or ``-x``; ``start`` is the operator's offset."""

    op: str
    operand: Expr
    start: int
    type: Type | None = None


class Binary(_Node, frozen=True):
    """``left op right``; ``op`` is normalised (``not in`` with one space)."""

    op: str
    left: Expr
    right: Expr
    op_start: int
    type: Type | None = None

    @property
    def start(self) -> int:
        return self.left.start


Expr = Union[Literal, ListExpr, Path, Call, Unary, Binary]


class Problem(msgspec.Struct, frozen=True):
    """A diagnostic before it is located: code, message, offending source offset, fix hint.

    Stages work in offsets into the expression text; the facade turns each into a
    :class:`~fairalloc.errors.Diagnostic` with the caller's ``locate``.
    """

    code: str
    message: str
    offset: int
    hint: str | None = None

# Binding strength of each binary operator, weakest first; unary operators sit between.
PRECEDENCE: dict[str, int] = {
    "or": 1,
    "and": 2,
    "==": 4,
    "!=": 4,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "in": 4,
    "not in": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
}
NOT_PRECEDENCE = 3
NEGATION_PRECEDENCE = 7
ATOM_PRECEDENCE = 8


def precedence(node: Expr) -> int:
    """How tightly ``node`` binds when printed: used to decide where parentheses are needed."""
    if isinstance(node, Binary):
        return PRECEDENCE[node.op]
    if isinstance(node, Unary):
        return NOT_PRECEDENCE if node.op == "not" else NEGATION_PRECEDENCE
    return ATOM_PRECEDENCE


def unparse(node: Expr) -> str:
    """Print ``node`` as source text that parses back to an equal tree (offsets aside).

    Binary operators are left-associative, comparisons do not chain: a right operand of equal
    precedence, or any comparison operand that is itself a comparison, gets parentheses.
    """
    if isinstance(node, Literal):
        return node.text
    if isinstance(node, Path):
        return node.dotted
    if isinstance(node, ListExpr):
        return "[" + ", ".join(unparse(item) for item in node.items) + "]"
    if isinstance(node, Call):
        return node.name + "(" + ", ".join(unparse(arg) for arg in node.args) + ")"
    if isinstance(node, Unary):
        mine = precedence(node)
        inner = _wrap(node.operand, precedence(node.operand) < mine)
        return f"not {inner}" if node.op == "not" else f"-{inner}"
    mine = PRECEDENCE[node.op]
    comparison = mine == PRECEDENCE["=="]
    left = _wrap(node.left, precedence(node.left) < mine or (comparison and precedence(node.left) == mine))
    right = _wrap(node.right, precedence(node.right) <= mine)
    return f"{left} {node.op} {right}"


def _wrap(node: Expr, needed: bool) -> str:
    text = unparse(node)
    return f"({text})" if needed else text


def operands(node: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of ``node``, left to right (run-time errors name them)."""
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Call):
        return node.args
    if isinstance(node, ListExpr):
        return node.items
    return ()
