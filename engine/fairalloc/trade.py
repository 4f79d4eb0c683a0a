"""The OMS-facing input: a block order, its pre-trade allocation statement and its fills.

A trade is read into the frozen types below (:class:`Trade`, :class:`Order`, :class:`Statement`,
:class:`StatementAccount`, :class:`Fill`), which hold exactly what the contract's
``trade.schema.json`` allows. Quantities and prices become ``int`` or :class:`~decimal.Decimal`,
never binary floats: JSON numbers are read as decimals, and a quantity written ``18000.0`` is the
whole number 18000, as the contract's ``"type": "integer"`` says (``18000.5`` is refused: write
fractions as decimal strings).

Reading is done twice over only when it must be. A document in the contract's plain form — whole
quantities, prices and timestamps as strings, no duplicate key — is decoded and checked in C by
:mod:`msgspec` into these types directly (:func:`_plain_trade`); a block of 100,000 accounts costs
no Python call per account. Any document it cannot clear that way, for whatever reason, is read
again by the reference validator (:mod:`fairalloc.contract`, pydantic), which reports every
violation with its JSON pointer (``/statement/accounts/3/intended``) and whose values are the
ones accepted: both ways give equal trades, and every error comes from the reference.

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
import operator
import re
from array import array
from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import chain, islice, repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from fairalloc.errors import Code, Diagnostic, InputError, Location, pointer
from fairalloc.load import MAX_FILE_CHARS, read_text
from fairalloc.names import NameProblem, normalise
from fairalloc.numbers import MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS, MAX_NUMBER_TEXT, exact_sum, number_problem
from fairalloc.schema import RFC3339

if TYPE_CHECKING:
    from pathlib import Path

MAX_CHARS = MAX_FILE_CHARS
"""Characters a JSON input document (a trade, a rotation state) may have: 64 MiB of ASCII text,
room for a statement of several hundred thousand accounts."""

MAX_DEPTH = 32
"""Objects and arrays nested inside each other in a JSON input, the document itself counting as 1."""

_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class _Frozen(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """Immutable, and not tracked by the cycle collector: a trade holds JSON values only, which
    cannot form a reference cycle, so 100,000 accounts add nothing to a collection."""


class Order(_Frozen, frozen=True):
    id: str
    symbol: str
    side: Literal["buy", "sell", "sell_short"]
    quantity: int | Decimal
    trade_date: dt.date
    entered_at: dt.datetime
    limit_price: Decimal | None = None
    security: dict[str, Any] = {}
    costs: dict[str, Decimal] | None = None  # commissions and fees charged on the order as a whole, by name


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

Process = Literal["regular", "soft_dollar", "step_in", "step_out", "soft_dollar_step_in",
                  "soft_dollar_step_out", "plan_sponsor"]


class Clearing(_Frozen, frozen=True):
    """Where an account's shares clear when not with the executing broker: a step-out (or step-in,
    soft-dollar or plan-sponsor process) to the named broker, as FIX ProcessCode (81) says."""

    process: Process
    broker: _NonEmpty

    @property
    def process_code(self) -> str:
        return PROCESS_CODES[self.process]


class StatementAccount(_Frozen, frozen=True):
    """One account of the statement: the only type decoded straight from the text (:func:`_plain_trade`)."""

    account: _NonEmpty
    intended: int | Decimal
    limit_price: Decimal | None = None
    received_at: dt.datetime | None = None
    attributes: dict[str, Any] = {}
    clearing: Clearing | None = None  # read by the reference validator only (see _keys_read)


class Statement(_Frozen, frozen=True, dict=True, gc=True):  # one per trade; its cached columns need a __dict__
    recorded_at: dt.datetime
    recorded_by: str
    accounts: list[StatementAccount]

    # The controls, the context and both account books read these columns of a statement; the
    # statement is immutable, so they are taken from the accounts once (by load_trade, for a
    # large statement).
    @property
    def columns(self) -> StatementColumns:
        """The accounts' fields as columns, in statement order (taken once: a cached_property
        would take a lock at its first use, in every trade)."""
        cache = self.__dict__
        columns: StatementColumns | None = cache.get("columns")
        if columns is None:
            columns = cache["columns"] = StatementColumns(self.accounts)
        return columns

    @property
    def account_ids(self) -> list[str]:
        """Every account id, in statement order."""
        return self.columns.ids

    @property
    def intended(self) -> list[int | Decimal]:
        """Every intended quantity, in statement order."""
        return self.columns.intended


_ACCOUNT = attrgetter("account")
_INTENDED = attrgetter("intended")
_ATTRIBUTES = attrgetter("attributes")
_INT64 = 2**63

COLUMNS_FROM = 64
"""Statements of this many accounts have every attribute's column taken when they are loaded, so
that allocating them makes no pass over the accounts: the size from which the array book runs
(``fairalloc.arrayform.ARRAYS_FROM``)."""


class AttributeColumn:
    """One attribute of every account, in statement order, and what the array book asks of it.

    ``values``: the attribute's value per account (``None`` where it is absent or null);
    ``kinds``: the types among them; ``strings``: the sorted distinct values when every value is a
    ``str``, with ``codes`` (int32) their places in ``strings`` account by account; ``flags``:
    the values as int8 0/1 when every value is a ``bool``. The arrays are the standard library's
    (numpy reads them without a copy), so reading a trade does not import numpy."""

    __slots__ = ("values", "kinds", "strings", "_codes", "_flags")

    def __init__(self, values: list[Any]) -> None:
        self.values = values
        self.kinds = frozenset(map(type, values))
        self.strings: tuple[str, ...] | None = tuple(sorted(set(values))) if self.kinds == {str} else None
        self._codes: array[int] | None = None
        self._flags: array[int] | None = None

    @property
    def codes(self) -> array[int] | None:
        if self._codes is None and self.strings is not None:
            code = {value: index for index, value in enumerate(self.strings)}
            self._codes = array("i", map(code.__getitem__, self.values))
        return self._codes

    @property
    def flags(self) -> array[int] | None:
        if self._flags is None and self.kinds == {bool}:
            self._flags = array("b", self.values)
        return self._flags

    def prepare(self) -> None:
        """Take the codes or the flags now."""
        self._codes, self._flags = self.codes, self.flags


class StatementColumns:
    """A statement's accounts as columns (statement order) and the facts the controls and the
    account books check over all of them, each found once: ``ids``, ``intended``; ``whole`` (every
    intended quantity an ``int``), ``total`` (their exact sum), ``least`` and ``most``;
    ``in_id_order`` (ids strictly increasing), ``distinct`` (no id twice), ``id_order`` (the
    statement's positions in account-id order); ``units``: the intended quantities as int64 (the
    standard library's array) when whole and within int64's range, else ``None``;
    ``clearing``: whether any account has a clearing instruction."""

    __slots__ = ("accounts", "ids", "intended", "whole", "_extent", "in_id_order", "distinct",
                 "id_order", "_units", "clearing", "_attributes", "_given")

    def __init__(self, accounts: list[StatementAccount]) -> None:
        self.accounts = accounts
        self.ids = ids = list(map(_ACCOUNT, accounts))
        self.intended = intended = list(map(_INTENDED, accounts))
        self.whole = set(map(type, intended)) <= {int}
        self._extent: tuple[int | Decimal, int | Decimal, int | Decimal] | None = (
            (sum(intended), min(intended, default=0), max(intended, default=0)) if self.whole else None)
        self.in_id_order = all(map(operator.lt, ids, islice(ids, 1, None)))  # at C speed
        self.distinct = self.in_id_order or len(set(ids)) == len(ids)
        self.id_order: Sequence[int] = (range(len(ids)) if self.in_id_order
                                        else sorted(range(len(ids)), key=ids.__getitem__))
        self._units: array[int] | None = None
        self.clearing = any(map(_CLEARING, accounts))
        self._attributes: dict[str, AttributeColumn] = {}
        self._given: list[dict[str, Any]] | None = None

    def _extents(self) -> tuple[int | Decimal, int | Decimal, int | Decimal]:
        """(total, least, most) of the intended quantities. Of decimals, taken when first asked
        for: the plain-form reading looks at a statement before its values are known to be
        numbers in bounds (a ``NaN`` does not compare, a sum beyond the bounds is not exact at
        :data:`fairalloc.numbers.EXACT`'s precision), and refuses any decimal first."""
        if self._extent is None:
            intended = self.intended
            self._extent = (exact_sum(intended), min(intended, default=0), max(intended, default=0))
        return self._extent

    @property
    def total(self) -> int | Decimal:
        """The exact sum of the intended quantities."""
        return self._extents()[0]

    @property
    def least(self) -> int | Decimal:
        return self._extents()[1]

    @property
    def most(self) -> int | Decimal:
        return self._extents()[2]

    @property
    def units(self) -> array[int] | None:
        """The intended quantities as int64 when whole and within its range, else ``None``."""
        if self._units is None:
            self._units = self._int64()
        return self._units

    def _int64(self) -> array[int] | None:
        if self.whole and -_INT64 <= self.least and self.most < _INT64:
            return array("q", self.intended)
        return None

    @property
    def given(self) -> list[dict[str, Any]]:
        """Every account's ``attributes`` object, in statement order."""
        if self._given is None:
            self._given = list(map(_ATTRIBUTES, self.accounts))
        return self._given

    def attribute(self, name: str) -> AttributeColumn:
        """``name``'s column (every value ``None`` if no account has it)."""
        column = self._attributes.get(name)
        if column is None:
            column = self._attributes[name] = AttributeColumn(list(map(dict.get, self.given, repeat(name))))
        return column

    def prepare(self) -> None:
        """Take the int64 quantities and the column of every attribute some account has."""
        self._units = self._int64()
        for name in sorted(set(chain.from_iterable(self.given))):
            self.attribute(name).prepare()


class Fill(_Frozen, frozen=True):
    id: str
    quantity: int | Decimal
    price: Decimal
    executed_at: dt.datetime
    venue: str | None = None
    trade_date: dt.date | None = None  # a GTC order's later day; else the order's
    broker: str | None = None  # the executing broker
    costs: dict[str, Decimal] | None = None  # commissions and fees charged on this fill, by name


class Trade(_Frozen, frozen=True):
    """One block order with its statement and fills, valid under the contract."""

    order: Order
    statement: Statement
    fills: list[Fill]

    def to_json(self) -> dict[str, Any]:
        """The trade as a contract document (quantities as integers or decimal strings)."""
        document: dict[str, Any] = _jsonable(self)
        return document


def _jsonable(value: Any) -> Any:
    """JSON values of a trade; fields left at ``None`` are left out, as the contract has them."""
    if isinstance(value, msgspec.Struct):
        fields = ((name, getattr(value, name)) for name in value.__struct_fields__)
        return {name: _jsonable(item) for name, item in fields if item is not None}
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


class _NotJson(Exception):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _not_json(token: str) -> Any:
    raise _NotJson(token)


def parse_json(text: str, file: str) -> Any:
    """Parse JSON exactly and within bounds: decimals as :class:`Decimal`, every number within
    :func:`fairalloc.numbers.number_problem`'s bounds, duplicate keys refused, errors located."""
    if len(text) > MAX_CHARS:
        raise InputError(Diagnostic(Code.JSON_TOO_LARGE, f"the document is longer than {MAX_CHARS:,} characters",
                                    Location(file, 1, 1), "split the block into several trades"))
    try:
        return json.loads(text, parse_float=_json_decimal, parse_int=_json_int, parse_constant=_not_json,
                          object_pairs_hook=_no_duplicate_keys)
    except _NotJson as error:  # Python's reader accepts NaN and Infinity; JSON does not
        found = re.search(r"(?<![\w\"-])-?" + re.escape(error.token.lstrip("-")) + r"(?![\w\"])", text)
        where = _location_of(text, found.start(), file) if found else Location(file)
        raise InputError(Diagnostic(Code.JSON_SYNTAX, f"malformed JSON: {error.token} is not a JSON value", where,
                                    "JSON has no NaN or Infinity: write quantities and prices as the contract says")
                         ) from None
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
        text = None
        if isinstance(source, dict):
            name = file or "<trade>"
            trade = _plain_trade(source)
            if trade is not None and _name_and_value_problems(trade, name):
                trade = None
        else:
            name = file or str(source)
            text = read_text(str(source), limit=MAX_CHARS)
            trade = _plain_text(text, name)
        if trade is None:
            trade = _checked_trade(source if text is None else parse_json(text, name), name)
        if len(trade.statement.accounts) >= COLUMNS_FROM:
            trade.statement.columns.prepare()
        return trade


def plain_trade_text(text: str, name: str) -> Trade | None:
    """The trade of JSON ``text`` if it is in the plain form and every name and value in it is
    clean, else ``None``: then only :func:`load_trade`'s general reading (the reference
    validator) may decide, and it reports every problem with its pointer. For callers that hold
    a trade's text inside a larger document (the HTTP service's request body); what this
    accepts, :func:`load_trade` accepts with equal values. A large statement gets its columns
    here, as :func:`load_trade` gives them."""
    with _collector_paused():
        trade = _plain_text(text, name)
        if trade is not None and len(trade.statement.accounts) >= COLUMNS_FROM:
            trade.statement.columns.prepare()
        return trade


def _plain_text(text: str, name: str) -> Trade | None:
    trade = _plain_trade(text) if len(text) <= MAX_CHARS else None
    return None if trade is None or _name_and_value_problems(trade, name) else trade


def _checked_trade(data: Any, name: str) -> Trade:
    """``data`` validated by the reference validator, every violation reported with its pointer."""
    from pydantic import ValidationError

    from fairalloc import contract

    if not isinstance(data, dict):
        raise InputError(Diagnostic(Code.TRADE_TYPE, "a trade document must be a JSON object",
                                    Location(name, pointer="")))
    try:
        model = contract.Trade.model_validate(data)
    except ValidationError as error:
        raise InputError([_diagnostic(item, name) for item in error.errors()]) from None
    trade = _from_model(model)
    problems = _name_and_value_problems(trade, name)
    if problems:
        raise InputError(problems)
    return trade


def _from_model(model: Any) -> Trade:
    """The trade the reference validator accepted, as this module's types (field by field)."""
    def copy(kind: type[msgspec.Struct], value: Any) -> Any:
        return kind(**{name: getattr(value, name) for name in kind.__struct_fields__})

    def account(value: Any) -> StatementAccount:
        clearing = value.clearing
        return StatementAccount(account=value.account, intended=value.intended, limit_price=value.limit_price,
                                received_at=value.received_at, attributes=value.attributes,
                                clearing=None if clearing is None else copy(Clearing, clearing))

    statement = model.statement
    return Trade(
        order=copy(Order, model.order),
        statement=Statement(recorded_at=statement.recorded_at, recorded_by=statement.recorded_by,
                            accounts=[account(given) for given in statement.accounts]),
        fills=[copy(Fill, fill) for fill in model.fills],
    )


# -- the plain form, read without the reference validator ---------------------------------------

class _PlainStatement(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    recorded_at: str
    recorded_by: str
    accounts: list[StatementAccount]


class _PlainDocument(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    order: dict[str, Any]
    statement: _PlainStatement
    fills: list[dict[str, Any]]


class _NotPlain(Exception):
    """The document is not in the plain form: the reference validator reads it."""


_DECIMAL = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ORDER_KEYS = frozenset(Order.__struct_fields__)
_FILL_KEYS = frozenset(Fill.__struct_fields__)
_PLAIN_ACCOUNT_KEYS = frozenset({"account", "intended", "attributes", "limit_price"})
_SIDES = frozenset(("buy", "sell", "sell_short"))
_SPACED_KEY = re.compile(r'"[ \t\n\r]+:')
_NOT_PLAIN = (_NotPlain, msgspec.MsgspecError, ValueError, TypeError, KeyError, RecursionError)


def _plain_trade(source: str | dict[str, Any]) -> Trade | None:
    """``source`` (JSON text, or a parsed document) as a :class:`Trade` if it is in the plain form,
    else ``None``. The plain form is a subset of the contract: whole quantities as JSON integers,
    prices, dates and timestamps as the contract's strings, no ``received_at``, account limit or
    clearing instruction, and — in text — no key twice in one object. Anything else, valid or not, is left to the
    reference validator, so this never refuses a trade and never accepts one it would refuse."""
    try:
        if isinstance(source, str):
            document = _DECODER.decode(source)
            if '"received_at"' in source:
                return None
            order, statement, fills = document.order, document.statement, document.fills
            accounts = statement.accounts
        else:
            if source.keys() != {"order", "statement", "fills"}:
                return None
            order, raw, fills = source["order"], source["statement"], source["fills"]
            if type(raw) is not dict or raw.keys() != {"recorded_at", "recorded_by", "accounts"}:
                return None
            given = raw["accounts"]
            if type(given) is not list or not set(map(type, given)) <= {dict}:
                return None
            if not set(chain.from_iterable(given)) <= _PLAIN_ACCOUNT_KEYS:
                return None
            # A lone surrogate is no text UTF-8 can carry: not plain. The accounts' ids and
            # attributes are held to it by the name and value checks after this reading.
            _ENCODE((order, raw["recorded_by"], fills))
            accounts = msgspec.convert(given, list[StatementAccount])
            statement = _PlainStatement(raw["recorded_at"], raw["recorded_by"], accounts)
        trade = Trade(order=_plain_order(order),
                      statement=_plain_statement(statement),
                      fills=[_plain_fill(fill) for fill in _list_of_objects(fills)])
        if isinstance(source, str) and keys_written(source) != _keys_read(trade, order, fills):
            return None  # a key written twice (or a spelling the count does not follow)
        return trade
    except _NOT_PLAIN:
        return None


_DECODER = msgspec.json.Decoder(_PlainDocument, float_hook=_json_decimal)
_ENCODE = msgspec.json.Encoder().encode


def _plain_statement(statement: _PlainStatement) -> Statement:
    accounts = statement.accounts
    if not accounts:
        raise _NotPlain
    plain = Statement(recorded_at=_instant(statement.recorded_at), recorded_by=_nonempty(statement.recorded_by),
                      accounts=accounts)
    columns = plain.columns
    if not columns.whole or columns.least < 0 or columns.most >= _INT_BOUND:
        raise _NotPlain  # decimal strings, JSON numbers with a point, quantities out of bounds
    if any(map(_LIMIT, accounts)):
        raise _NotPlain  # a price limit per account: its text is checked by the reference
    if columns.clearing:
        raise _NotPlain  # a clearing instruction (a null one is caught by the key count, _keys_read)
    return plain


_LIMIT = attrgetter("limit_price")
_CLEARING = attrgetter("clearing")


def _plain_order(raw: Any) -> Order:
    if type(raw) is not dict or not raw.keys() <= _ORDER_KEYS:
        raise _NotPlain
    limit = raw.get("limit_price")
    side = raw["side"]
    if type(side) is not str or side not in _SIDES:
        raise _NotPlain
    security = raw.get("security", {})
    if type(security) is not dict:
        raise _NotPlain
    return Order(id=_nonempty(raw["id"]), symbol=_nonempty(raw["symbol"]), side=side,  # type: ignore[arg-type]
                 quantity=_whole(raw["quantity"]), trade_date=_day(raw["trade_date"]),
                 entered_at=_instant(raw["entered_at"]), limit_price=None if limit is None else _price(limit),
                 security=dict(security), costs=_costs(raw, "costs"))


def _plain_fill(raw: dict[str, Any]) -> Fill:
    if not raw.keys() <= _FILL_KEYS:
        raise _NotPlain
    venue = raw.get("venue", "")
    if type(venue) is not str:
        raise _NotPlain
    day = raw.get("trade_date")
    broker = raw.get("broker")
    return Fill(id=_nonempty(raw["id"]), quantity=_whole(raw["quantity"]), price=_price(raw["price"]),
                executed_at=_instant(raw["executed_at"]), venue=raw.get("venue"),
                trade_date=None if "trade_date" not in raw else _day(day),
                broker=None if "broker" not in raw else _nonempty(broker), costs=_costs(raw, "costs"))


def _costs(raw: dict[str, Any], key: str) -> dict[str, Decimal] | None:
    """Commissions and fees by name, each a decimal string read as a price is (:func:`_price`);
    ``None`` when left out (written ``null`` is not plain: the reference refuses it)."""
    if key not in raw:
        return None
    given = raw[key]
    if type(given) is not dict:
        raise _NotPlain
    return {_nonempty(name): _price(amount) for name, amount in given.items()}


def _list_of_objects(value: Any) -> list[dict[str, Any]]:
    if type(value) is not list or not set(map(type, value)) <= {dict}:
        raise _NotPlain
    return value


def _nonempty(value: Any) -> str:
    if type(value) is not str or not value:
        raise _NotPlain
    return value


def _whole(value: Any) -> int:
    if type(value) is not int or value < 0 or value >= _INT_BOUND:
        raise _NotPlain
    return value


def _price(value: Any) -> Decimal:
    match = _DECIMAL.fullmatch(value) if type(value) is str and len(value) <= MAX_NUMBER_TEXT else None
    if match is None:
        raise _NotPlain
    # number_problem's bounds, read off the text: no leading zero, so the digits before the point
    # are the integer part's; those after it, the fraction's
    whole, fraction = match.group(1, 2)
    if len(whole) > MAX_INTEGER_DIGITS or (fraction is not None and len(fraction) - 1 > MAX_FRACTION_DIGITS):
        raise _NotPlain
    return Decimal(value)


def _day(value: Any) -> dt.date:
    if type(value) is not str or not _DATE.fullmatch(value):
        raise _NotPlain
    return dt.date.fromisoformat(value)


def _instant(value: Any) -> dt.datetime:
    """An RFC 3339 timestamp, read as the reference validator reads it (``fairalloc.schema.RFC3339``)."""
    if type(value) is not str or not RFC3339.fullmatch(value):
        raise _NotPlain
    return dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))


def keys_written(text: str) -> int:
    """An upper bound of the keys written in JSON ``text``: every quote followed by a colon (a
    key's closing quote is; inside a string a quote is escaped, which can only add to the count)."""
    return text.count('":') + len(_SPACED_KEY.findall(text))  # one scan: quicker than looking for '" ' first


def _keys_read(trade: Trade, order: dict[str, Any], fills: list[dict[str, Any]]) -> int:
    """A lower bound of the distinct keys read: equal to :func:`keys_written` only if no key was
    written twice (an ``"attributes": {}``, a ``null`` limit or any ``clearing`` is not counted,
    which only sends such a document to the reference validator)."""
    attributes = trade.statement.columns.given
    security = order.get("security", {})
    count = 3 + len(order) + len(security) + _nested_keys(security) + 3 + sum(map(len, fills))
    count += len(trade.order.costs or ()) + sum(len(fill.costs or ()) for fill in trade.fills)
    count += 2 * len(attributes) + sum(map(len, attributes)) + sum(map(bool, attributes))
    kinds = set(map(type, chain.from_iterable(map(dict.values, attributes))))
    if dict in kinds or list in kinds:
        count += sum(_nested_keys(values) for values in attributes)
    return count


def _nested_keys(value: Any) -> int:
    """Keys of the objects inside ``value`` (a JSON value), ``value`` itself not counted if an object."""
    count = 0
    stack = list(value.values()) if isinstance(value, dict) else [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def _plain_name(text: str) -> bool:
    """ASCII letters, digits and punctuation: already the canonical form of a name, one script."""
    return text.isascii() and text.isprintable() and text == text.strip()


def _plain_names(texts: Iterable[str]) -> bool:
    """Whether every one of ``texts`` is :func:`_plain_name`, checked on their join at C speed: ASCII
    and printable throughout, and a space (the one printable ASCII blank) only inside a name."""
    texts = list(texts)
    joined = "".join(texts)
    if not (joined.isascii() and joined.isprintable()):
        return False
    return " " not in joined or all(map(_plain_name, texts))


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
    if not _plain_names(trade.statement.account_ids):
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
    for index in _attributes_to_check(accounts, trade.statement.columns.given):
        found.extend(_free_form_problems(accounts[index].attributes, f"/statement/accounts/{index}/attributes", file))
    return found


_INT_BOUND = 10**MAX_INTEGER_DIGITS


def _attributes_to_check(accounts: list[StatementAccount], given: list[dict[str, Any]]) -> list[int]:
    """The accounts whose attributes need :func:`_free_form_problems`: those holding a key that is
    not plain ASCII, a nested value, or a number that is not a small integer. A statement of
    100,000 accounts with text and boolean attributes is cleared at C speed."""
    values = list(chain.from_iterable(map(dict.values, given)))
    kinds = set(map(type, values))
    if kinds <= _PLAIN_VALUES:
        if int in kinds:
            whole = [value for value in values if type(value) is int]
            if not -_INT_BOUND < min(whole) <= max(whole) < _INT_BOUND:
                return _attributes_to_check_one_by_one(accounts)
        if str in kinds and not _encodes(values):
            return _attributes_to_check_one_by_one(accounts)
        if _plain_names(set(chain.from_iterable(given))):
            return []
    return _attributes_to_check_one_by_one(accounts)


def _encodes(value: Any) -> bool:
    """Whether every text in the plain ``value`` (a string, or a list of plain values) is
    characters UTF-8 can carry: not when one holds a lone surrogate. Checked in C."""
    try:
        _ENCODE(value)
    except UnicodeEncodeError:
        return False
    return True


_LONE_SURROGATE = "the text has a lone UTF-16 surrogate (\\uD800-\\uDFFF), not a character"


_PLAIN_VALUES = frozenset({str, bool, int, type(None)})


def _attributes_to_check_one_by_one(accounts: list[StatementAccount]) -> list[int]:
    """:func:`_attributes_to_check`, account by account: for statements that have such accounts."""
    keys: set[str] = set()
    flagged: list[int] = []
    for index, account in enumerate(accounts):
        attributes = account.attributes
        keys.update(attributes)
        for value in attributes.values():
            kind = type(value)
            if (kind is str and _encodes(value)) or kind is bool or value is None or (
                    kind is int and -_INT_BOUND < value < _INT_BOUND):
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
                                         for key, value in data.items() if type(value) not in _SCALARS
                                         or (type(value) is str and not _encodes(value))]
    while stack:
        value, where_text, level = stack.pop()
        if isinstance(value, str):
            if not _encodes(value):
                found.append(Diagnostic(Code.TRADE_STRING_UNICODE, _LONE_SURROGATE, Location(file, pointer=where_text)))
        elif isinstance(value, (dict, list)):
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


class _collector_paused:
    """Pause Python's cycle collector while a trade is parsed and validated, then restore it.

    A statement of 100,000 accounts becomes some 400,000 dictionaries, lists and models, none of
    them in a reference cycle; as they pile up, the collector would scan the growing heap again
    and again, which made parsing and validating such a trade three times slower. Reference
    counting still frees everything as usual; the collector is re-enabled afterwards only if it
    was enabled before. (A class, not a generator: a small trade's reading pays for no frame.)
    """

    __slots__ = ("enabled",)

    def __enter__(self) -> None:
        self.enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *_: object) -> None:
        if self.enabled:
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
    elif kind == "string_unicode":
        message, code = _LONE_SURROGATE, Code.TRADE_STRING_UNICODE
    elif kind.startswith("timezone_aware") or kind.startswith("datetime"):
        code = "trade-timestamp"
        hint = "write ISO 8601 timestamps with an offset, e.g. 2026-03-02T14:30:00Z"
    return Diagnostic(code, message, Location(file, pointer=pointer(loc)), hint)
