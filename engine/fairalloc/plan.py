"""The compiled policy: an immutable plan that the allocation stage executes.

Everything a policy says is resolved here into plain, frozen records holding compiled
expressions, so that executing a trade does no parsing, no name lookups and no YAML. A
:class:`Policy` carries its identity — id, version and the ``sha256:`` digest of its canonical
form — so every result can name the exact policy version that produced it.
"""

from __future__ import annotations

import datetime as dt
import math
from functools import cached_property
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import msgspec

from fairalloc.arrayform import ArrayForm, Decline, array_form
from fairalloc.context import fairness_group, rotation_group
from fairalloc.expressions import CompiledExpression, Type
from fairalloc.options import (
    ACTIONS,
    MINIMUM_KINDS,
    CME_553,
    Action,
    CostBasis,
    Denied,
    Method,
    MinimumKind,
    OverTime,
    PriceAllocation,
    Remainder,
    Residual,
    RoundingMethod,
    Stage,
    TieBreak,
)
from fairalloc.structs import ComparedWithout

if TYPE_CHECKING:
    from fairalloc.trade import Trade


class Attribute(msgspec.Struct, frozen=True):
    """A declared account or security attribute: its type, allowed values and default."""

    name: str
    type: Type
    kind: str  # the policy's word for the type: string, number, boolean, date, list
    values: tuple[str, ...] | None = None
    default: Any = None
    has_default: bool = False


class Rotation(msgspec.Struct, frozen=True):
    """How a rotation is ordered, advanced and grouped."""

    sequence: tuple[str, ...] | None
    order_by: CompiledExpression | None
    advance: str  # per_order | per_day
    group: CompiledExpression | None


class Fairness(msgspec.Struct, frozen=True):
    """Rounding kept fair over the orders of a group (``fairness:``; ``docs/rounding.md``)."""

    over_time: OverTime
    group: CompiledExpression | None  # None: one group, the policy id


class Minimum(msgspec.Struct, frozen=True):
    """The minimum allocation an account must reach, or be denied."""

    kind: MinimumKind
    absolute: Decimal | None
    relative: Decimal | None
    expression: CompiledExpression | None
    denied: Denied
    value: Decimal | None = None  # ``minimum.value``: alone (kind VALUE) or beside a quantity kind

    def value_units(self, average_price: Fraction | None, scale: int) -> int:
        """``value`` as a quantity in units at the block's average price, rounded up (0: no value)."""
        if self.value is None or not average_price:
            return 0
        return math.ceil(Fraction(self.value) / average_price * scale)

    def describe(self) -> str:
        quantity = {MinimumKind.ABSOLUTE: self.absolute, MinimumKind.RELATIVE_TO_INTENDED: self.relative,
                    MinimumKind.EXPRESSION: self.expression.source if self.expression else None,
                    MinimumKind.VALUE: self.value}[self.kind]
        words = MINIMUM_KINDS[self.kind].describe.format(quantity)
        if self.value is not None and self.kind is not MinimumKind.VALUE:
            words += " and " + MINIMUM_KINDS[MinimumKind.VALUE].describe.format(self.value)
        return words


class OddLotRecipient(msgspec.Struct, frozen=True):
    """``odd_lots.recipient``: the account that takes the odd quantity, named or chosen per order."""

    account: str | None  # a fixed account id
    expression: CompiledExpression | None  # a string expression over the order naming one

    def describe(self) -> str:
        if self.account is not None:
            return self.account
        assert self.expression is not None
        return f"the account named by {self.expression.source}"


class Rule(msgspec.Struct, frozen=True):
    """An exception rule: when its condition holds for an account, its action applies."""

    id: str
    when: CompiledExpression
    action: Action
    quantity: CompiledExpression | Decimal | None  # the cap, for action 'cap'
    reason: str
    review: bool
    index: int


class Deadline(msgspec.Struct, frozen=True):
    """When an allocation must be recorded by: a wall-clock time some days after trade date."""

    days_after_trade_date: int
    time: dt.time
    timezone: str

    def for_trade_date(self, trade_date: dt.date) -> dt.datetime:
        from zoneinfo import ZoneInfo  # only the deadline's users pay for it: the ledger, not allocate

        day = trade_date + dt.timedelta(days=self.days_after_trade_date)
        return dt.datetime.combine(day, self.time, tzinfo=ZoneInfo(self.timezone))


