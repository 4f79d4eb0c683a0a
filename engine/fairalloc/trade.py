"""The OMS-facing input: a block order, its pre-trade allocation statement and its fills.

The pydantic models below mirror ``trade.schema.json`` (the shipped copy of the contract) field for
field, and ``tests/test_contract.py`` holds them to it. They are used instead of a generic JSON Schema
validator on the hot path because they validate 100,000 accounts in a fraction of the time, and
their errors are turned into JSON pointers (``/statement/accounts/3/intended``) just the same.
Quantities and prices become :class:`~decimal.Decimal`; binary floats are refused, even when a JSON
producer wrote ``100.0``.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from fairalloc.errors import Diagnostic, InputError, Location, pointer
from fairalloc.load import read_text

_DECIMAL = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]+)?$")


def _quantity(value: Any) -> int | Decimal:
    """Whole quantities stay ``int`` (fast, exact); decimal strings become ``Decimal``."""
    if type(value) is int:
        if value < 0:
            raise ValueError(f"a quantity cannot be negative ({value})")
        return value
    if isinstance(value, bool):
        raise ValueError("a quantity must be a whole number or a decimal string, not a boolean")
    if isinstance(value, str):
        if not _DECIMAL.match(value):
            raise ValueError(f"'{value}' is not a quantity: write digits with an optional decimal point")
        return int(value) if "." not in value else Decimal(value)
    if isinstance(value, (float, Decimal)):
        raise ValueError(
            f"{value} is a JSON number with a fraction: write quantities as whole numbers or decimal strings"
        )
    raise ValueError(f"a quantity must be a whole number or a decimal string, not {type(value).__name__}")


def _price(value: Any) -> Decimal:
    if isinstance(value, str) and _DECIMAL.match(value):
        return Decimal(value)
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        raise ValueError(f"prices are decimal strings such as \"99.95\", not the JSON number {value}")
    raise ValueError(f"{value!r} is not a price: write a decimal string such as \"99.95\"")


def _text(value: Any) -> Any:
    """Dates and timestamps are ISO 8601 strings in the contract, never numbers (Unix times)."""
    if not isinstance(value, (str, dt.date)):
        raise ValueError(f"{value!r} is not an ISO 8601 string")
    return value


def _not_null(value: Any) -> Any:
    """An optional field of the contract may be left out, but not written as null."""
    if value is None:
        raise ValueError("null is not allowed here: leave the field out instead")
    return value


Quantity = Annotated[int | Decimal, BeforeValidator(_quantity)]
Date = Annotated[dt.date, BeforeValidator(_text)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_text)]
Price = Annotated[Decimal, BeforeValidator(_price)]
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


class StatementAccount(_Model):
    account: NonEmpty
    intended: Quantity
    limit_price: Price | None = None
    received_at: Annotated[Timestamp | None, BeforeValidator(_not_null)] = None
    attributes: Annotated[dict[str, Any], BeforeValidator(_not_null)] = Field(default_factory=dict)


class Statement(_Model):
    recorded_at: Timestamp
    recorded_by: NonEmpty
    accounts: list[StatementAccount] = Field(min_length=1)

    # The controls, the context and the columnar allocation each read these columns of a large
    # statement; the model is immutable, so they are taken from the accounts once.
    @cached_property
    def account_ids(self) -> list[str]:
        """Every account id, in statement order."""
        return [account.account for account in self.accounts]

    @cached_property
    def intended(self) -> list[int | Decimal]:
        """Every intended quantity, in statement order."""
        return [account.intended for account in self.accounts]


class Fill(_Model):
    id: NonEmpty
    quantity: Quantity
    price: Price
    executed_at: Timestamp
    venue: Annotated[Annotated[str, Field(strict=True)] | None, BeforeValidator(_not_null)] = None


class Trade(_Model):
    """One block order with its statement and fills, validated against the contract."""

    order: Order
    statement: Statement
    fills: list[Fill]

    def to_json(self) -> dict[str, Any]:
        """The trade as a contract document (quantities as integers or decimal strings)."""
        document: dict[str, Any] = _jsonable(self.model_dump(exclude_none=True))
        return document


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def parse_json(text: str, file: str) -> Any:
    """Parse JSON exactly: decimals as :class:`Decimal`, duplicate keys refused, errors located."""
    try:
        return json.loads(text, parse_float=Decimal, object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKey as error:
        raise InputError(
            Diagnostic("json-duplicate-key", f"duplicate key '{error.key}' in JSON object", Location(file),
                       "a key may appear once in an object")
        ) from None
    except json.JSONDecodeError as error:
        raise InputError(
            Diagnostic("json-syntax", f"malformed JSON: {error.msg}", Location(file, error.lineno, error.colno))
        ) from None


def load_trade(source: str | Path | dict[str, Any], *, file: str | None = None) -> Trade:
    """Validate a trade document (a dict, or a path to a JSON file) and return a :class:`Trade`.

    Raises :class:`InputError` listing every violation with its JSON pointer.
    """
    with _collector_paused():
        if isinstance(source, dict):
            data: Any = source
            name = file or "<trade>"
        else:
            name = file or str(source)
            data = parse_json(read_text(str(source)), name)
        if not isinstance(data, dict):
            raise InputError(Diagnostic("trade-type", "a trade document must be a JSON object",
                                        Location(name, pointer="")))
        try:
            return Trade.model_validate(data)
        except ValidationError as error:
            raise InputError([_diagnostic(item, name) for item in error.errors()]) from None


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a trade is parsed and validated, then restore it.

    A statement of 100,000 accounts becomes some 400,000 dictionaries, lists and models, none of
    them in a reference cycle; as they pile up, the collector would scan the growing heap again
    and again, which made parsing and validating such a trade three times slower. Reference
    counting still frees everything as usual; the collector is re-enabled afterwards only if it
    was enabled before.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _diagnostic(item: Any, file: str) -> Diagnostic:
    loc = tuple(part for part in item["loc"])
    kind = item["type"]
    message = item["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    code = "trade-" + kind.replace("_", "-")
    hint = None
    if kind == "missing":
        message = f"required field '{loc[-1]}' is missing"
        code = "trade-missing"
    elif kind == "extra_forbidden":
        message = f"unknown field '{loc[-1]}'"
        code = "trade-unknown-field"
        hint = "the contract does not allow extra fields here (see trade.schema.json)"
    elif kind == "value_error":
        code = "trade-value"
    elif kind.startswith("timezone_aware") or kind.startswith("datetime"):
        code = "trade-timestamp"
        hint = "write ISO 8601 timestamps with an offset, e.g. 2026-03-02T14:30:00Z"
    return Diagnostic(code, message, Location(file, pointer=pointer(loc)), hint)
