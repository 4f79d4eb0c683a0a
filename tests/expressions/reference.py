"""An independent tree-walking evaluator: the tests' statement of the language's semantics.

It shares nothing with the compiler but the syntax tree: numbers are computed as exact
``Fraction``s, ``/`` is rounded to 34 significant digits half-even by its own arithmetic, and
errors are reported as ``ReferenceError_(code, offset)``. Property tests compare compiled code
with it on random expressions and random data.
"""

from __future__ import annotations

import datetime
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

from fairalloc.expressions.ast import Binary, Call, Expr, ListExpr, Literal, Path, Unary

PRECISION = 34


class RefError(Exception):
    def __init__(self, code: str, offset: int) -> None:
        super().__init__(f"{code} at {offset}")
        self.code = code
        self.offset = offset


class Num:
    """An exact number that remembers whether the language would hold it as an int."""

    __slots__ = ("value", "is_int")

    def __init__(self, value: Fraction, is_int: bool) -> None:
        self.value = value
        self.is_int = is_int


def same(compiled: Any, reference: Any) -> bool:
    """True if a compiled result equals the reference one, including int-versus-Decimal."""
    if isinstance(reference, Num):
        if reference.is_int:
            return type(compiled) is int and compiled == reference.value
        return isinstance(compiled, Decimal) and Fraction(compiled) == reference.value
    if isinstance(reference, tuple):
        return isinstance(compiled, tuple) and len(compiled) == len(reference) and all(
            same(c, r) for c, r in zip(compiled, reference)
        )
    return type(compiled) is type(reference) and compiled == reference


def evaluate(node: Expr, roots: dict[str, Any]) -> Any:
    return _Eval(roots).run(node)


def _round_significant(value: Fraction) -> Fraction:
    """Round to PRECISION significant digits, half to even (only if it does not terminate)."""
    if value == 0:
        return value
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    exponent = math.floor(math.log10(magnitude.numerator) - math.log10(magnitude.denominator))
    # fix float error in the estimate
    while Fraction(10) ** exponent > magnitude:
        exponent -= 1
    while Fraction(10) ** (exponent + 1) <= magnitude:
        exponent += 1
    scale = Fraction(10) ** (PRECISION - 1 - exponent)
    scaled = magnitude * scale
    floor = math.floor(scaled)
    rest = scaled - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1):
        floor += 1
    return sign * Fraction(floor) / scale


