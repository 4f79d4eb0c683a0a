"""The policy language's closed sets of words, each declared once: an enum and one table.

A policy chooses a method, a rounding method, a remainder rule, a tie-break, rule actions and a
minimum kind from fixed lists. Each list is an enum here, and each enum has one table saying what
the rest of the engine needs to know about a choice — which stage runs it, what it needs, which
backends can run it, how it is described — so that adding a rounding method or an action is one
entry here plus its implementation and its documentation (``tests/test_options.py`` holds the
policy schema, the docs and these tables to the same words).
"""

from __future__ import annotations

import enum

import msgspec


class Method(enum.StrEnum):
    """How the filled quantity is split among the accounts (``method:``)."""

    PRO_RATA = "pro_rata"
    ROTATION = "rotation"
    PRICE_TIME = "price_time"


class MethodSpec(msgspec.Struct, frozen=True):
    """What a method needs and allows."""

    rounding: bool  # reads rounding.method / remainder (and the lot arithmetic of apportionment)
    minimum: bool  # minimum thresholds may be set
    arrays: bool  # the array backend runs it (large blocks)
    summary: str


METHODS: dict[Method, MethodSpec] = {
    Method.PRO_RATA: MethodSpec(True, True, True, "in proportion to a weight, in whole lots"),
    Method.ROTATION: MethodSpec(False, True, False, "accounts filled in full, one after another, in rotation order"),
    Method.PRICE_TIME: MethodSpec(False, False, False, "each fill to the best-ranked account whose limit it meets"),
}


class RoundingMethod(enum.StrEnum):
    """How exact pro-rata shares become whole lots (``rounding.method:``)."""

    LARGEST_REMAINDER = "largest_remainder"
    QUOTA = "quota"


class RoundingSpec(msgspec.Struct, frozen=True):
    remainder_rule: bool  # the policy's remainder rule chooses who takes the odd quantity
    fill_monotone: bool
    summary: str


ROUNDING_METHODS: dict[RoundingMethod, RoundingSpec] = {
    RoundingMethod.LARGEST_REMAINDER: RoundingSpec(True, False, "Hamilton: round down, spare lots by largest remainder"),
    RoundingMethod.QUOTA: RoundingSpec(False, True, "Balinski-Young quota method: lots one at a time by priority"),
}


class Remainder(enum.StrEnum):
    """Who takes a final odd quantity smaller than a lot (``rounding.remainder:``)."""

    LARGEST_REMAINDER = "largest_remainder"
    SMALLEST_ACCOUNT = "smallest_account"
    LARGEST_ACCOUNT = "largest_account"
    ROTATION = "rotation"


class RemainderSpec(msgspec.Struct, frozen=True):
    """``by_intended``: +1 orders by intended quantity ascending, -1 descending, 0 not by it."""

    by_intended: int
    rotation: bool  # ordered by this order's rotation order (needs a rotation section)
    words: str


REMAINDERS: dict[Remainder, RemainderSpec] = {
    Remainder.LARGEST_REMAINDER: RemainderSpec(0, False, "the largest remainder"),
    Remainder.SMALLEST_ACCOUNT: RemainderSpec(1, False, "the smallest account first"),
    Remainder.LARGEST_ACCOUNT: RemainderSpec(-1, False, "the largest account first"),
    Remainder.ROTATION: RemainderSpec(0, True, "the rotation order"),
}


class OverTime(enum.StrEnum):
    """How rounding is kept fair across the orders of a group (``fairness.over_time:``)."""

    CUMULATIVE_ADVANTAGE = "cumulative_advantage"


OVER_TIME: dict[OverTime, str] = {
    OverTime.CUMULATIVE_ADVANTAGE: "the spare lots and the odd quantity to the lowest cumulative rounding advantage",
}
"""What each choice does, in the words the explanation and ``diff`` use (``docs/rounding.md``)."""


class TieBreak(enum.StrEnum):
    """How equal claims are ordered; always ends on the account id (``rounding.tie_break:``)."""

    ACCOUNT_ID = "account_id"
    SMALLEST_ACCOUNT = "smallest_account"
    LARGEST_ACCOUNT = "largest_account"


TIE_BREAKS: dict[TieBreak, int] = {
    TieBreak.ACCOUNT_ID: 0,
    TieBreak.SMALLEST_ACCOUNT: 1,
    TieBreak.LARGEST_ACCOUNT: -1,
}
"""The sign each tie-break gives the intended quantity in the rank key (0: account id alone)."""


class Stage(enum.StrEnum):
    """Where in the allocation a rule action runs (``docs/policy-language.md``, "Order of evaluation")."""

    ELIGIBILITY = "eligibility"  # before the method: reads the account, not the allocation
    ROUNDS = "rounds"  # after each round of the method: reads the provisional allocation
    FINAL = "final"  # on the final allocation: records, changes nothing


class Action(enum.StrEnum):
    """What a rule does to an account its condition holds for (``rules[].action:``)."""

    EXCLUDE = "exclude"
    CAP = "cap"
    ZERO = "zero"
    FLAG = "flag"


