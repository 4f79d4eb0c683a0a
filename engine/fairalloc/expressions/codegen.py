"""Stage 4: typed, folded tree -> a Python function ``fn(order, security, statement, fill,
account, allocation)``.

Two bodies are generated from the tree and compiled together:

* the **fast** body uses plain Python operators wherever the static types make that exact:
  ``account[k] == c`` for an equality, ``a < b`` for an ordering, int ``+ - *`` guarded by
  ``type(x) is int`` with the exact Decimal context as the other branch. A comparison with a
  positive constant factor, ``a < 1% * b``, is cross-multiplied (``a * 100 < b``) when both sides
  are ints, which is exact and equivalent because the factor is positive.
* the **checked** body calls the :mod:`.runtime` function of every operation with its
  :class:`~.runtime.Site`, so it raises a located :class:`~.runtime.ExpressionRuntimeError`.

The fast body runs inside ``try``; on any exception (null in arithmetic, a missing field, a
zero divisor) the checked body evaluates the same inputs and either raises the located error or
returns the value. The checked body is the definition; the fast body must agree with it on every
input, which the tests check property by property.

Sandbox: the generated source is made of Python keywords, operators and names this module
invents (``_t3``, ``_c0``, the six root names) and nothing else. Every constant, field name,
site and helper is bound as an argument of an enclosing factory function, so no text of the
user's ever becomes code. The code runs with empty builtins.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import msgspec

from fairalloc.errors import Location

from . import runtime
from .ast import Binary, Call, Expr, ListExpr, Literal, Path, Unary, operands, unparse
from .check import ARITHMETIC, EQUALITY, LOGICAL, MEMBERSHIP, ORDERING
from .functions import FUNCTIONS
from .scope import ROOTS, VALUE_ROOTS
from .types import Kind, Type

Helper = Callable[..., Any]

_EXACT_METHOD = {"+": runtime.EXACT.add, "-": runtime.EXACT.subtract, "*": runtime.EXACT.multiply}
_NEGATE = runtime.EXACT.minus
_CHECKED_NAME = {
    "+": "add",
    "-": "sub",
    "*": "mul",
    "/": "div",
    "==": "eq",
    "!=": "ne",
    "<": "lt",
    "<=": "le",
    ">": "gt",
    ">=": "ge",
    "in": "in",
    "not in": "not_in",
}
_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


class Generated(msgspec.Struct):
    """The two compiled functions and the source they came from (for tests and debugging)."""

    fast: Helper
    checked: Helper
    source: str


def generate(tree: Expr, locate: Callable[[int], Location], expect: Type | None = None) -> Generated:
    """Compile a checked, folded tree. ``locate`` maps a source offset to a policy location.

    If the tree's static type is ANY and ``expect`` is a real type, the result is checked against
    ``expect`` when the function runs (:func:`.runtime.conform`).
    """
    emitter = _Emitter(locate)
    fast = emitter.fast(tree)
    checked = emitter.checked(tree)
    if tree.type is not None and tree.type.is_any and expect is not None and not expect.is_any:
        conform, site, expected = emitter.helper(runtime.conform), emitter.site(tree, tree.start), emitter.bind(expect)
        fast = f"{conform}({site}, {fast}, {expected})"
        checked = f"{conform}({site}, {checked}, {expected})"
    params = ", ".join(ROOTS)
    source = (
        f"def _make({', '.join(emitter.bindings)}):\n"
        f"    def _fast({params}):\n"
        f"        try:\n"
        f"            return {fast}\n"
        f"        except _Exception:\n"
        f"            return _checked({params})\n"
        f"    def _checked({params}):\n"
        f"        return {checked}\n"
        f"    return _fast, _checked\n"
    )
    namespace: dict[str, Any] = {"__builtins__": {}}
    exec(compile(source, "<fairalloc expression>", "exec"), namespace)  # noqa: S102 - generated code only
    fast_fn, checked_fn = namespace["_make"](**emitter.bindings)
    return Generated(fast_fn, checked_fn, source)


class _Emitter(msgspec.Struct):
    locate: Callable[[int], Location]
    bindings: dict[str, object] = msgspec.field(default_factory=dict)
    _ids: dict[int, str] = msgspec.field(default_factory=dict)
    _temps: int = 0

    def __post_init__(self) -> None:
        self.bindings.update({"_Exception": Exception, "_type": type, "_int": int})

    # -- names ---------------------------------------------------------------------------------

    def bind(self, value: object, prefix: str = "_c") -> str:
        """A generated name bound to ``value`` in the factory (one name per distinct object)."""
        key = id(value)
        name = self._ids.get(key)
        if name is None:
            name = f"{prefix}{len(self.bindings)}"
            self.bindings[name] = value
            self._ids[key] = name
        return name

    def site(self, node: Expr, offset: int) -> str:
        texts = tuple(unparse(operand) for operand in operands(node))
        return self.bind(runtime.Site(self.locate(offset), unparse(node), texts), "_s")

    def temp(self) -> str:
        self._temps += 1
        return f"_t{self._temps}"

    def helper(self, function: Helper) -> str:
        return self.bind(function, "_h")

    def constant(self, node: Literal) -> str:
        return self.bind(node.value)

    # -- the checked body ----------------------------------------------------------------------

    def checked(self, node: Expr) -> str:
        if isinstance(node, Literal):
            return self.constant(node)
        if isinstance(node, Path):
            return self.checked_path(node)
        if isinstance(node, ListExpr):
            return self.tuple_display([self.checked(item) for item in node.items])
        if isinstance(node, Call):
            return self.call(node, self.checked)
        if isinstance(node, Unary):
            function = runtime.UNARY[node.op]
            return f"{self.helper(function)}({self.site(node, node.start)}, {self.checked(node.operand)})"
        site = self.site(node, node.op_start)
        left, right = self.checked(node.left), self.checked(node.right)
        if node.op in LOGICAL:
            truth = self.helper(runtime.truth)
            first, second = self.bind(0), self.bind(1)
            return f"({truth}({site}, {first}, {left}) {node.op} {truth}({site}, {second}, {right}))"
        function = getattr(runtime, f"checked_{_CHECKED_NAME[node.op]}")
        return f"{self.helper(function)}({site}, {left}, {right})"

    def checked_path(self, node: Path) -> str:
        root = node.parts[0]
        if root in VALUE_ROOTS:
            return root
        site = self.site(node, node.start)
        key = self.bind(node.parts[1], "_k")
        return f"{self.helper(runtime.field)}({site}, {root}, {self.bind(root, '_k')}, {key})"

    # -- the fast body -------------------------------------------------------------------------

    def fast(self, node: Expr) -> str:
        if isinstance(node, Literal):
            return self.constant(node)
        if isinstance(node, Path):
            if node.parts[0] in VALUE_ROOTS:
                return node.parts[0]
            return f"{node.parts[0]}[{self.bind(node.parts[1], '_k')}]"
        if isinstance(node, ListExpr):
            return self.tuple_display([self.fast(item) for item in node.items])
        if isinstance(node, Call):
            return self.call(node, self.fast)
        if isinstance(node, Unary):
            return self.fast_unary(node)
        return self.fast_binary(node)

    def fast_unary(self, node: Unary) -> str:
        if node.op == "not":
            return f"(not {self.boolean(node, 0)})"
        if not _numeric(node.operand.type):
            return self.checked_call(runtime.checked_neg, node, node.start, [self.fast(node.operand)])
        (a,), is_int = self.int_guard([node.operand])
        return f"(-{a} if {is_int} else {self.helper(_NEGATE)}({a}))"

    def int_guard(self, operands: list[Expr]) -> tuple[list[str], str]:
        """Fast code for ``operands``: a name for each value, and a condition, evaluated first,
        that computes every value (left to right) and is true when all of them are ints.

        A parameter or constant needs no temporary; an int literal needs no test.
        """
        names: list[str] = []
        tests: list[str] = []
        for operand in operands:
            code = self.fast(operand)
            if code.isidentifier():
                names.append(code)
                if not (isinstance(operand, Literal) and type(operand.value) is int):
                    tests.append(f"_type({code})")
                continue
            temp = self.temp()
            names.append(temp)
            tests.append(f"_type({temp} := {code})")
        # one chained comparison, so every operand is computed even when an earlier one is no int
        return names, " is ".join([*tests, "_int"]) if tests else "True"

    def boolean(self, parent: Unary | Binary, index: int) -> str:
        """Operand ``index`` of ``not``/``and``/``or`` as a Python bool: direct if its type is a
        non-null boolean, else through the checked ``truth``."""
        node = operands(parent)[index]
        code = self.fast(node)
        if node.type == Type.BOOLEAN:
            return code
        offset = parent.op_start if isinstance(parent, Binary) else parent.start
        return f"{self.helper(runtime.truth)}({self.site(parent, offset)}, {self.bind(index)}, {code})"

    def fast_binary(self, node: Binary) -> str:
        op = node.op
        if op in LOGICAL:
            return f"({self.boolean(node, 0)} {op} {self.boolean(node, 1)})"
        if op in ARITHMETIC:
            return self.fast_arithmetic(node)
        if op in ORDERING or op in EQUALITY:
            return self.fast_comparison(node)
        assert op in MEMBERSHIP
        return self.fast_membership(node)

    def fast_arithmetic(self, node: Binary) -> str:
        left_type, right_type = node.left.type, node.right.type
        if node.op == "/" or not (_numeric(left_type) and _numeric(right_type)):
            function = getattr(runtime, f"checked_{_CHECKED_NAME[node.op]}")
            return self.checked_call(function, node, node.op_start, [self.fast(node.left), self.fast(node.right)])
        exact = self.helper(_EXACT_METHOD[node.op])
        if _decimal_literal(node.left) or _decimal_literal(node.right):  # never two ints
            return f"{exact}({self.fast(node.left)}, {self.fast(node.right)})"
        (a, b), all_ints = self.int_guard([node.left, node.right])
        return f"({a} {node.op} {b} if {all_ints} else {exact}({a}, {b}))"

    def fast_comparison(self, node: Binary) -> str:
        left_type, right_type = node.left.type, node.right.type
        plain = _plain(left_type) and _plain(right_type)
        if not plain:
            function = getattr(runtime, f"checked_{_CHECKED_NAME[node.op]}")
            return self.checked_call(function, node, node.op_start, [self.fast(node.left), self.fast(node.right)])
        scaled = self.cross_multiplied(node)
        if scaled is not None:
            return scaled
        return f"({self.fast(node.left)} {node.op} {self.fast(node.right)})"

    def cross_multiplied(self, node: Binary) -> str | None:
        """``a OP k * b`` (k a positive constant fraction p/q) as ``a * q OP b * p`` for ints.

        Exact and equivalent: ``k * b`` is computed exactly, and multiplying both sides of a
        comparison by the positive ``q`` preserves it. When ``p`` is 1 (``1%``, ``2.5%``) only
        ``a`` needs to be an int. Other operands take the general path.
        """
        for op, value_side, product in ((node.op, node.left, node.right), (_MIRROR[node.op], node.right, node.left)):
            factor = _constant_factor(product)
            if factor is None or not _numeric(value_side.type):
                continue
            constant, other = factor
            ratio = Fraction(constant)
            if ratio <= 0 or ratio.denominator == 1 or _decimal_literal(value_side) or _decimal_literal(other):
                continue
            q, multiply = self.bind(ratio.denominator), self.helper(_EXACT_METHOD["*"])
            if ratio.numerator == 1 and op in ORDERING:
                # a * q OP b: only a * q must be exact, so only a must be an int; b may be an int
                # or a Decimal (comparisons are exact), and is computed in one branch or the other.
                # A null b still fails, as it must: ordering against None raises (== would not).
                (a,), a_is_int = self.int_guard([value_side])
                b = self.fast(other)
                return f"({a} * {q} {op} {b} if {a_is_int} else {a} {op} {multiply}({self.bind(constant)}, {b}))"
            (a, b), all_ints = self.int_guard([value_side, other])
            general = f"{a} {op} {multiply}({self.bind(constant)}, {b})"
            return f"({a} * {q} {op} {b} * {self.bind(ratio.numerator)} if {all_ints} else {general})"
        return None

    def fast_membership(self, node: Binary) -> str:
        items = node.right
        if (
            isinstance(items, Literal)
            and isinstance(items.value, tuple)
            and _plain(node.left.type)
            and all(not isinstance(item, tuple) for item in items.value)
        ):
            negate = "not " if node.op == "not in" else ""
            return f"({self.fast(node.left)} {negate}in {self.bind(frozenset(items.value))})"
        function = getattr(runtime, f"checked_{_CHECKED_NAME[node.op]}")
        return self.checked_call(function, node, node.op_start, [self.fast(node.left), self.fast(items)])

    # -- shared --------------------------------------------------------------------------------

    def call(self, node: Call, emit: Callable[[Expr], str]) -> str:
        args = [emit(arg) for arg in node.args]
        if node.name == "coalesce":  # lazy: later arguments run only while earlier ones are null
            code = args[-1]
            for arg in reversed(args[:-1]):
                t = self.temp()
                code = f"({t} if ({t} := {arg}) is not None else {code})"
            return code
        return self.checked_call(FUNCTIONS[node.name].impl, node, node.start, args)

    def checked_call(self, function: Helper, node: Expr, offset: int, args: list[str]) -> str:
        return f"{self.helper(function)}({', '.join([self.site(node, offset), *args])})"

    @staticmethod
    def tuple_display(items: list[str]) -> str:
        if not items:
            return "()"
        return "(" + ", ".join(items) + ",)"


def _decimal_literal(node: Expr) -> bool:
    """A Decimal constant: an operation on it never takes the int branch."""
    return isinstance(node, Literal) and isinstance(node.value, Decimal)


def _numeric(kind: Type | None) -> bool:
    """A number known statically (nullable is fine: null raises in the fast path too)."""
    return kind is not None and kind.kind is Kind.NUMBER


def _plain(kind: Type | None) -> bool:
    """Types whose Python operators are exactly the language's: scalars other than ANY."""
    return kind is not None and kind.kind in (Kind.NUMBER, Kind.STRING, Kind.BOOLEAN, Kind.DATE, Kind.TIMESTAMP, Kind.NULL)


def _constant_factor(node: Expr) -> tuple[Any, Expr] | None:
    """``(k, x)`` if ``node`` is ``k * x`` or ``x * k`` with a numeric literal ``k``."""
    if not isinstance(node, Binary) or node.op != "*":
        return None
    for constant, other in ((node.left, node.right), (node.right, node.left)):
        if isinstance(constant, Literal) and _numeric(constant.type) and _numeric(other.type):
            return constant.value, other
    return None
