"""The OMS-facing input: a block order, its pre-trade allocation statement and its fills.

The pydantic models below mirror ``trade.schema.json`` (the shipped copy of the contract) field for
field, and ``tests/test_contract.py`` holds them to it. They are used instead of a generic JSON Schema
validator on the hot path because they validate 100,000 accounts in a fraction of the time, and
their errors are turned into JSON pointers (``/statement/accounts/3/intended``) just the same.
Quantities and prices become ``int`` or :class:`~decimal.Decimal`, never binary floats: JSON
numbers are read as decimals, and a quantity written ``18000.0`` is the whole number 18000, as the
contract's ``"type": "integer"`` says (``18000.5`` is refused: write fractions as decimal strings).

Every input is bounded before it can cost anything (``docs/oms-integration.md#limits``): the text's
length (:data:`MAX_CHARS`), the nesting depth (:data:`MAX_DEPTH`), and the digits and exponent of
every number (:func:`fairalloc.numbers.number_problem`). Account ids and attribute keys must be
names in the sense of :func:`fairalloc.names.normalise` (no invisible characters, one script), and
no two in one statement (or one attributes object) may normalise to the same text: look-alikes
are refused rather than taken for different accounts.
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
from pydantic_core import PydanticCustomError

from fairalloc.errors import Code, Diagnostic, InputError, Location, pointer
from fairalloc.load import MAX_FILE_CHARS, read_text
from fairalloc.names import NameProblem, normalise
from fairalloc.numbers import MAX_INTEGER_DIGITS, MAX_NUMBER_TEXT, number_problem
from fairalloc.schema import is_timestamp

MAX_CHARS = MAX_FILE_CHARS
"""Characters a JSON input document (a trade, a rotation state) may have: 64 MiB of ASCII text,
room for a statement of several hundred thousand accounts."""

MAX_DEPTH = 32
"""Objects and arrays nested inside each other in a JSON input, the document itself counting as 1."""

_DECIMAL = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")  # matched whole (fullmatch): no trailing newline
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_FREE_FORM_DEPTH = {"security": 3, "attributes": 5}  # where those objects sit below the document


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
    if not _DECIMAL.fullmatch(value):
        raise ValueError(f"'{value}' is not a {what}: write digits with an optional decimal point")
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
    if isinstance(value, dt.datetime) or (isinstance(value, str) and not _DATE.fullmatch(value)):
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


PROCESS_CODES: dict[str, str] = {
    "regular": "0",
    "soft_dollar": "1",
    "step_in": "2",
    "step_out": "3",
    "soft_dollar_step_in": "4",
    "soft_dollar_step_out": "5",
    "plan_sponsor": "6",
}
"""A clearing instruction's process, by its name in the trade, and its FIX ProcessCode (81)."""


class Clearing(_Model):
    """Where an account's shares clear when not with the executing broker: a step-out (or step-in,
    soft-dollar or plan-sponsor process) to the named broker, as FIX ProcessCode (81) says."""

    process: Literal["regular", "soft_dollar", "step_in", "step_out", "soft_dollar_step_in",
                     "soft_dollar_step_out", "plan_sponsor"]
    broker: NonEmpty

    @property
    def process_code(self) -> str:
        return PROCESS_CODES[self.process]


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
    trade_date: Annotated[Date | None, BeforeValidator(_not_null)] = None  # a GTC order's later day; else the order's
    broker: Annotated[NonEmpty | None, BeforeValidator(_not_null)] = None  # the executing broker
    costs: Costs = None  # commissions and fees charged on this fill, by name


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


class _NumberOutOfRange(ValueError):
    def __init__(self, text: str, problem: str) -> None:
        super().__init__(text)
        self.text = text
        self.problem = problem


def _json_int(text: str) -> int:
    if len(text) > MAX_NUMBER_TEXT:
        raise _NumberOutOfRange(text, f"is written with more than {MAX_NUMBER_TEXT} characters")
    value = int(text)
    problem = number_problem(value)
    if problem is not None:
        raise _NumberOutOfRange(text, problem)
    return value


