"""Stage 2: resolve names and types; return a typed copy of the tree and every problem found.

The checker visits the whole tree and keeps going after an error, so a user sees every mistake at
once. A node that failed gets the type ANY, which every operation accepts: one mistake is reported
once, not again by every operation above it. Unknown names come with a "did you mean ...?" hint
chosen by edit distance (:func:`fairalloc.errors.suggest`). ``date("...")`` and ``timestamp("...")`` are turned
into literals here.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable

import msgspec
from msgspec.structs import replace

from fairalloc.errors import did_you_mean

from .ast import Binary, Call, Expr, ListExpr, Literal, Path, Problem, Unary, unparse
from .functions import FUNCTIONS, LITERAL_FUNCTIONS, Function
from .scope import ROOTS, VALUE_ROOTS, Scope
from .types import Kind, Type, assignable, equatable, is_kind, join, orderable, scalar_type

ARITHMETIC = frozenset({"+", "-", "*", "/"})
ORDERING = frozenset({"<", "<=", ">", ">="})
EQUALITY = frozenset({"==", "!="})
MEMBERSHIP = frozenset({"in", "not in"})
LOGICAL = frozenset({"and", "or"})
_PYTHON_SPELLINGS = {"True": "write 'true'", "False": "write 'false'", "None": "write 'null'"}


class Checked(msgspec.Struct, frozen=True):
    """A typed tree and the dotted paths it reads."""

    tree: Expr
    names: frozenset[str]


def check(tree: Expr, scope: Scope, expect: Type | None) -> tuple[Checked, list[Problem]]:
    """Type ``tree`` in ``scope``; if ``expect`` is given, the result must be assignable to it."""
    checker = _Checker(scope)
    typed = checker.visit(tree)
    actual = _type(typed)
    if expect is not None and not assignable(actual, expect):
        if assignable(actual.non_null(), expect):
            checker.problem(
                "expr-type",
                f"this expression may be null, but a {expect} is required here",
                tree.start,
                "give a default with coalesce(expression, default)",
            )
        else:
            checker.problem(
                "expr-type", f"expected a {expect} expression, got a {actual}", tree.start, _expect_hint(expect)
            )
    return Checked(typed, frozenset(checker.names)), checker.problems


def _expect_hint(expect: Type) -> str:
    if expect.kind is Kind.BOOLEAN:
        return "a condition must be true or false, e.g. 'account.assets > 1000000'"
    return f"this place needs a {expect}"


def _type(node: Expr) -> Type:
    assert node.type is not None
    return node.type


def _literal_type(value: object) -> Type:
    if value is None:
        return Type.NULL
    if (scalar := scalar_type(value)) is not None:
        return scalar
    if isinstance(value, datetime.datetime):
        return Type.TIMESTAMP
    if isinstance(value, datetime.date):
        return Type.DATE
    raise AssertionError(f"no literal of {type(value).__name__}")


class _Checker:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.problems: list[Problem] = []
        self.names: set[str] = set()

    def problem(self, code: str, message: str, offset: int, hint: str) -> None:
        self.problems.append(Problem(code, message, offset, hint))

    def visit(self, node: Expr) -> Expr:
        if isinstance(node, Literal):
            return replace(node, type=_literal_type(node.value))
        if isinstance(node, ListExpr):
            return self.visit_list(node)
        if isinstance(node, Path):
            return replace(node, type=self.resolve(node))
        if isinstance(node, Call):
            return self.visit_call(node)
        if isinstance(node, Unary):
            return self.visit_unary(node)
        return self.visit_binary(node)

    # -- lists ---------------------------------------------------------------------------------

    def visit_list(self, node: ListExpr) -> Expr:
        items = tuple(self.visit(item) for item in node.items)
        element: Type = Type.ANY if not items else _type(items[0])
        for item in items[1:]:
            joined = join(element, _type(item))
            if joined is None:
                self.problem(
                    "expr-type",
                    f"list items must all have one type: this {_type(item)} follows a {element}",
                    item.start,
                    "make every item the same kind of value",
                )
                element = Type.ANY
                break
            element = joined
        return replace(node, items=items, type=Type.list_of(element))

    # -- names ---------------------------------------------------------------------------------

    def resolve(self, node: Path) -> Type:
        root = node.parts[0]
        if root not in ROOTS:
            self.unknown_name(node)
            return Type.ANY
        if root not in self.scope.roots:
            allowed = ", ".join(r for r in ROOTS if r in self.scope.roots) or "none"
            self.problem(
                "expr-unknown-root",
                f"'{root}' is not available here; this place allows: {allowed}",
                node.start,
                f"use one of: {allowed}",
            )
            return Type.ANY
        if root in VALUE_ROOTS:
            return self.resolve_value(node)
        return self.resolve_field(node)

    def resolve_value(self, node: Path) -> Type:
        """A root that is a value itself (``allocation``): it takes no field."""
        root = node.parts[0]
        if len(node.parts) > 1:
            self.problem(
                "expr-unknown-field",
                f"'{root}' is a {VALUE_ROOTS[root]} and has no fields",
                node.offsets[1],
                f"use '{root}' alone",
            )
            return Type.ANY
        self.names.add(root)
        return VALUE_ROOTS[root]

    def resolve_field(self, node: Path) -> Type:
        """``record.field``: exactly one field of a record root."""
        root = node.parts[0]
        fields = self.scope.fields[root]
        if len(node.parts) == 1:
            self.problem(
                "expr-unknown-field",
                f"'{root}' is a record, not a value: name one of its fields",
                node.start,
                f"for example '{root}.{next(iter(fields))}'",
            )
            return Type.ANY
        name = node.parts[1]
        kind = fields.get(name)
        if kind is None:
            self.problem(
                "expr-unknown-field",
                f"unknown field '{root}.{name}'",
                node.offsets[1],
                _did_you_mean(name, fields, prefix=f"{root}.") or f"'{root}' has: {', '.join(sorted(fields))}",
            )
            return Type.ANY
        if len(node.parts) > 2:
            self.problem(
                "expr-unknown-field",
                f"'{root}.{name}' is a {kind} and has no fields",
                node.offsets[2],
                f"use '{root}.{name}'",
            )
            return Type.ANY
        self.names.add(f"{root}.{name}")
        return kind

    def unknown_name(self, node: Path) -> None:
        root = node.parts[0]
        if root in FUNCTIONS or root in LITERAL_FUNCTIONS:
            self.problem(
                "expr-unknown-name",
                f"'{root}' is a function, not a value",
                node.start,
                f"call it: {root}(...)",
            )
            return
        allowed = [r for r in ROOTS if r in self.scope.roots]
        owners = [f"'{r}.{root}'" for r in allowed if root in self.scope.fields.get(r, {})]
        hint = (
            _PYTHON_SPELLINGS.get(root)
            or (f"did you mean {' or '.join(owners)}?" if owners else None)
            or _did_you_mean(root, allowed)
            or f"quote it if it is a text (\"{root}\"); names start with one of: {', '.join(allowed) or 'none'}"
        )
        self.problem("expr-unknown-name", f"unknown name '{root}'", node.start, hint)

    # -- calls ---------------------------------------------------------------------------------

    def visit_call(self, node: Call) -> Expr:
        if node.name in LITERAL_FUNCTIONS:
            return self.literal_call(node)
        function = FUNCTIONS.get(node.name)
        if function is None:
            self.problem(
                "expr-unknown-function",
                f"unknown function '{node.name}'",
                node.start,
                _did_you_mean(node.name, FUNCTIONS)
                or f"functions are: {', '.join(sorted(FUNCTIONS))}",
            )
        args = tuple(self.visit(arg) for arg in node.args)
        checked = replace(node, args=args, type=Type.ANY)
        if function is None:
            return checked
        if not self.arity_ok(function, node):
            return checked
        if not self.arguments_ok(function, args):
            return checked
        result = function.result([_type(arg) for arg in args])
        if result is None:
            self.problem(
                "expr-type",
                f"the arguments of {node.name}() must all have one type, got "
                + ", ".join(str(_type(arg)) for arg in args),
                args[0].start,
                f"{function.signature}",
            )
            return checked
        return replace(checked, type=result)

    def arity_ok(self, function: Function, node: Call) -> bool:
        count = len(node.args)
        low, high = function.min_args, function.max_args
        if low <= count and (high is None or count <= high):
            return True
        if high is None:
            wanted = f"at least {low}"
        elif low == high:
            wanted = str(low)
        else:
            wanted = f"{low} or {high}"
        plural = "" if wanted == "1" else "s"
        self.problem(
            "expr-arity",
            f"{function.name}() takes {wanted} argument{plural}, got {count}",
            node.start,
            f"call it as {function.signature}",
        )
        return False

    def arguments_ok(self, function: Function, args: tuple[Expr, ...]) -> bool:
        ok = True
        for index, arg in enumerate(args):
            kinds = function.param(index)
            actual = _type(arg)
            if actual.is_any:
                continue
            if actual.is_null and function.name != "coalesce":
                self.problem(
                    "expr-type",
                    f"argument {index + 1} of {function.name}() is null",
                    arg.start,
                    f"call it as {function.signature}",
                )
                ok = False
            elif not actual.is_null and actual.kind not in kinds:
                wanted = " or ".join(sorted(k.value for k in kinds))
                self.problem(
                    "expr-type",
                    f"argument {index + 1} of {function.name}() must be a {wanted}, got a {actual}",
                    arg.start,
                    f"call it as {function.signature}",
                )
                ok = False
        return ok

    def literal_call(self, node: Call) -> Expr:
        """``date("2026-03-02")`` / ``timestamp("2026-03-02T09:30:00Z")`` -> a Literal."""
        shape = "YYYY-MM-DD" if node.name == "date" else "YYYY-MM-DDTHH:MM:SS+HH:MM (or Z)"
        example = '"2026-03-02"' if node.name == "date" else '"2026-03-02T09:30:00Z"'
        arg = node.args[0] if len(node.args) == 1 else None
        if not isinstance(arg, Literal) or not isinstance(arg.value, str):
            self.problem(
                "expr-bad-literal",
                f"{node.name}() takes one quoted text in the form {shape}",
                (arg or node).start,
                f"for example {node.name}({example})",
            )
            return replace(node, type=Type.ANY)
        value = _parse_date(arg.value) if node.name == "date" else _parse_timestamp(arg.value)
        if value is None:
            self.problem(
                "expr-bad-literal",
                f"{arg.text} is not a valid {node.name}; the form is {shape}",
                arg.start,
                f"for example {node.name}({example})",
            )
            return replace(node, type=Type.ANY)
        return Literal(value, unparse(node), node.start, _literal_type(value))

    # -- operators -----------------------------------------------------------------------------

    def visit_unary(self, node: Unary) -> Expr:
        operand = self.visit(node.operand)
        actual = _type(operand)
        kind = Kind.BOOLEAN if node.op == "not" else Kind.NUMBER
        result = Type(kind)
        if actual.is_null or not is_kind(actual, kind):
            self.problem(
                "expr-type",
                f"'{node.op}' needs a {kind.value}, got a {actual}",
                node.start,
                "check the operand's type" if kind is Kind.NUMBER else "compare it first, e.g. 'x == 0'",
            )
            result = Type.ANY
        return replace(node, operand=operand, type=result)

    def visit_binary(self, node: Binary) -> Expr:
        left, right = self.visit(node.left), self.visit(node.right)
        lt, rt = _type(left), _type(right)
        result = self.binary_type(node, lt, rt)
        return replace(node, left=left, right=right, type=result)

    def binary_type(self, node: Binary, lt: Type, rt: Type) -> Type:
        op = node.op
        if op in LOGICAL:
            return self.operands(node, lt, rt, Kind.BOOLEAN, Type.BOOLEAN, _logical_hint(node))
        if op in ARITHMETIC:
            return self.operands(node, lt, rt, Kind.NUMBER, Type.NUMBER, "arithmetic works on numbers only")
        if op in EQUALITY:
            if equatable(lt, rt):
                return Type.BOOLEAN
            return self.mismatch(node, f"cannot compare a {lt} with a {rt} using '{op}'", "compare values of the same kind")
        if op in ORDERING:
            if orderable(lt, rt):
                return Type.BOOLEAN
            return self.mismatch(
                node,
                f"'{op}' cannot order a {lt} against a {rt}",
                "order numbers, strings, dates or timestamps against their own kind",
            )
        return self.membership(node, lt, rt)

    def operands(self, node: Binary, lt: Type, rt: Type, kind: Kind, result: Type, hint: str) -> Type:
        for side, actual in (("left", lt), ("right", rt)):
            if actual.is_null or not is_kind(actual, kind):
                return self.mismatch(
                    node, f"'{node.op}' needs {kind.value}s, but its {side} side is a {actual}", hint
                )
        return result

    def membership(self, node: Binary, lt: Type, rt: Type) -> Type:
        if rt.is_any:
            return Type.BOOLEAN
        if rt.kind is not Kind.LIST or rt.is_null:
            return self.mismatch(node, f"'{node.op}' needs a list on its right, got a {rt}", "write a list, e.g. [\"a\", \"b\"]")
        assert rt.element is not None
        if not equatable(lt, rt.element):
            return self.mismatch(
                node, f"cannot look for a {lt} in a {rt}", "the value and the list items must be the same kind"
            )
        return Type.BOOLEAN

    def mismatch(self, node: Binary, message: str, hint: str) -> Type:
        self.problem("expr-type", message, node.op_start, hint)
        return Type.ANY


def _logical_hint(node: Binary) -> str:
    """``x == "a" or "b"`` means ``x in ["a", "b"]``: say so; otherwise a general hint."""
    left, right = node.left, node.right
    if node.op == "or" and isinstance(left, Binary) and left.op == "==" and isinstance(right, Literal):
        return f"to test several values write: {unparse(left.left)} in [{unparse(left.right)}, {right.text}]"
    return "combine comparisons, e.g. 'x > 0 and y > 0'"


# ---------------------------------------------------------------------------------------------

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})\Z")


def _parse_date(text: str) -> datetime.date | None:
    if not _DATE.match(text):
        return None
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        return None


def _parse_timestamp(text: str) -> datetime.datetime | None:
    if not _TIMESTAMP.match(text):
        return None
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None


def _did_you_mean(name: str, candidates: Iterable[str], prefix: str = "") -> str | None:
    return did_you_mean(name, candidates, prefix)
