"""The trade contract as pydantic models: the reference validator that names every violation.

The models mirror ``trade.schema.json`` (the shipped copy of the contract) field for field, and
``tests/test_contract.py`` holds them to it. :func:`fairalloc.trade.load_trade` reads a trade that
is in the contract's plain form without them (:mod:`msgspec` decodes it in C); a document it cannot
clear that way — any doubt at all — is validated here, so that every error is reported, each
with its JSON pointer (``/statement/accounts/3/intended``), and the values accepted are exactly
these models' values. Importing this module imports pydantic, which costs a process start-up
more than all of the allocation of a small block: only a trade that needs it pays for it.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from fairalloc.numbers import MAX_NUMBER_TEXT, number_problem
from fairalloc.schema import is_timestamp
from fairalloc.trade import Process

DECIMAL = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")  # matched whole (fullmatch): no trailing newline
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _bounded(value: int | Decimal) -> int | Decimal:
    problem = number_problem(value)
    if problem is not None:
        raise PydanticCustomError("number_range", "the number {value} {problem}",
                                  {"value": str(value), "problem": problem})
    return value


def _decimal_text(value: str, what: str) -> int | Decimal:
    if len(value) > MAX_NUMBER_TEXT:
        raise PydanticCustomError("number_range", "a {what} written with more than {limit} characters",
                                  {"what": what, "limit": MAX_NUMBER_TEXT})
    if not DECIMAL.fullmatch(value):
        raise ValueError(f"{value!r} is not a {what}: write digits with an optional decimal point")
    return _bounded(int(value) if "." not in value else Decimal(value))


def _quantity(value: Any) -> int | Decimal:
    """Whole quantities stay ``int`` (fast, exact); decimal strings become ``Decimal``."""
    if type(value) is int:
        if value < 0:
            raise ValueError(f"a quantity cannot be negative ({value})")
        return _bounded(value)
    if isinstance(value, bool):
        raise ValueError("a quantity must be a whole number or a decimal string, not a boolean")
    if isinstance(value, str):
        return _decimal_text(value, "quantity")
    if isinstance(value, Decimal) and _bounded(value) == value.to_integral_value():
        return _quantity(int(value))  # 18000.0 is the integer 18000, as JSON Schema says
    if isinstance(value, float) and value.is_integer():
        return _quantity(int(value))
    if isinstance(value, (float, Decimal)):
        raise ValueError(
            f"{value} is a JSON number with a fraction: write quantities as whole numbers or decimal strings"
        )
    raise ValueError(f"a quantity must be a whole number or a decimal string, not {type(value).__name__}")


def _price(value: Any) -> Decimal:
    if isinstance(value, str):
        return Decimal(_decimal_text(value, "price"))
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        raise ValueError(f"prices are decimal strings such as \"99.95\", not the JSON number {value}")
    raise ValueError(f"{value!r} is not a price: write a decimal string such as \"99.95\"")


def _text(value: Any) -> Any:
    """Dates and timestamps are ISO 8601 strings in the contract, never numbers (Unix times)."""
    if not isinstance(value, (str, dt.date)):
        raise ValueError(f"{value!r} is not an ISO 8601 string")
    return value


def _timestamp(value: Any) -> Any:
    """A timestamp is RFC 3339 with an offset, as the contract's ``"format": "date-time"`` says."""
    if isinstance(value, str):
        if not is_timestamp(value):
            raise PydanticCustomError("timestamp", "{value} is not an RFC 3339 timestamp with an offset",
                                      {"value": repr(value[:60])})
        return value.upper()
    return _text(value)


def _date(value: Any) -> Any:
    """A trade date is a calendar date written ``YYYY-MM-DD``, as the contract's ``"format": "date"``
    says: a timestamp (even one at midnight) is refused, as the schema refuses it."""
    if isinstance(value, dt.datetime) or (isinstance(value, str) and not DATE.fullmatch(value)):
        raise PydanticCustomError("date", "{value} is not a date: write YYYY-MM-DD", {"value": repr(value)})
    return _text(value)


def _not_null(value: Any) -> Any:
    """An optional field of the contract may be left out, but not written as null."""
    if value is None:
        raise ValueError("null is not allowed here: leave the field out instead")
    return value


Quantity = Annotated[int | Decimal, BeforeValidator(_quantity)]
Date = Annotated[dt.date, BeforeValidator(_date)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_timestamp)]
Price = Annotated[Decimal, BeforeValidator(_price)]
Money = Annotated[Decimal, BeforeValidator(_price)]  # an amount of cash: a decimal string, like a price
CostMap = dict[Annotated[str, Field(min_length=1, strict=True)], Money]
Costs = Annotated[CostMap | None, BeforeValidator(_not_null)]  # by cost name: commission, sec_fee, ...
NonEmpty = Annotated[str, Field(min_length=1, strict=True)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Order(_Model):
    id: NonEmpty
    symbol: NonEmpty
    side: Literal["buy", "sell", "sell_short"]
    quantity: Quantity
    trade_date: Date
    entered_at: Timestamp
    limit_price: Price | None = None
    security: Annotated[dict[str, Any], BeforeValidator(_not_null)] = Field(default_factory=dict)
    costs: Costs = None  # commissions and fees charged on the order as a whole, by name


class Clearing(_Model):
    """Where an account's shares clear when not with the executing broker (FIX ProcessCode 81);
    the processes are those of :data:`fairalloc.trade.PROCESS_CODES`."""

    process: Process
    broker: NonEmpty


class StatementAccount(_Model):
    account: NonEmpty
    intended: Quantity
    limit_price: Price | None = None
    received_at: Annotated[Timestamp | None, BeforeValidator(_not_null)] = None
    attributes: Annotated[dict[str, Any], BeforeValidator(_not_null)] = Field(default_factory=dict)
    clearing: Annotated[Clearing | None, BeforeValidator(_not_null)] = None


class Statement(_Model):
    recorded_at: Timestamp
    recorded_by: NonEmpty
    accounts: list[StatementAccount] = Field(min_length=1)


class Fill(_Model):
    id: NonEmpty
    quantity: Quantity
    price: Price
    executed_at: Timestamp
    venue: Annotated[Annotated[str, Field(strict=True)] | None, BeforeValidator(_not_null)] = None
    trade_date: Annotated[Date | None, BeforeValidator(_not_null)] = None  # a GTC order's later day; else the order's
    broker: Annotated[NonEmpty | None, BeforeValidator(_not_null)] = None  # the executing broker
    costs: Costs = None  # commissions and fees charged on this fill, by name


class Trade(_Model):
    """One block order with its statement and fills, validated against the contract."""

    order: Order
    statement: Statement
    fills: list[Fill]
