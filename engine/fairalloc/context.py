"""The data that policy expressions read, built once per trade from the validated trade.

Expressions see plain dictionaries (``docs/expressions.md``, "Context"): ``order``, ``security``,
``statement``, ``fill`` and one ``account`` dictionary per statement account, with the policy's
declared attributes merged in. Attribute values are converted to the declared type here, exactly
(numbers to int or Decimal, never float), and a missing or mistyped attribute is reported with the
JSON pointer of the place in the trade document where it belongs.

Three questions about a trade under a policy live here too, below execution, because the plan asks
them (:meth:`fairalloc.plan.Policy.rotation_group`) and execution asks them: which rotation group
and which fairness group the trade belongs to, and whether the policy governs the trade at all. This module reads the
plan's types only for annotations, so the plan can import it.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import msgspec

from fairalloc.errors import Diagnostic, InputError, Location, pointer
from fairalloc.numbers import decimal_from_text, divide, exact_sum

if TYPE_CHECKING:
    from fairalloc.expressions import CompiledExpression
    from fairalloc.plan import Attribute, Policy
    from fairalloc.trade import Trade


class TradeContext(msgspec.Struct, frozen=True):
    """Everything expressions may read about one trade (accounts in statement order)."""

    order: dict[str, Any]
    security: dict[str, Any]
    statement: dict[str, Any]
    fill: dict[str, Any]
    accounts: list[dict[str, Any]]  # empty from scalar_context: the array backend reads columns
    filled: int | Decimal
    average_price: Fraction | None  # the block's volume-weighted average price, exact

    def with_accounts(self, accounts: list[dict[str, Any]]) -> TradeContext:
        """The same context with these account records (``msgspec.structs.replace``, without
        its look-up of the fields)."""
        return TradeContext(self.order, self.security, self.statement, self.fill, accounts, self.filled,
                            self.average_price)


def _convert(attribute: Attribute, value: Any, where: str, file: str) -> Any:
    """Convert one attribute value to its declared kind or raise :class:`InputError`."""
    kind = attribute.kind
    problem: str | None = None
    if kind == "string":
        if not isinstance(value, str):
            problem = f"must be a string, not {value!r}"
        elif attribute.values is not None and value not in attribute.values:
            problem = f"'{value}' is not one of {', '.join(attribute.values)}"
    elif kind == "number":
        if isinstance(value, bool):
            problem = "must be a number, not a boolean"
        elif isinstance(value, int):
            return value
        elif isinstance(value, Decimal):
            return value
        elif isinstance(value, str):
            try:
                return decimal_from_text(value)
            except ValueError as error:
                problem = f"'{value[:40]}' {error}"
        else:
            problem = f"must be a number, not {value!r}"
    elif kind == "boolean":
        if not isinstance(value, bool):
            problem = f"must be true or false, not {value!r}"
    elif kind == "date":
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                problem = f"'{value}' is not a date (YYYY-MM-DD)"
        else:
            problem = f"must be a date string (YYYY-MM-DD), not {value!r}"
    elif kind == "list":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            problem = "must be a list of strings"
        else:
            return tuple(value)
    if problem is not None:
        raise InputError(
            Diagnostic(
                "trade-attribute",
                f"attribute '{attribute.name}' {problem}",
                Location(file, pointer=where),
                "the policy declares this attribute's type in its 'attributes' section",
            )
        )
    return value


def _attributes(
    declared: tuple[Attribute, ...], given: dict[str, Any], base: tuple[int | str, ...], file: str
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    missing: list[Diagnostic] = []
    for attribute in declared:
        value = given.get(attribute.name)
        if value is not None:
            kind = type(value)
            # fast paths for values already of the declared type; _convert explains the rest
            if kind is str and attribute.kind == "string" and (attribute.values is None or value in attribute.values):
                values[attribute.name] = value
            elif kind is bool and attribute.kind == "boolean":
                values[attribute.name] = value
            elif kind is int and attribute.kind == "number":
                values[attribute.name] = value
            else:
                where = pointer(base + (attribute.name,))
                values[attribute.name] = _convert(attribute, value, where, file)
        elif attribute.has_default:
            values[attribute.name] = attribute.default
        else:
            missing.append(
                Diagnostic(
                    "trade-attribute-missing",
                    f"attribute '{attribute.name}' is required by the policy and has no default",
                    Location(file, pointer=pointer(base)),
                    f"add \"{attribute.name}\" here, or give it a default in the policy",
                )
            )
    if missing:
        raise InputError(missing)
    return values


def build_context(policy: Policy, trade: Trade, file: str = "<trade>", shared: TradeContext | None = None) -> TradeContext:
    """Build the expression context of ``trade`` under ``policy``'s declared attributes.

    ``shared``: the :func:`scalar_context` of the same trade and policy, if already built.
    """
    ctx = shared if shared is not None else scalar_context(policy, trade, file)
    records = _records(policy.account_attributes, trade)
    if records is not None:
        return ctx.with_accounts(records)
    accounts = []
    for index, entry in enumerate(trade.statement.accounts):
        account = {
            "id": entry.account,
            "intended": _number(entry.intended),
            "limit_price": entry.limit_price,
            "received_at": entry.received_at,
        }
        base = ("statement", "accounts", index, "attributes")
        account.update(_attributes(policy.account_attributes, entry.attributes, base, file))
        accounts.append(account)
    return ctx.with_accounts(accounts)


def _records(declared: tuple[Attribute, ...], trade: Trade) -> list[dict[str, Any]] | None:
    """The account records of :func:`build_context`, made attribute by attribute: each declared
    attribute's values checked over the whole column, each record made in one call. ``None`` when
    some value is not already of its declared kind (or is missing without a default): then the
    accounts are read one by one, which converts such values and reports each problem."""
    statement = trade.statement
    columns = statement.columns
    accounts = statement.accounts
    intended = columns.intended if columns.whole else list(map(_number, columns.intended))
    fields: list[list[Any]] = [columns.ids, intended, list(map(_LIMIT, accounts)), list(map(_RECEIVED, accounts))]
    names = ["id", "intended", "limit_price", "received_at"]
    given = columns.given if declared else []
    for attribute in declared:
        values = list(map(dict.get, given, repeat(attribute.name)))
        kinds = set(map(type, values))
        missing = _NONE in kinds
        kinds.discard(_NONE)
        if not kinds <= _KINDS.get(attribute.kind, frozenset()):
            return None
        if attribute.kind == "string" and attribute.values is not None and not (
                set(values).difference((None,)).issubset(attribute.values)):
            return None
        if missing:
            if not attribute.has_default:
                return None
            default = attribute.default
            values = [default if value is None else value for value in values]
        names.append(attribute.name)
        fields.append(values)
    return _record_maker(tuple(names))(*fields)


@functools.lru_cache(maxsize=64)
def _record_maker(names: tuple[str, ...]) -> Callable[..., list[dict[str, Any]]]:
    """A function of one column per name giving one record per row, ``{name: value, ...}`` (a
    dict display: twice as quick as ``dict(zip(names, row))``). Its source holds only names made
    here; the field names are bound as arguments, so no text of a policy becomes code."""
    keys = [f"_k{i}" for i in range(len(names))]
    values = [f"_v{i}" for i in range(len(names))]
    columns = [f"_c{i}" for i in range(len(names))]
    display = ", ".join(f"{key}: {value}" for key, value in zip(keys, values))
    source = (f"def _make(_zip, {', '.join(keys)}):\n"
              f"    def _records({', '.join(columns)}):\n"
              f"        return [{{{display}}} for {', '.join(values)} in _zip({', '.join(columns)})]\n"
              f"    return _records\n")
    namespace: dict[str, Any] = {"__builtins__": {}}
    exec(compile(source, "<fairalloc records>", "exec"), namespace)  # noqa: S102 - generated names only
    maker: Callable[..., list[dict[str, Any]]] = namespace["_make"](zip, *names)
    return maker


_NONE = type(None)
_KINDS = {"string": frozenset({str}), "boolean": frozenset({bool}), "number": frozenset({int})}
"""The types an attribute's given values may have to be taken as they are, by declared kind."""
_QUANTITY = attrgetter("quantity")
_EXECUTED_AT = attrgetter("executed_at")
_LIMIT = attrgetter("limit_price")
_RECEIVED = attrgetter("received_at")


