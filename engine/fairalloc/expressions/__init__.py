"""The expression language of fairalloc policies: compile a condition once, evaluate it often.

Pipeline, one module per stage, each a pure function of the previous stage's output:

    parse (text -> tree, syntax errors)      :mod:`.parse`, grammar in :mod:`.grammar`
    check (names and types, suggestions)     :mod:`.check`, with :mod:`.scope`, :mod:`.types`
    fold  (constant sub-expressions)         :mod:`.optimize`
    generate (tree -> Python function)       :mod:`.codegen`, semantics in :mod:`.runtime`

:func:`compile_expression` runs them in order. Problems are collected per stage and raised
together as one :class:`~fairalloc.errors.PolicyError`; a stage runs only if the one before it found
nothing (a syntax error stops everything, a type error stops folding and code generation). The
language reference is ``docs/expressions.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


from fairalloc.errors import Diagnostic, Location, PolicyError
from fairalloc.structs import ComparedWithout

from .ast import Expr, Problem
from .check import check
from .codegen import generate
from .optimize import fold
from .parse import MAX_DEPTH, MAX_LENGTH, ParseFailure, parse
from .runtime import DIVISION_PRECISION, ExpressionRuntimeError
from .scope import ROOTS, Scope
from .types import Kind, Type

__all__ = [
    "DIVISION_PRECISION",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "ROOTS",
    "CompiledExpression",
    "ExpressionRuntimeError",
    "Kind",
    "Scope",
    "Type",
    "compile_expression",
]

Locate = Callable[[int], Location]


def _no_file(offset: int) -> Location:
    """Default ``locate``: line 1, column = offset + 1 (for an expression standing alone)."""
    return Location(line=1, column=offset + 1)


class CompiledExpression(ComparedWithout, frozen=True):
    """A checked, compiled expression.

    ``fn`` takes the six roots positionally in :data:`ROOTS` order and returns the value; it
    raises :class:`ExpressionRuntimeError` (located in the policy) when the data make the
    expression fail, e.g. null in arithmetic or division by zero. ``tree`` is the typed syntax
    tree as written (before constant folding, so lists and literals keep their source offsets),
    for checks a caller adds on top.
    """

    source: str
    type: Type
    names: frozenset[str]
    fn: Callable[..., Any]  # left out of repr
    tree: Expr  # left out of repr, equality and the hash

    left_out = "tree"

    def __repr__(self) -> str:
        return f"CompiledExpression(source={self.source!r}, type={self.type!r}, names={self.names!r})"

    @property
    def roots(self) -> frozenset[str]:
        """The roots the expression reads (``{"account", "fill"}``): what data it needs."""
        return frozenset(name.split(".", 1)[0] for name in self.names)

    def evaluate(
        self,
        *,
        order: Any = None,
        security: Any = None,
        statement: Any = None,
        fill: Any = None,
        account: Any = None,
        allocation: Any = None,
    ) -> Any:
        """Evaluate with keyword arguments; a root not given is None."""
        return self.fn(order, security, statement, fill, account, allocation)


def compile_expression(
    source: str,
    scope: Scope,
    expect: Type | None = None,
    locate: Locate | None = None,
) -> CompiledExpression:
    """Parse, check, fold and compile ``source``; raise PolicyError with every problem found.

    ``expect`` is the type the place in the policy requires (None accepts any type).
    ``locate`` maps a 0-based character offset in ``source`` (``0 <= offset <= len(source)``)
    to a policy location; by default line 1, column offset + 1.
    """
    where = locate or _no_file
    try:
        tree = parse(source)
    except ParseFailure as failure:
        raise PolicyError([_diagnostic(failure.problem, where)]) from None
    checked, problems = check(tree, scope, expect)
    _raise_if(problems, where)
    folded, problems = fold(checked.tree)
    _raise_if(problems, where)
    generated = generate(folded, where, expect)
    assert checked.tree.type is not None
    return CompiledExpression(source, checked.tree.type, checked.names, generated.fast, checked.tree)


def _raise_if(problems: list[Problem], locate: Locate) -> None:
    if problems:
        raise PolicyError([_diagnostic(problem, locate) for problem in problems])


def _diagnostic(problem: Problem, locate: Locate) -> Diagnostic:
    return Diagnostic(problem.code, problem.message, locate(problem.offset), problem.hint)
