"""Run-time semantics of the language: exact arithmetic, checked operations, run-time errors.

Numbers are ``int`` or ``decimal.Decimal``, never ``float``:

* ``+``, ``-``, ``*`` and unary ``-`` are exact. Two ints give an int; otherwise the result is a
  Decimal computed in :data:`EXACT`, a context with unlimited precision, so nothing is rounded.
* ``/`` of two ints that divide evenly gives an int. Any other quotient is a Decimal computed in
  :data:`DIVISION`: exact when it fits in :data:`DIVISION_PRECISION` (34) significant digits,
  otherwise rounded half-even to 34 digits (the precision of IEEE 754 decimal128).
* Comparisons between ints and Decimals are exact and use no context.

Both contexts are module-owned objects passed explicitly to every Decimal operation; the thread's
``decimal.getcontext()`` is never consulted, so a result is a pure function of the inputs whatever
the host application does to its own decimal context.

The ``checked_*`` functions below are the language's definition: each validates its operands and
raises :class:`ExpressionRuntimeError` with the operation's :class:`Site` (location and text) on
null, a wrong type, division by zero or a bad argument. Compiled code (:mod:`.codegen`) first
runs a fast path of plain Python operations and falls back to these on any exception.
"""

from __future__ import annotations

import datetime
import decimal
import math
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any, NoReturn

import msgspec

from fairalloc.errors import Diagnostic, ExitCode, FairallocError, Location

from .types import Kind, Type

DIVISION_PRECISION = 34
"""Significant digits of an inexact quotient (IEEE 754 decimal128)."""

MAX_ROUND_PLACES = 34
"""``round(x, places)`` accepts ``-34 <= places <= 34``."""

_TRAPS = [decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow]

EXACT = decimal.Context(
    prec=decimal.MAX_PREC,
    rounding=decimal.ROUND_HALF_EVEN,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=_TRAPS,
)
"""Context for + - * and unary minus: unlimited precision, so these never round."""

DIVISION = decimal.Context(
    prec=DIVISION_PRECISION,
    rounding=decimal.ROUND_HALF_EVEN,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=_TRAPS,
)
"""Context for inexact quotients: 34 significant digits, half-even."""

Number = int | Decimal


class ExpressionRuntimeError(FairallocError):
    """Evaluation failed on the data given: null in arithmetic, division by zero, bad argument.

    Carries one diagnostic located at the operation in the policy that failed.
    """

    exit_code = ExitCode.INVALID_INPUT


class Site(msgspec.Struct, frozen=True):
    """Where an operation is in the policy, its text and its operands' texts, for messages."""

    location: Location
    text: str
    operands: tuple[str, ...] = ()

    def operand(self, index: int) -> str:
        """How to name operand ``index`` in a message: its text, quoted."""
        return f"'{self.operands[index]}'" if index < len(self.operands) else "a value"


def fail(site: Site, code: str, message: str, hint: str) -> NoReturn:
    """Raise the run-time error ``code`` at ``site``."""
    raise ExpressionRuntimeError(Diagnostic(code, f"{message} (in {site.text})", site.location, hint))


