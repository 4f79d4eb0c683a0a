"""Exact numbers and named rounding rules.

Quantities and money are ``int``, :class:`~decimal.Decimal` or :class:`~fractions.Fraction`,
never binary floats, and every number read from a policy, a trade or any other input is first
held to :func:`number_problem`'s bounds (``docs/policy-language.md#limits``), so that no input
number can make exact arithmetic slow. Division goes through :data:`CONTEXT`, a decimal context this module owns
(34 significant digits, half-even — IEEE decimal128), never the thread's global context, which a
host application could change: results must be a pure function of the inputs. Presentation
rounding is explicit and named (``docs/rounding.md``).
"""

from __future__ import annotations

import re
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from collections.abc import Iterable, Sequence
from fractions import Fraction

CONTEXT = Context(prec=34, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])

ROUNDING_RULES: dict[str, str] = {
    "half_even": ROUND_HALF_EVEN,  # to nearest, ties to even ("banker's rounding")
    "half_up": ROUND_HALF_UP,  # to nearest, ties away from zero
    "down": ROUND_DOWN,  # towards zero (truncate)
    "up": ROUND_UP,  # away from zero
    "floor": ROUND_FLOOR,
    "ceiling": ROUND_CEILING,
}


MAX_INTEGER_DIGITS = 30
"""Digits an input number may have before the decimal point (its magnitude is below 10**30)."""

MAX_FRACTION_DIGITS = 40
"""Digits an input number may have after the decimal point, trailing zeros included."""

MAX_NUMBER_TEXT = 100
"""Characters a number may be written with (sign, digits, point, exponent), checked before it is
converted, so that converting is never the slow part."""


def number_problem(value: int | Decimal) -> str | None:
    """Why ``value`` is outside the input bounds, or ``None`` when it is inside them.

    An integer may have at most :data:`MAX_INTEGER_DIGITS` digits; a decimal at most that many
    before its point and :data:`MAX_FRACTION_DIGITS` after it once its exponent is applied
    (``1e-999999999`` has a billion digits after the point) and must be finite. The check costs
    a few operations whatever the number, so it is safe on the largest input.
    """
    if type(value) is int:
        if -(10**MAX_INTEGER_DIGITS) < value < 10**MAX_INTEGER_DIGITS:
            return None
        return f"has more than {MAX_INTEGER_DIGITS} digits"
    if not isinstance(value, Decimal):
        raise TypeError(f"not an exact number: {type(value).__name__}")
    if not value.is_finite():
        return "is not a finite number"
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if exponent < -MAX_FRACTION_DIGITS:
        return f"has more than {MAX_FRACTION_DIGITS} digits after the decimal point"
    if len(digits) + exponent > MAX_INTEGER_DIGITS and value != 0:
        return f"has more than {MAX_INTEGER_DIGITS} digits before the decimal point"
    return None


_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def decimal_from_text(text: str) -> Decimal:
    """The number a text input writes, within :func:`number_problem`'s bounds, or ``ValueError``
    saying why it is none.

    Only ASCII digits with an optional sign, point and exponent are numbers: :class:`Decimal` itself
    also takes ``"NaN"``, ``" 5"``, ``"1_000"`` and full-width ``"５"``, none of which an OMS means
    as a number. The length is checked before converting, so converting is never the slow part."""
    if len(text) > MAX_NUMBER_TEXT:
        raise ValueError(f"is written with more than {MAX_NUMBER_TEXT} characters")
    if not _NUMBER_TEXT.fullmatch(text):
        raise ValueError("is not a number")
    value = Decimal(text)
    problem = number_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


EXACT = Context(prec=60, rounding=ROUND_HALF_EVEN, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])


def exact_sum(values: Iterable[int | Decimal]) -> int | Decimal:
    """Sum quantities exactly: integers as integers; decimals at 60 digits, raising rather than
    rounding silently should a sum ever be inexact."""
    items = list(values)
    if set(map(type, items)) <= {int}:
        return sum(items)  # whole quantities: plain integer arithmetic, exact and fast
    total: int | Decimal = 0
    for value in items:
        total = total + value if type(value) is int and type(total) is int else EXACT.add(total, value)
    return total


