"""Stage 4, columnar: typed tree -> a function over whole columns of accounts at once.

A block of 100,000 accounts evaluates each rule 100,000 times; calling the compiled closure of
:mod:`.codegen` that often costs more than the whole apportionment. :func:`vectorise` turns the
same tree into a function of a :class:`Frame` whose account fields and
``allocation`` are numpy arrays, so a rule costs a handful of array operations.

The closure compiled by :mod:`.codegen` remains the definition of the language. This stage
accepts only the part of the language where arrays give the same answer on every input, and says
so by raising :class:`Unsupported`, at build time or when it meets data it cannot handle exactly;
the caller then evaluates account by account. The part it accepts:

* account fields held in a column without nulls: strings, booleans, and numbers held exactly as
  integer numerators over one common denominator (:class:`Rational`);
* sub-expressions that read no account field and not ``allocation`` (``fill.ratio < 0.5``):
  compiled by :mod:`.codegen` and evaluated once, with its semantics; one that fails is
  :class:`Unsupported`, since the account-by-account evaluation may never reach it;
* ``and``, ``or``, ``not``; ``==``, ``!=`` and the orderings between a column and a value of the
  same kind, or two columns; ``in``/``not in`` of a column in a list of values of its kind;
  ``+``, ``-`` (binary and unary) and ``*`` on numbers. Division and function calls are not
  accepted (a zero divisor in one account is an error the language reports with its account).

Numbers stay exact: comparisons cross-multiply integers, and every product is checked against
int64's range *before* it is formed (:data:`SAFE`); a value that could leave it is
:class:`Unsupported`, never a wrapped integer. No step can fail for one account and not another,
which is why ``and``/``or`` may evaluate both sides where the language short-circuits.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Union

import msgspec

from fairalloc.errors import Location

from .ast import Binary, Expr, ListExpr, Literal, Path, Unary
from .codegen import generate
from .optimize import fold
from .scope import VALUE_ROOTS

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from . import CompiledExpression

SAFE = 2**62
"""Bound on every integer an array holds: a product is formed only if it stays below this."""

ACCOUNT_ROOTS = frozenset({"account", "allocation"})


class Unsupported(Exception):
    """This expression, or these data, are outside what the columnar evaluation does exactly."""


class Rational(msgspec.Struct, frozen=True):
    """A column of exact numbers: ``numerators / denominator`` (int64 array, positive int)."""

    numerators: NDArray[np.int64]
    denominator: int

    @property
    def top(self) -> int:
        """The largest absolute numerator (0 for an empty column)."""
        return int(abs(self.numerators).max()) if len(self.numerators) else 0


class Coded(msgspec.Struct, frozen=True):
    """A column of strings, dictionary-coded: account ``k`` holds ``values[codes[k]]``.

    ``values`` are sorted, so the codes are in the strings' order: ``==``, ``!=``, ``in`` and the
    orderings against a shared string compare small integers, not Python strings one by one.
    """

    codes: NDArray[np.int32]
    values: tuple[str, ...]

    @classmethod
    def of(cls, strings: list[str]) -> Coded:
        """The coded column of ``strings`` (a list of ``str``): one pass at C speed."""
        import numpy as np

        values = tuple(sorted(set(strings)))
        code = {value: index for index, value in enumerate(values)}
        return cls(np.fromiter(map(code.__getitem__, strings), dtype=np.int32, count=len(strings)), values)

    def strings(self) -> NDArray[Any]:
        """The column as an object array of its strings (to compare with another column)."""
        import numpy as np

        return np.asarray(self.values, dtype=object)[self.codes]

    def compare(self, op: str, text: str) -> NDArray[np.bool_]:
        """``column op text`` for every account: ``text``'s place among the sorted values decides."""
        low, high = bisect_left(self.values, text), bisect_right(self.values, text)
        codes = self.codes
        if op == "==":
            return (codes >= low) & (codes < high)
        if op == "!=":
            return (codes < low) | (codes >= high)
        if op == "<":
            return codes < low
        if op == "<=":
            return codes < high
        if op == ">":
            return codes >= high
        return codes >= low


Column = Union["NDArray[Any]", Rational, Coded]
"""A boolean array, a dictionary-coded string column (:class:`Coded`), an object array of
strings (``account.id``), or a :class:`Rational`."""