def type_name(value: object) -> str:
    """The language's name for the type of a run-time value (for messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if type(value) is int or isinstance(value, Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime.datetime):
        return "timestamp"
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, (list, tuple, frozenset)):
        return "list"
    return f"Python {type(value).__name__}"


def _wrong(site: Site, index: int, value: object, wanted: str) -> NoReturn:
    """Operand ``index`` holds ``value``, which is not ``wanted``: expr-null or expr-bad-value."""
    subject = site.operand(index)
    if value is None:
        fail(site, "expr-null", f"{subject} is null where {wanted} is needed", "guard it with coalesce(value, default)")
    fail(
        site,
        "expr-bad-value",
        f"{subject} is a {type_name(value)} where {wanted} is needed",
        "the data does not match the declared type of this field",
    )


def number(site: Site, index: int, value: object) -> Number:
    """``value`` if it is a finite int or Decimal; else an ``expr-null``/``expr-bad-value`` error."""
    if type(value) is int:
        return value
    if isinstance(value, Decimal) and value.is_finite():
        return value
    _wrong(site, index, value, "a number")


def _exact(operation: Callable[[], Number], site: Site) -> Number:
    try:
        return operation()
    except decimal.DecimalException as error:
        fail(site, "expr-overflow", f"arithmetic failed ({type(error).__name__})", "check the magnitudes in the data")


def checked_add(site: Site, left: object, right: object) -> Number:
    a, b = number(site, 0, left), number(site, 1, right)
    if type(a) is int and type(b) is int:
        return a + b
    return _exact(lambda: EXACT.add(a, b), site)


def checked_sub(site: Site, left: object, right: object) -> Number:
    a, b = number(site, 0, left), number(site, 1, right)
    if type(a) is int and type(b) is int:
        return a - b
    return _exact(lambda: EXACT.subtract(a, b), site)


def checked_mul(site: Site, left: object, right: object) -> Number:
    a, b = number(site, 0, left), number(site, 1, right)
    if type(a) is int and type(b) is int:
        return a * b
    return _exact(lambda: EXACT.multiply(a, b), site)


def checked_div(site: Site, left: object, right: object) -> Number:
    a, b = number(site, 0, left), number(site, 1, right)
    if b == 0:
        fail(site, "expr-division-by-zero", f"division by zero: {site.operand(1)} is 0", "guard the divisor, e.g. max(x, 1)")
    if type(a) is int and type(b) is int and a % b == 0:
        return a // b
    return _exact(lambda: DIVISION.divide(a, b), site)


def checked_neg(site: Site, operand: object) -> Number:
    a = number(site, 0, operand)
    if type(a) is int:
        return -a
    return _exact(lambda: EXACT.minus(a), site)


def truth(site: Site, index: int, value: object) -> bool:
    """``value`` if it is a boolean; null or anything else is an error (no truthiness)."""
    if type(value) is bool:
        return value
    _wrong(site, index, value, "a boolean")


def checked_not(site: Site, operand: object) -> bool:
    return not truth(site, 0, operand)


def checked_and(site: Site, left: object, right: object) -> bool:
    return truth(site, 0, left) and truth(site, 1, right)


def checked_or(site: Site, left: object, right: object) -> bool:
    return truth(site, 0, left) or truth(site, 1, right)


def _require_zone(site: Site, index: int, value: datetime.datetime) -> None:
    """Timestamps from the data must carry an offset: a naive one has no unambiguous instant."""
    if value.utcoffset() is None:
        fail(
            site,
            "expr-bad-value",
            f"{site.operand(index)} is a timestamp without a time zone",
            "timestamps in the data must carry an offset",
        )


def _order_kind(site: Site, index: int, value: object) -> str:
    if isinstance(value, datetime.datetime):
        _require_zone(site, index, value)
        return "timestamp"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime.date):
        return "date"
    number(site, index, value)
    return "number"


def _same_order_kind(site: Site, values: tuple[object, ...]) -> None:
    """All ``values`` non-null and of one orderable kind, else a located error."""
    for index, value in enumerate(values):
        if value is None:
            _wrong(site, index, value, "a value that can be ordered")
    kinds = [_order_kind(site, index, value) for index, value in enumerate(values)]
    for index, kind in enumerate(kinds):
        if kind != kinds[0]:
            fail(
                site,
                "expr-bad-value",
                f"cannot order {site.operand(0)}, a {kinds[0]}, against {site.operand(index)}, a {kind}",
                "the data does not match the declared types of these fields",
            )


def checked_lt(site: Site, left: Any, right: Any) -> bool:
    _same_order_kind(site, (left, right))
    return bool(left < right)


def checked_le(site: Site, left: Any, right: Any) -> bool:
    _same_order_kind(site, (left, right))
    return bool(left <= right)


def checked_gt(site: Site, left: Any, right: Any) -> bool:
    _same_order_kind(site, (left, right))
    return bool(left > right)


def checked_ge(site: Site, left: Any, right: Any) -> bool:
    _same_order_kind(site, (left, right))
    return bool(left >= right)


def normal(value: object) -> object:
    """Lists compare as tuples, whichever sequence type the data used."""
    return tuple(value) if isinstance(value, list) else value


def equal(left: object, right: object) -> bool:
    """``==`` of the language: Python equality, with lists and tuples alike."""
    return bool(normal(left) == normal(right))


def checked_eq(site: Site, left: object, right: object) -> bool:
    del site
    return equal(left, right)


def checked_ne(site: Site, left: object, right: object) -> bool:
    del site
    return not equal(left, right)


def checked_in(site: Site, item: object, items: object) -> bool:
    if not isinstance(items, (list, tuple, frozenset)):
        _wrong(site, 1, items, "a list")
    target = normal(item)
    return any(normal(candidate) == target for candidate in items)


def checked_not_in(site: Site, item: object, items: object) -> bool:
    return not checked_in(site, item, items)


def field(site: Site, record: object, root: str, key: str) -> object:
    """``record[key]`` for the context record ``root``, or ``expr-missing-field`` if absent."""
    if not isinstance(record, dict):
        if record is None:
            fail(
                site,
                "expr-missing-field",
                f"there is no '{root}' data at this point",
                f"'{root}' is not known yet where this expression runs",
            )
        fail(site, "expr-bad-value", f"a {type_name(record)} where a record is needed", f"'{root}' must be a record")
    try:
        return record[key]
    except KeyError:
        fail(
            site,
            "expr-missing-field",
            f"field '{root}.{key}' is missing from the data",
            "every declared field must be present (null if unknown)",
        )


def conform(site: Site, value: object, expected: Type) -> object:
    """``value`` if it has type ``expected``, else ``expr-bad-value``.

    Compiled code applies this to the result of an expression whose static type is ANY (it reads
    a field declared ``any``), so the caller still gets the type it asked for.
    """
    if not has_type(value, expected):
        fail(
            site,
            "expr-bad-value",
            f"the result is a {type_name(value)} where a {expected} is required",
            "the data does not match the declared type of the field used",
        )
    return value


def has_type(value: object, expected: Type) -> bool:
    """True if the run-time ``value`` belongs to the static type ``expected``."""
    if expected.is_any:
        return True
    if value is None:
        return expected.nullable
    kind = expected.kind
    if kind is Kind.NUMBER:
        return type(value) is int or (isinstance(value, Decimal) and value.is_finite())
    if kind is Kind.STRING:
        return isinstance(value, str)
    if kind is Kind.BOOLEAN:
        return type(value) is bool
    if kind is Kind.TIMESTAMP:
        return isinstance(value, datetime.datetime) and value.utcoffset() is not None
    if kind is Kind.DATE:
        return isinstance(value, datetime.date) and not isinstance(value, datetime.datetime)
    if kind is Kind.LIST:
        assert expected.element is not None
        element = expected.element
        return isinstance(value, (list, tuple)) and all(has_type(item, element) for item in value)
    return False


# ---------------------------------------------------------------------------------------------
# Built-in functions. Each takes the call's Site first, then the argument values.


def fn_min(site: Site, *values: Any) -> Any:
    _same_order_kind(site, values)
    return min(values)


def fn_max(site: Site, *values: Any) -> Any:
    _same_order_kind(site, values)
    return max(values)


def fn_abs(site: Site, value: object) -> Number:
    a = number(site, 0, value)
    if type(a) is int:
        return abs(a)
    return _exact(lambda: EXACT.abs(a), site)


def fn_floor(site: Site, value: object) -> int:
    return math.floor(number(site, 0, value))


def fn_ceil(site: Site, value: object) -> int:
    return math.ceil(number(site, 0, value))


def fn_round(site: Site, value: object, places: object = 0) -> Number:
    """Round half-even to ``places`` decimals; a whole number when ``places <= 0``."""
    a = number(site, 0, value)
    digits = number(site, 1, places)
    if digits != int(digits) or not -MAX_ROUND_PLACES <= digits <= MAX_ROUND_PLACES:
        fail(
            site,
            "expr-invalid-argument",
            f"places must be a whole number from -{MAX_ROUND_PLACES} to {MAX_ROUND_PLACES}, got {digits}",
            f"round to a whole number of places from -{MAX_ROUND_PLACES} to {MAX_ROUND_PLACES}",
        )
    whole = int(digits)
    if type(a) is int and whole >= 0:
        return a
    quantum = Decimal((0, (1,), -whole))
    rounded = _exact(lambda: Decimal(a).quantize(quantum, decimal.ROUND_HALF_EVEN, EXACT), site)
    return int(rounded) if whole <= 0 else rounded


def _lot(site: Site, value: object, lot: object, up: bool) -> Number:
    a, size = number(site, 0, value), number(site, 1, lot)
    if size <= 0:
        fail(site, "expr-invalid-argument", f"lot must be greater than zero, got {size}", "use a positive lot size")
    ratio = Fraction(a) / Fraction(size)
    lots = math.ceil(ratio) if up else math.floor(ratio)
    if type(size) is int:
        return lots * size
    return _exact(lambda: EXACT.multiply(lots, size), site)


def fn_round_lot(site: Site, value: object, lot: object) -> Number:
    """The largest multiple of ``lot`` not above ``value``."""
    return _lot(site, value, lot, up=False)


def fn_ceil_lot(site: Site, value: object, lot: object) -> Number:
    """The smallest multiple of ``lot`` not below ``value``."""
    return _lot(site, value, lot, up=True)


def fn_len(site: Site, value: object) -> int:
    if isinstance(value, (str, list, tuple)):
        return len(value)
    _wrong(site, 0, value, "a string or a list")


def fn_coalesce(site: Site, *values: object) -> object:
    del site
    for value in values:
        if value is not None:
            return value
    return None


def _calendar_day(site: Site, index: int, value: object) -> datetime.date:
    if isinstance(value, datetime.datetime):
        _require_zone(site, index, value)
        return value.astimezone(datetime.timezone.utc).date()
    if isinstance(value, datetime.date):
        return value
    _wrong(site, index, value, "a date or a timestamp")


def fn_days_between(site: Site, first: object, second: object) -> int:
    """Calendar days from ``first`` to ``second`` (timestamps taken as their UTC date)."""
    start = _calendar_day(site, 0, first)
    return (_calendar_day(site, 1, second) - start).days


def _text(site: Site, index: int, value: object) -> str:
    if isinstance(value, str):
        return value
    _wrong(site, index, value, "a string")


def fn_lower(site: Site, value: object) -> str:
    return _text(site, 0, value).lower()


def fn_upper(site: Site, value: object) -> str:
    return _text(site, 0, value).upper()


def fn_starts_with(site: Site, value: object, prefix: object) -> bool:
    return _text(site, 0, value).startswith(_text(site, 1, prefix))


BINARY: dict[str, Callable[[Site, Any, Any], Any]] = {
    "+": checked_add,
    "-": checked_sub,
    "*": checked_mul,
    "/": checked_div,
    "==": checked_eq,
    "!=": checked_ne,
    "<": checked_lt,
    "<=": checked_le,
    ">": checked_gt,
    ">=": checked_ge,
    "in": checked_in,
    "not in": checked_not_in,
    "and": checked_and,
    "or": checked_or,
}
"""The checked implementation of every binary operator (``and``/``or`` here evaluate both sides;
compiled code short-circuits instead)."""

UNARY: dict[str, Callable[[Site, Any], Any]] = {"-": checked_neg, "not": checked_not}
"""The checked implementation of every unary operator."""