class _Eval:
    def __init__(self, roots: dict[str, Any]) -> None:
        self.roots = roots

    def run(self, node: Expr) -> Any:
        if isinstance(node, Literal):
            return self.wrap(node.value, node.start)
        if isinstance(node, Path):
            return self.path(node)
        if isinstance(node, ListExpr):
            return tuple(self.run(item) for item in node.items)
        if isinstance(node, Unary):
            value = self.run(node.operand)
            if node.op == "not":
                return not self.boolean(value, node.start)
            number = self.number(value, node.start)
            return Num(-number.value, number.is_int)
        if isinstance(node, Binary):
            return self.binary(node)
        return self.call(node)

    def wrap(self, value: Any, offset: int) -> Any:
        if type(value) is int:
            return Num(Fraction(value), True)
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise RefError("expr-bad-value", offset)
            return Num(Fraction(value), False)
        if isinstance(value, (list, tuple)):
            return tuple(self.wrap(v, offset) for v in value)
        if isinstance(value, float):
            raise RefError("expr-bad-value", offset)
        return value

    def path(self, node: Path) -> Any:
        root = node.parts[0]
        if len(node.parts) == 1:
            return self.wrap(self.roots.get(root), node.start)
        record = self.roots.get(root)
        if record is None:
            raise RefError("expr-missing-field", node.start)
        if node.parts[1] not in record:
            raise RefError("expr-missing-field", node.start)
        return self.wrap(record[node.parts[1]], node.start)

    def number(self, value: Any, offset: int) -> Num:
        if value is None:
            raise RefError("expr-null", offset)
        if not isinstance(value, Num):
            raise RefError("expr-bad-value", offset)
        return value

    def boolean(self, value: Any, offset: int) -> bool:
        if value is None:
            raise RefError("expr-null", offset)
        if type(value) is not bool:
            raise RefError("expr-bad-value", offset)
        return value

    def binary(self, node: Binary) -> Any:
        at = node.op_start
        if node.op in ("and", "or"):
            left = self.boolean(self.run(node.left), at)
            if node.op == "and" and not left:
                return False
            if node.op == "or" and left:
                return True
            return self.boolean(self.run(node.right), at)
        left, right = self.run(node.left), self.run(node.right)
        if node.op in ("+", "-", "*", "/"):
            a, b = self.number(left, at), self.number(right, at)
            both_int = a.is_int and b.is_int
            if node.op == "+":
                return Num(a.value + b.value, both_int)
            if node.op == "-":
                return Num(a.value - b.value, both_int)
            if node.op == "*":
                return Num(a.value * b.value, both_int)
            if b.value == 0:
                raise RefError("expr-division-by-zero", at)
            quotient = a.value / b.value
            if both_int and quotient.denominator == 1:
                return Num(quotient, True)
            return Num(_round_significant(quotient), False)
        if node.op in ("==", "!="):
            equal = self.key(left) == self.key(right)
            return equal if node.op == "==" else not equal
        if node.op in ("in", "not in"):
            if right is None:
                raise RefError("expr-null", at)
            found = any(self.key(item) == self.key(left) for item in right)
            return found if node.op == "in" else not found
        if left is None or right is None:
            raise RefError("expr-null", at)
        a, b = self.key(left), self.key(right)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[node.op]

    def key(self, value: Any) -> Any:
        if isinstance(value, Num):
            return value.value
        if isinstance(value, tuple):
            return tuple(self.key(v) for v in value)
        return value

    def day(self, value: Any, offset: int) -> datetime.date:
        if value is None:
            raise RefError("expr-null", offset)
        if isinstance(value, datetime.datetime):
            return value.astimezone(datetime.timezone.utc).date()
        assert isinstance(value, datetime.date)
        return value

    def call(self, node: Call) -> Any:
        at = node.start
        if node.name == "coalesce":
            for arg in node.args:
                value = self.run(arg)
                if value is not None:
                    return value
            return None
        args = [self.run(arg) for arg in node.args]
        name = node.name
        if name == "date":
            return datetime.date.fromisoformat(args[0])
        if name == "timestamp":
            return datetime.datetime.fromisoformat(args[0])
        if name in ("min", "max"):
            for arg in args:
                if arg is None:
                    raise RefError("expr-null", at)
            pick = min if name == "min" else max
            return pick(args, key=self.key)
        if name in ("lower", "upper", "starts_with"):
            for arg in args:
                if arg is None:
                    raise RefError("expr-null", at)
            if name == "lower":
                return args[0].lower()
            if name == "upper":
                return args[0].upper()
            return args[0].startswith(args[1])
        if name == "days_between":
            first, second = (self.day(arg, at) for arg in args)
            return Num(Fraction((second - first).days), True)
        if name == "len":
            if args[0] is None:
                raise RefError("expr-null", at)
            return Num(Fraction(len(args[0])), True)
        numbers = [self.number(arg, at) for arg in args]
        x = numbers[0]
        if name == "abs":
            return Num(abs(x.value), x.is_int)
        if name == "floor":
            return Num(Fraction(math.floor(x.value)), True)
        if name == "ceil":
            return Num(Fraction(math.ceil(x.value)), True)
        if name == "round":
            places = numbers[1].value if len(numbers) > 1 else Fraction(0)
            if places.denominator != 1 or abs(places) > 34:
                raise RefError("expr-invalid-argument", at)
            scale = Fraction(10) ** int(places)
            scaled = x.value * scale
            floor = math.floor(scaled)
            rest = scaled - floor
            if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1):
                floor += 1
            if x.is_int and places >= 0:
                return x
            return Num(Fraction(floor) / scale, places <= 0)
        if name in ("round_lot", "ceil_lot"):
            lot = numbers[1]
            if lot.value <= 0:
                raise RefError("expr-invalid-argument", at)
            ratio = x.value / lot.value
            lots = math.floor(ratio) if name == "round_lot" else math.ceil(ratio)
            return Num(lots * lot.value, lot.is_int)
        raise AssertionError(name)
