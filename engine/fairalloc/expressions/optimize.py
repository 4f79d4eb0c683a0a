"""Stage 3: constant folding over the typed tree (a pure pass: tree in, tree out).

Every operator, list and function call whose operands are all literals is evaluated once, here,
with the same checked run-time functions compiled code uses, and replaced by a literal. So
``1% * account.intended`` carries the constant 0.01, and ``round(1/3, 2)`` costs nothing per
evaluation. A constant that cannot be evaluated (``1 / 0``) is a compile-time problem with the
run-time error's code, located at the operator.
"""

from __future__ import annotations

from msgspec.structs import replace

from fairalloc.errors import Location

from .ast import (
    ATOM_PRECEDENCE,
    Binary,
    Call,
    Expr,
    ListExpr,
    Literal,
    Path,
    Problem,
    Unary,
    Value,
    operands,
    precedence,
    unparse,
)
from .functions import FUNCTIONS
from .runtime import BINARY, UNARY, ExpressionRuntimeError, Site


def fold(tree: Expr) -> tuple[Expr, list[Problem]]:
    """Fold constant sub-expressions of a checked tree; return the new tree and any problems."""
    problems: list[Problem] = []
    return _fold(tree, problems), problems


def _fold(node: Expr, problems: list[Problem]) -> Expr:
    if isinstance(node, (Literal, Path)):
        return node
    if isinstance(node, ListExpr):
        items = tuple(_fold(item, problems) for item in node.items)
        folded_list = replace(node, items=items)
        if all(isinstance(item, Literal) for item in items):
            value = tuple(item.value for item in items if isinstance(item, Literal))
            return _literal(folded_list, value)
        return folded_list
    if isinstance(node, Unary):
        operand = _fold(node.operand, problems)
        folded_unary = replace(node, operand=operand)
        if isinstance(operand, Literal):
            site = _site(folded_unary)
            return _evaluate(folded_unary, node.start, problems, lambda: UNARY[node.op](site, operand.value))
        return folded_unary
    if isinstance(node, Binary):
        left, right = _fold(node.left, problems), _fold(node.right, problems)
        folded_binary = replace(node, left=left, right=right)
        if isinstance(left, Literal) and isinstance(right, Literal):
            site = _site(folded_binary)
            return _evaluate(
                folded_binary, node.op_start, problems, lambda: BINARY[node.op](site, left.value, right.value)
            )
        return folded_binary
    args = tuple(_fold(arg, problems) for arg in node.args)
    folded_call = replace(node, args=args)
    function = FUNCTIONS.get(node.name)
    if function is not None and all(isinstance(arg, Literal) for arg in args):
        values = [arg.value for arg in args if isinstance(arg, Literal)]
        site = _site(folded_call)
        return _evaluate(folded_call, node.start, problems, lambda: function.impl(site, *values))
    return folded_call


def _site(node: Expr) -> Site:
    return Site(Location(), unparse(node), tuple(unparse(operand) for operand in operands(node)))


def _evaluate(node: Expr, offset: int, problems: list[Problem], compute: object) -> Expr:
    assert callable(compute)
    try:
        value = compute()
    except ExpressionRuntimeError as error:
        diagnostic = error.diagnostics[0]
        problems.append(Problem(diagnostic.code, diagnostic.message, offset, diagnostic.hint))
        return node
    return _literal(node, value)


def _literal(node: Expr, value: Value) -> Literal:
    """The folded constant; its text is the original's, parenthesised so it prints back right."""
    text = unparse(node)
    if precedence(node) < ATOM_PRECEDENCE:
        text = f"({text})"
    return Literal(value, text, node.start, node.type)