class Frame:
    """What a vectorised expression reads: the shared records, and account columns by field.

    ``column(name)`` returns the column of ``account.<name>`` in the caller's account order, or
    raises :class:`Unsupported` (a field with nulls, or of a kind arrays do not hold). ``allocation``
    is ``None`` where the language has no allocation yet.
    """

    def __init__(self, roots: Mapping[str, Any], column: Callable[[str], Column], allocation: Rational | None) -> None:
        self.roots = roots
        self.column = column
        self.allocation = allocation


Vectorised = Callable[[Frame], Any]


@lru_cache(maxsize=256)
def vectorise(expression: CompiledExpression) -> Vectorised | None:
    """The columnar form of ``expression``, or ``None`` if it has none (built once per expression).

    The result returns a boolean array, a :class:`Rational`, a string array, or a plain value
    when the expression reads no account field; it raises :class:`Unsupported` for data it
    cannot evaluate exactly.
    """
    tree, problems = fold(expression.tree)
    if problems:  # the policy compiler refuses such an expression; never reached from a policy
        return None
    try:
        return _build(tree)
    except Unsupported:
        return None


def _reads_accounts(node: Expr) -> bool:
    if isinstance(node, Path):
        return node.parts[0] in ACCOUNT_ROOTS
    if isinstance(node, Literal):
        return False
    if isinstance(node, ListExpr):
        return any(_reads_accounts(item) for item in node.items)
    if isinstance(node, Unary):
        return _reads_accounts(node.operand)
    if isinstance(node, Binary):
        return _reads_accounts(node.left) or _reads_accounts(node.right)
    return any(_reads_accounts(arg) for arg in node.args)


def _nowhere(offset: int) -> Location:
    return Location()


def _build(node: Expr) -> Vectorised:
    if not _reads_accounts(node):
        return _scalar(node)
    if isinstance(node, Path):
        return _path(node)
    if isinstance(node, Unary):
        operand = _build(node.operand)
        if node.op == "not":
            return lambda env: _not(operand(env))
        return lambda env: _negate(operand(env))
    if isinstance(node, Binary):
        left, right = _build(node.left), _build(node.right)
        op = node.op
        if op in ("and", "or"):
            return lambda env: _logical(op, left(env), right(env))
        if op in ("==", "!=", "<", "<=", ">", ">="):
            return lambda env: _compare(op, left(env), right(env))
        if op in ("in", "not in"):
            return lambda env: _member(op, left(env), right(env))
        if op in ("+", "-", "*"):
            return lambda env: _arithmetic(op, left(env), right(env))
    raise Unsupported(f"{type(node).__name__} over account fields")


def _scalar(node: Expr) -> Vectorised:
    """A sub-expression every account shares: evaluated once by the compiled closure."""
    if isinstance(node, Literal):
        value = node.value
        return lambda env: value
    fn = generate(node, _nowhere).fast

    def evaluate(env: Frame) -> Any:
        roots = env.roots
        try:
            return fn(roots["order"], roots["security"], roots["statement"], roots["fill"], None, None)
        except Exception as error:  # the account-by-account path decides whether this error arises
            raise Unsupported(str(error)) from None

    return evaluate


def _path(node: Path) -> Vectorised:
    root = node.parts[0]
    if root in VALUE_ROOTS:
        def allocation(env: Frame) -> Rational:
            if env.allocation is None:
                raise Unsupported("no allocation here")
            return env.allocation
        return allocation
    key = node.parts[1]
    return lambda env: env.column(key)


# -- operations ----------------------------------------------------------------------------------

def _is_array(value: Any) -> bool:
    return hasattr(value, "dtype")


def _boolean(value: Any) -> Any:
    if type(value) is bool:
        return value
    if _is_array(value) and value.dtype == bool:
        return value
    raise Unsupported("not a boolean")


def _not(value: Any) -> Any:
    value = _boolean(value)
    return (not value) if type(value) is bool else ~value


def _logical(op: str, left: Any, right: Any) -> Any:
    import numpy as np

    left, right = _boolean(left), _boolean(right)
    return np.logical_and(left, right) if op == "and" else np.logical_or(left, right)


def _number(value: Any) -> Fraction:
    """A shared number as an exact fraction whose parts fit int64 (each product is checked later)."""
    if type(value) is int or type(value) is Decimal:
        number = Fraction(value)
        _checked(abs(number.numerator), number.denominator)
        return number
    raise Unsupported("not a number")