def _json_decimal(text: str) -> Decimal:
    if len(text) > MAX_NUMBER_TEXT:
        raise _NumberOutOfRange(text, f"is written with more than {MAX_NUMBER_TEXT} characters")
    value = Decimal(text)
    problem = number_problem(value)
    if problem is not None:
        raise _NumberOutOfRange(text, problem)
    return value


def _location_of(text: str, index: int, file: str) -> Location:
    line = text.count("\n", 0, index) + 1
    return Location(file, line, index - (text.rfind("\n", 0, index) + 1) + 1)


_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _too_deep_at(text: str) -> int:
    """The index of the first bracket that opens level ``MAX_DEPTH + 1`` (strings skipped)."""
    depth = 0
    for match in _NESTING.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return match.start()
        elif token in "]}":
            depth -= 1
    return 0


def parse_json(text: str, file: str) -> Any:
    """Parse JSON exactly and within bounds: decimals as :class:`Decimal`, every number within
    :func:`fairalloc.numbers.number_problem`'s bounds, duplicate keys refused, errors located."""
    if len(text) > MAX_CHARS:
        raise InputError(Diagnostic(Code.JSON_TOO_LARGE, f"the document is longer than {MAX_CHARS:,} characters",
                                    Location(file, 1, 1), "split the block into several trades"))
    try:
        return json.loads(text, parse_float=_json_decimal, parse_int=_json_int,
                          object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKey as error:
        raise InputError(
            Diagnostic(Code.JSON_DUPLICATE_KEY, f"duplicate key '{error.key}' in JSON object", Location(file),
                       "a key may appear once in an object")
        ) from None
    except _NumberOutOfRange as error:
        found = re.search(r"(?<![\w.+-])" + re.escape(error.text) + r"(?![\w.])", text)
        where = _location_of(text, found.start(), file) if found else Location(file)
        raise InputError(Diagnostic(Code.JSON_NUMBER_RANGE, f"the number {error.text[:40]}"
                                    f"{'...' if len(error.text) > 40 else ''} {error.problem}", where,
                                    "see the limits on numbers in docs/oms-integration.md")) from None
    except RecursionError:
        # The parser nests one call per level; a document this deep is far beyond MAX_DEPTH.
        raise InputError(Diagnostic(Code.JSON_TOO_DEEP, f"objects and arrays nest deeper than {MAX_DEPTH} levels",
                                    _location_of(text, _too_deep_at(text), file))) from None
    except json.JSONDecodeError as error:
        raise InputError(
            Diagnostic(Code.JSON_SYNTAX, f"malformed JSON: {error.msg}", Location(file, error.lineno, error.colno))
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
            data = parse_json(read_text(str(source), limit=MAX_CHARS), name)
        if not isinstance(data, dict):
            raise InputError(Diagnostic(Code.TRADE_TYPE, "a trade document must be a JSON object",
                                        Location(name, pointer="")))
        try:
            trade = Trade.model_validate(data)
        except ValidationError as error:
            raise InputError([_diagnostic(item, name) for item in error.errors()]) from None
        problems = _name_and_value_problems(trade, name)
        if problems:
            raise InputError(problems)
        return trade


def _plain_name(text: str) -> bool:
    """ASCII letters, digits and punctuation: already the canonical form of a name, one script."""
    return text.isascii() and text.isprintable() and text == text.strip()


def _name_problem(text: str) -> tuple[str, NameProblem | None]:
    """``text``'s canonical form, or the reason it has none."""
    if _plain_name(text):
        return text, None
    try:
        return normalise(text, fold_case=False), None
    except NameProblem as problem:
        return text, problem


def _name_and_value_problems(trade: Trade, file: str) -> list[Diagnostic]:
    """Account ids and attribute keys that are not names or are look-alikes of another one, and
    free-form values (``security``, ``attributes``) nested too deep or holding numbers out of
    bounds; each with its JSON pointer."""
    found: list[Diagnostic] = []
    accounts = trade.statement.accounts
    if not all(map(_plain_name, trade.statement.account_ids)):
        first: dict[str, int] = {}
        for index, account in enumerate(accounts):
            where = Location(file, pointer=f"/statement/accounts/{index}/account")
            canonical, problem = _name_problem(account.account)
            if problem is not None:
                found.append(Diagnostic(Code.TRADE_ACCOUNT_ID, f"account id {problem}", where,
                                        "account ids must look like what they are: no invisible characters, "
                                        "letters of one script"))
                continue
            seen = first.setdefault(canonical, index)
            if seen != index and accounts[seen].account != account.account:
                found.append(Diagnostic(
                    Code.TRADE_ACCOUNT_LOOKALIKE,
                    f"account id '{account.account}' is a look-alike of '{accounts[seen].account}' "
                    f"(/statement/accounts/{seen}/account): both read '{canonical}'",
                    where, "one account, one id: write the id exactly as the other entry does"))
    found.extend(_free_form_problems(trade.order.security, "/order/security", file))
    for index in _attributes_to_check(accounts):
        found.extend(_free_form_problems(accounts[index].attributes, f"/statement/accounts/{index}/attributes", file))
    return found


_INT_BOUND = 10**MAX_INTEGER_DIGITS


def _attributes_to_check(accounts: list[StatementAccount]) -> list[int]:
    """The accounts whose attributes need :func:`_free_form_problems`: those holding a key that is
    not plain ASCII, a nested value, or a number that is not a small integer. A statement of
    100,000 accounts with text and boolean attributes is cleared in one quick pass."""
    keys: set[str] = set()
    flagged: list[int] = []
    for index, account in enumerate(accounts):
        attributes = account.attributes
        keys.update(attributes)
        for value in attributes.values():
            kind = type(value)
            if kind is str or kind is bool or value is None or (kind is int and -_INT_BOUND < value < _INT_BOUND):
                continue
            flagged.append(index)
            break
    odd = {key for key in keys if not _plain_name(key)}
    if odd:
        flagged.extend(index for index, account in enumerate(accounts) if odd.intersection(account.attributes))
    return sorted(set(flagged))


def _free_form_problems(data: dict[str, Any], base: str, file: str) -> list[Diagnostic]:
    """Problems in a ``security`` or ``attributes`` object: keys that are not names or look alike,
    nesting beyond :data:`MAX_DEPTH` (counted from the document), numbers out of bounds."""
    found: list[Diagnostic] = []
    keys: dict[str, str] = {}
    for key in data:
        canonical, problem = _name_problem(key)
        where = Location(file, pointer=f"{base}/{_escape(key)}")
        if problem is not None:
            found.append(Diagnostic(Code.TRADE_ATTRIBUTE_KEY, f"attribute key {problem}", where))
        elif canonical in keys and keys[canonical] != key:
            found.append(Diagnostic(Code.TRADE_ATTRIBUTE_KEY,
                                    f"attribute key '{key}' is a look-alike of '{keys[canonical]}'", where,
                                    "write each key once, in one spelling"))
        keys.setdefault(canonical, key)
    depth = base.count("/") + 1  # the document is level 1; this object sits below it
    stack: list[tuple[Any, str, int]] = [(value, f"{base}/{_escape(key)}", depth)
                                         for key, value in data.items() if type(value) not in _SCALARS]
    while stack:
        value, where_text, level = stack.pop()
        if isinstance(value, (dict, list)):
            if level + 1 > MAX_DEPTH:
                found.append(Diagnostic(Code.JSON_TOO_DEEP, f"objects and arrays nest deeper than {MAX_DEPTH} levels",
                                        Location(file, pointer=where_text)))
                continue
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((item, f"{where_text}/{_escape(str(key))}", level + 1) for key, item in items)
        elif isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            bound = number_problem(value)
            if bound is not None:
                found.append(Diagnostic(Code.TRADE_NUMBER_RANGE, f"the number {str(value)[:40]} {bound}",
                                        Location(file, pointer=where_text)))
    return found


_SCALARS = (str, bool, type(None))


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


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