def scalar_context(policy: Policy, trade: Trade, file: str = "<trade>") -> TradeContext:
    """The context without its per-account records: what every account shares.

    The array backend (``fairalloc.arrays``) reads account fields as columns instead of building
    one record per account.
    """
    order, fills = trade.order, trade.fills
    filled = exact_sum(list(map(_QUANTITY, fills)))
    average = _average_price(trade, filled) if filled else None
    times = list(map(_EXECUTED_AT, fills))
    security = {"symbol": order.symbol}
    if policy.security_attributes:
        security.update(_attributes(policy.security_attributes, order.security, ("order", "security"), file))
    order_ctx = {
        "id": order.id,
        "symbol": order.symbol,
        "side": order.side,
        "quantity": _number(order.quantity),
        "trade_date": order.trade_date,
        "entered_at": order.entered_at,
        "limit_price": order.limit_price,
    }
    statement = trade.statement
    total = statement.columns.total
    statement_ctx = {
        "recorded_at": statement.recorded_at,
        "recorded_by": statement.recorded_by,
        "total": _number(total),
        "accounts": len(statement.accounts),
    }
    fill_ctx = {
        "quantity": _number(filled),
        "ratio": divide(filled, order.quantity) if order.quantity else Decimal(0),
        "average_price": divide(average.numerator, average.denominator) if average is not None else None,
        "count": len(trade.fills),
        "first_at": min(times) if times else None,
        "last_at": max(times) if times else None,
    }
    return TradeContext(order_ctx, security, statement_ctx, fill_ctx, [], filled, average)