class ActionSpec(msgspec.Struct, frozen=True):
    stage: Stage
    reads_allocation: bool
    quantity: bool  # takes a 'quantity'
    words: str


ACTIONS: dict[Action, ActionSpec] = {
    Action.EXCLUDE: ActionSpec(Stage.ELIGIBILITY, False, False, "removed before allocation"),
    Action.CAP: ActionSpec(Stage.ELIGIBILITY, False, True, "allocation capped at the rule's quantity"),
    Action.ZERO: ActionSpec(Stage.ROUNDS, True, False, "denied in a round; its share re-spread"),
    Action.FLAG: ActionSpec(Stage.FINAL, True, False, "recorded as an exception; nothing changes"),
}
"""Rules of the same stage run in the order the policy lists them."""


class MinimumKind(enum.StrEnum):
    """How the minimum allocation is stated (the key under ``minimum:``)."""

    ABSOLUTE = "absolute"
    RELATIVE_TO_INTENDED = "relative_to_intended"
    EXPRESSION = "expression"
    VALUE = "value"


class MinimumSpec(msgspec.Struct, frozen=True):
    per_account: bool  # differs from account to account
    arrays: bool  # the array backend computes it
    describe: str  # how the explanation states it; {} is the policy's value


MINIMUM_KINDS: dict[MinimumKind, MinimumSpec] = {
    MinimumKind.ABSOLUTE: MinimumSpec(False, True, "at least {}"),
    MinimumKind.RELATIVE_TO_INTENDED: MinimumSpec(True, True, "at least {} x intended"),
    MinimumKind.EXPRESSION: MinimumSpec(True, False, "at least {}"),
    MinimumKind.VALUE: MinimumSpec(False, True, "worth at least {} at the average price"),
}
"""``value`` may also stand beside one of the other kinds: an account must then reach both."""


class Denied(enum.StrEnum):
    """Where a below-minimum account's share goes (``minimum.denied:``)."""

    PRO_RATA = "pro_rata"
    ROTATION = "rotation"


DENIED: dict[Denied, str] = {
    Denied.PRO_RATA: "re-spread by the method, in the rounds",
    Denied.ROTATION: "handed on in rotation order, once after the rounds",
}


class Backend(enum.StrEnum):
    """How an allocation is computed; the result is the same either way (``allocate(backend=...)``)."""

    RECORDS = "records"
    ARRAYS = "arrays"


BACKENDS: dict[Backend, str] = {
    Backend.RECORDS: "one record per account (every policy; fastest for small blocks)",
    Backend.ARRAYS: "one array per account field (large pro-rata blocks)",
}


class PriceAllocation(enum.StrEnum):
    """At which price accounts receive their shares (``price.allocation:``)."""

    AVERAGE = "average"
    FILL = "fill"


PRICE_ALLOCATIONS: dict[PriceAllocation, str] = {
    PriceAllocation.AVERAGE: "every account at the block's average price (per trade date, and per broker if asked)",
    PriceAllocation.FILL: "every account receives pieces of real fills, at their own prices",
}


class CostBasis(enum.StrEnum):
    """What an account's share of a commission or fee is proportional to (``costs.basis:``)."""

    QUANTITY = "quantity"
    NOTIONAL = "notional"


COST_BASES: dict[CostBasis, str] = {
    CostBasis.QUANTITY: "in proportion to the quantity allocated",
    CostBasis.NOTIONAL: "in proportion to the value allocated (quantity x price)",
}


class Residual(enum.StrEnum):
    """Which accounts take the cents left when shares of a cost are rounded down (``costs.residual:``)."""

    LARGEST_REMAINDER = "largest_remainder"
    LARGEST_ACCOUNT = "largest_account"
    SMALLEST_ACCOUNT = "smallest_account"
    ACCOUNT_ID = "account_id"


class ResidualSpec(msgspec.Struct, frozen=True):
    """``by_quantity``: +1 orders by allocated quantity ascending, -1 descending, 0 not by it;
    ``by_remainder``: the largest fraction of a cent first."""

    by_quantity: int
    by_remainder: bool
    words: str


RESIDUALS: dict[Residual, ResidualSpec] = {
    Residual.LARGEST_REMAINDER: ResidualSpec(0, True, "one cent each to the largest fractions of a cent"),
    Residual.LARGEST_ACCOUNT: ResidualSpec(-1, False, "one cent each to the largest allocations first"),
    Residual.SMALLEST_ACCOUNT: ResidualSpec(1, False, "one cent each to the smallest allocations first"),
    Residual.ACCOUNT_ID: ResidualSpec(0, False, "one cent each in account id order"),
}
"""Every rule hands a left-over cent only to an account whose exact share has a fraction of a
cent, one cent at most each: every account is within one cent of its exact share."""

CME_553 = "cme_553"
"""``price.rounding: cme_553``: the average price rounds up for a buy and down for a sell (CME
Rule 553), and the cash the rounding takes from each account is credited back to it."""