def as_decimal(value: Fraction) -> Decimal:
    """A rational with a terminating decimal expansion, as a Decimal, or 34 significant digits."""
    return CONTEXT.divide(Decimal(value.numerator), Decimal(value.denominator))


def divide(numerator: Decimal | int, denominator: Decimal | int) -> Decimal:
    """``numerator / denominator`` at 34 significant digits, half-even, independent of global state."""
    return CONTEXT.divide(Decimal(numerator), Decimal(denominator))


def present(value: Fraction, places: int, rule: str = "half_even") -> Decimal:
    """Round an exact rational to ``places`` decimals by the named rule, then drop trailing zeros.

    The rounding decision is made on integers, exactly. ``present(Fraction(3000000, 30000), 6)`` is
    ``Decimal("100")``: a price the source document quotes as 100 is shown as ``100``.
    """
    return _strip(Decimal(f"{_rounded(value, places, rule)}E-{places}"))  # exact: no context rounds it


def present_text(value: Fraction, places: int, rule: str = "half_even") -> str:
    """``decimal_text(present(value, places, rule))``, written from the rounded integer directly:
    the digits with the point set ``places`` from the right, trailing fractional zeros dropped."""
    rounded = _rounded(value, places, rule)
    if places <= 0 or not rounded:
        return decimal_text(present(value, places, rule))
    digits = str(abs(rounded))
    whole, fraction = digits[:-places] or "0", digits[-places:].rjust(places, "0").rstrip("0")
    return ("-" if rounded < 0 else "") + whole + ("." + fraction if fraction else "")


def _rounded(value: Fraction, places: int, rule: str) -> int:
    """``value`` x 10**places rounded to an integer by the named rule, exactly."""
    if rule not in ROUNDING_RULES:
        raise ValueError(f"unknown rounding rule {rule!r}")
    sign = -1 if value < 0 else 1
    quotient, remainder = divmod(abs(value.numerator) * 10**places, value.denominator)
    assert isinstance(quotient, int)
    twice, denominator = 2 * remainder, value.denominator
    away = (sign > 0 and rule == "ceiling") or (sign < 0 and rule == "floor")
    if remainder and (
        rule == "up"
        or away
        or (rule == "half_up" and twice >= denominator)
        or (rule == "half_even" and (twice > denominator or (twice == denominator and quotient % 2)))
    ):
        quotient += 1
    return sign * quotient


def _strip(value: Decimal) -> Decimal:
    """``value`` without trailing fractional zeros, exactly (``normalize`` would round to the
    context's precision: 100.00000000000000000000000001 became 100 at 28 digits)."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int), "only finite numbers are stripped"
    if not any(digits):
        return Decimal(0)
    if exponent >= 0:
        return Decimal(int(value))
    keep = len(digits)
    while exponent < 0 and keep > 1 and digits[keep - 1] == 0:
        keep -= 1
        exponent += 1
    return Decimal((sign, digits[:keep], exponent))


def decimal_text(value: Decimal | int) -> str:
    """Plain positional text of a number (no exponent, no trailing fractional zeros), exactly, as
    the contract requires; also the policy digest's spelling of a number."""
    if isinstance(value, int):
        return str(value)
    return format(_strip(value), "f")


def units_scale(values: Sequence[int | Decimal]) -> int:
    """Smallest power of ten that makes every quantity (and the lot) a whole number of units."""
    if set(map(type, values)) <= {int}:
        return 1  # whole quantities (the common case, checked at C speed over 100,000 of them)
    places = 0
    for value in values:
        if isinstance(value, int):
            continue
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < 0:
            places = max(places, -exponent)
    return int(10**places)


def to_units(value: Decimal | int, scale: int) -> int:
    """An input quantity in whole units (exact: ``scale`` was chosen to make it whole)."""
    if isinstance(value, int):
        return value * scale
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0:  # a whole number written without a point (a lot of 100)
        return int(value) * scale
    units = Fraction(value) * scale
    assert units.denominator == 1
    return units.numerator
