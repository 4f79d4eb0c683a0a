"""The facade's contract with the rest of fairalloc: names and signatures callers rely on."""

from __future__ import annotations

import inspect

import fairalloc.expressions as expressions
from fairalloc.errors import ExitCode, FairallocError, Location, PolicyError
from fairalloc.expressions import ROOTS, CompiledExpression, ExpressionRuntimeError, Scope, Type, compile_expression


def test_exports() -> None:
    for name in ("Type", "Scope", "compile_expression", "CompiledExpression", "ExpressionRuntimeError", "ROOTS"):
        assert name in expressions.__all__


def test_compile_expression_signature() -> None:
    parameters = inspect.signature(compile_expression).parameters
    assert list(parameters) == ["source", "scope", "expect", "locate"]


def test_types() -> None:
    for name in ("NUMBER", "STRING", "BOOLEAN", "DATE", "TIMESTAMP", "NULL", "ANY"):
        assert isinstance(getattr(Type, name), Type)
    assert Type.list_of(Type.STRING).element == Type.STRING
    assert Type.NUMBER.or_null().nullable


def test_roots_order() -> None:
    assert ROOTS == ("order", "security", "statement", "fill", "account", "allocation")


def test_compiled_expression_surface() -> None:
    scope = Scope.build(roots={"account", "allocation"}, account_attributes={"type": Type.STRING})
    compiled = compile_expression(
        "account.type == 'institutional' and allocation > 0",
        scope=scope,
        expect=Type.BOOLEAN,
        locate=lambda offset: Location(line=3, column=5 + offset),
    )
    assert isinstance(compiled, CompiledExpression)
    assert compiled.source == "account.type == 'institutional' and allocation > 0"
    assert compiled.type == Type.BOOLEAN
    assert compiled.names == frozenset({"account.type", "allocation"})
    assert compiled.fn(None, None, None, None, {"type": "institutional"}, 1) is True
    assert compiled.evaluate(account={"type": "retail"}, allocation=1) is False


def test_error_classes() -> None:
    assert issubclass(ExpressionRuntimeError, FairallocError)
    assert ExpressionRuntimeError.exit_code == ExitCode.INVALID_INPUT
    assert PolicyError.exit_code == ExitCode.INVALID_POLICY


def test_tree_is_the_typed_tree_as_written() -> None:
    from fairalloc.expressions import ast

    scope = Scope.build(roots={"account"}, account_attributes={"type": Type.STRING})
    compiled = compile_expression("account.type in ['a', 'b'] and 1 + 1 == 2", scope=scope, expect=Type.BOOLEAN)
    tree = compiled.tree
    assert isinstance(tree, ast.Binary) and isinstance(tree.left, ast.Binary)
    items = tree.left.right
    assert isinstance(items, ast.ListExpr) and [item.start for item in items.items] == [17, 22]
    assert tree.type == Type.BOOLEAN and items.type == Type.list_of(Type.STRING)
    assert ast.unparse(tree) == "account.type in ['a', 'b'] and 1 + 1 == 2"