def _average_price(trade: Trade, filled: int | Decimal) -> Fraction:
    """The fills' volume-weighted average price, exact: for whole quantities, the sum of quantity
    x price over one common denominator of the prices, reduced once."""
    fills = trade.fills
    if not isinstance(filled, int):  # a decimal quantity among the fills
        return sum((Fraction(fill.quantity) * Fraction(fill.price) for fill in fills), Fraction(0)) / Fraction(filled)
    ratios = [fill.price.as_integer_ratio() for fill in fills]
    common = math.lcm(*(denominator for _, denominator in ratios))
    value = sum(int(fill.quantity) * numerator * (common // denominator)  # every quantity an int
                for fill, (numerator, denominator) in zip(fills, ratios))
    return Fraction(value, common * filled)


def applies(policy: Policy, ctx: TradeContext) -> bool:
    """Whether ``policy``'s ``applies_to`` holds for the trade of ``ctx`` (no condition: it does).

    Only ``true`` counts; the condition reads the shared records, never an account.
    """
    condition = policy.applies_to
    return condition is None or condition.fn(ctx.order, ctx.security, ctx.statement, ctx.fill, None, None) is True


def check_policy_governs(policy: Policy, trade: Trade, ctx: TradeContext, file: str = "<trade>") -> list[Diagnostic]:
    """Refusals because ``policy`` does not govern ``trade`` (effective date, ``applies_to``)."""
    problems: list[Diagnostic] = []
    order = trade.order
    if order.trade_date < policy.effective_date:
        problems.append(Diagnostic(
            "policy-not-effective",
            f"policy {policy.ref} takes effect on {policy.effective_date.isoformat()}, "
            f"after this order's trade date {order.trade_date.isoformat()}",
            Location(file, pointer="/order/trade_date"),
            "allocate under the version that was in effect on the trade date",
        ))
    if not applies(policy, ctx):
        source = policy.applies_to.source if policy.applies_to else ""
        problems.append(Diagnostic(
            "policy-not-applicable",
            f"policy {policy.ref} does not govern this order: applies_to is false ({source})",
            Location(file, pointer="/order"),
            "choose the policy that governs this kind of order",
        ))
    return problems


def rotation_group(policy: Policy, trade: Trade, ctx: TradeContext | None = None) -> str | None:
    """The rotation group of ``trade``: the policy id, or ``id/<group expression>`` when it sets one
    (``None``: the policy has no rotation). The group expression reads the order and security only."""
    rotation = policy.rotation
    return None if rotation is None else _group(policy, trade, ctx, rotation.group)


def fairness_group(policy: Policy, trade: Trade, ctx: TradeContext | None = None) -> str | None:
    """The fairness group of ``trade``, named as :func:`rotation_group` names rotation groups: the
    policy id, or ``id/<group expression>`` (``None``: the policy has no ``fairness`` section)."""
    fairness = policy.fairness
    return None if fairness is None else _group(policy, trade, ctx, fairness.group)


def _group(policy: Policy, trade: Trade, ctx: TradeContext | None, expression: CompiledExpression | None) -> str:
    """The policy id, or ``id/<value of the group expression>`` over the order and security."""
    if expression is None:
        return policy.id
    ctx = ctx or scalar_context(policy, trade)
    return f"{policy.id}/{expression.fn(ctx.order, ctx.security, None, None, None, None)}"


def _number(value: int | Decimal) -> int | Decimal:
    """Whole quantities are ints in expressions, so integer arithmetic stays integer."""
    if isinstance(value, int):
        return value
    return int(value) if value == value.to_integral_value() else value