def _checked(*bounds: int) -> None:
    for bound in bounds:
        if bound >= SAFE:
            raise Unsupported("an intermediate value could leave int64")


def _negate(value: Any) -> Rational:
    if isinstance(value, Rational):
        return Rational(-value.numerators, value.denominator)
    raise Unsupported("negation of a non-number column")


def _as_rational(value: Any) -> Rational | Fraction:
    if isinstance(value, Rational):
        return value
    if _is_array(value):
        raise Unsupported("not a number column")
    return _number(value)


def _arithmetic(op: str, left: Any, right: Any) -> Rational:
    a, b = _as_rational(left), _as_rational(right)
    if op == "*":
        if isinstance(a, Fraction):
            a, b = b, a
        assert isinstance(a, Rational)
        if isinstance(b, Fraction):
            _checked(a.top * abs(b.numerator), a.denominator * b.denominator)
            return Rational(a.numerators * b.numerator, a.denominator * b.denominator)
        _checked(a.top * b.top, a.denominator * b.denominator)
        return Rational(a.numerators * b.numerators, a.denominator * b.denominator)
    sign = 1 if op == "+" else -1
    if isinstance(a, Fraction):
        assert isinstance(b, Rational)
        return _add_constant(Rational(-b.numerators, b.denominator), a) if sign < 0 else _add_constant(b, a)
    if isinstance(b, Fraction):
        return _add_constant(a, b * sign)
    common = math.lcm(a.denominator, b.denominator)
    ka, kb = common // a.denominator, common // b.denominator
    _checked(common, a.top * ka + b.top * kb)
    return Rational(a.numerators * ka + sign * b.numerators * kb, common)


def _add_constant(a: Rational, b: Fraction) -> Rational:
    common = math.lcm(a.denominator, b.denominator)
    ka = common // a.denominator
    shift = b.numerator * (common // b.denominator)
    _checked(common, a.top * ka + abs(shift))
    return Rational(a.numerators * ka + shift, common)


_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _apply(op: str, left: Any, right: Any) -> Any:
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right


def _compare(op: str, left: Any, right: Any) -> Any:
    if isinstance(left, Coded):
        if type(right) is str:
            return left.compare(op, right)
        left = left.strings()
    if isinstance(right, Coded):
        if type(left) is str:
            return right.compare(_MIRROR[op], left)
        right = right.strings()
    if not (isinstance(left, Rational) or _is_array(left)):
        if not (isinstance(right, Rational) or _is_array(right)):
            raise Unsupported("a comparison of two shared values")
        return _compare(_MIRROR[op], right, left)
    if isinstance(left, Rational):
        right_number = _as_rational(right)
        if isinstance(right_number, Fraction):
            # a/d op p/q  <=>  a*q op p*d   (d, q > 0)
            q, p = right_number.denominator, right_number.numerator
            _checked(left.top * q, abs(p) * left.denominator)
            return _apply(op, left.numerators * q, p * left.denominator)
        _checked(left.top * right_number.denominator, right_number.top * left.denominator)
        return _apply(op, left.numerators * right_number.denominator, right_number.numerators * left.denominator)
    if left.dtype == bool:
        if op not in ("==", "!=") or not (type(right) is bool or (_is_array(right) and right.dtype == bool)):
            raise Unsupported("booleans compare only for equality with booleans")
        return _apply(op, left, right)
    # a string column (object array of str)
    if not (type(right) is str or (_is_array(right) and right.dtype == object)):
        raise Unsupported("a string column compares only with strings")
    return _apply(op, left, right).astype(bool)


def _member(op: str, item: Any, items: Any) -> Any:
    import numpy as np

    if not isinstance(items, tuple):
        raise Unsupported("membership in a column of lists")
    if isinstance(item, Rational):
        kinds: tuple[type, ...] = (int, Decimal)
    elif isinstance(item, Coded) or (_is_array(item) and item.dtype == object):
        kinds = (str,)
    else:
        raise Unsupported("membership of a boolean column")
    if not all(type(value) in kinds for value in items):
        raise Unsupported("a list of another kind than the column")
    if isinstance(item, Coded):
        found = np.isin(item.codes, [item.values.index(value) for value in items if value in item.values])
        return ~found if op == "not in" else found
    found = np.zeros(len(item.numerators) if isinstance(item, Rational) else len(item), dtype=bool)
    for value in items:
        found |= _compare("==", item, value)
    return ~found if op == "not in" else found