class CostShare(msgspec.Struct, frozen=True):
    """How one commission or fee is shared: in proportion to the basis, times an account's
    schedule (a declared number attribute of the account) when the policy names one."""

    basis: CostBasis
    schedule: str | None


class Costs(msgspec.Struct, frozen=True):
    """The policy's ``costs`` section: shares of each named cost, cents and where residuals go."""

    default: CostShare
    by_cost: tuple[tuple[str, CostShare], ...]
    precision: int  # decimals of the currency: 2 for cents
    residual: Residual

    def share(self, name: str) -> CostShare:
        return dict(self.by_cost).get(name, self.default)


class Pricing(msgspec.Struct, frozen=True):
    """At which prices accounts receive their shares and what cash they owe (``price``, ``costs``)."""

    allocation: PriceAllocation = PriceAllocation.AVERAGE
    by_broker: bool = False
    costs: Costs | None = None

    def side_rounding(self, rounding: str, side: str) -> str:
        """The price rounding rule for an order's side: CME Rule 553 rounds a buy up, a sell down."""
        if rounding != CME_553:
            return rounding
        return "up" if side == "buy" else "down"


class Policy(ComparedWithout, frozen=True, dict=True, weakref=True):
    """A validated, compiled policy. Build it with :func:`fairalloc.load_policy`. Its source
    ``data`` is left out of equality, the hash and the repr."""

    left_out = "data"

    id: str
    version: int
    effective_date: dt.date
    owner: str
    description: str
    digest: str
    canonical: str
    source: str
    file: str
    applies_to: CompiledExpression | None
    account_attributes: tuple[Attribute, ...]
    security_attributes: tuple[Attribute, ...]
    method: Method
    weight: CompiledExpression | None  # None: the intended quantity (or 1 each, when equal_weights)
    rotation: Rotation | None
    unlimited_first: bool
    lot: Decimal
    rounding_method: RoundingMethod
    remainder: Remainder
    tie_break: TieBreak
    price_precision: int
    price_rounding: str
    allow_above_intended: bool
    minimum: Minimum | None
    rules: tuple[Rule, ...]
    reason_code_descriptions: tuple[tuple[str, str], ...]
    deadline: Deadline | None
    pricing: Pricing
    equal_weights: bool  # ``pro_rata.weight: equal``: every account weighs 1
    priority: CompiledExpression | None  # ``pro_rata.priority``: each account's tier (1 first)
    odd_lot_recipient: OddLotRecipient | None
    data: dict[str, Any]  # left out of repr, equality and the hash
    fairness: Fairness | None = None

    def __post_init__(self) -> None:
        self.__dict__["arrays"] = array_form(self)

    @property
    def arrays(self) -> ArrayForm | Decline:
        """The columnar form of every expression, built once with the plan: what large blocks run on."""
        arrays: ArrayForm | Decline = self.__dict__["arrays"]
        return arrays

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__struct_fields__ if name != self.left_out)
        return f"Policy({fields})"

    @cached_property
    def staged_rules(self) -> dict[tuple[Stage, Action | None], tuple[Rule, ...]]:
        """The rules each stage runs, in policy order, by (stage, ``None``) and by (stage,
        action): what executing every trade asks for, sorted out once per policy."""
        staged: dict[tuple[Stage, Action | None], tuple[Rule, ...]] = {}
        for stage in Stage:
            rules = staged[stage, None] = tuple(rule for rule in self.rules if ACTIONS[rule.action].stage is stage)
            for action in Action:
                staged[stage, action] = tuple(rule for rule in rules if rule.action is action)
        return staged

    @property
    def reason_codes(self) -> frozenset[str]:
        """Reason codes a manual override may cite."""
        return frozenset(code for code, _ in self.reason_code_descriptions)

    @property
    def ref(self) -> str:
        """``id@version``: how people and the ledger name a policy version."""
        return f"{self.id}@{self.version}"

    def allocation_deadline(self, trade_date: dt.date) -> dt.datetime | None:
        """The cut-off after which an allocation for ``trade_date`` is late, if the policy sets one."""
        return self.deadline.for_trade_date(trade_date) if self.deadline else None

    def rotation_group(self, trade: Trade) -> str | None:
        """The rotation group ``trade`` belongs to under this policy (None: the policy has no rotation)."""
        return rotation_group(self, trade)

    def fairness_group(self, trade: Trade) -> str | None:
        """The fairness group ``trade`` belongs to under this policy (None: no ``fairness`` section)."""
        return fairness_group(self, trade)
