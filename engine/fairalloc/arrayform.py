"""The array form of a compiled policy, and the typed reasons an allocation runs account by account.

When a policy is compiled (:class:`fairalloc.plan.Policy` builds this on construction), every rule
condition, cap quantity and the pro-rata weight is given its columnar form
(:mod:`fairalloc.expressions.vector`) once. A policy either has an :class:`ArrayForm` — and large
blocks under it run on the array backend (:mod:`fairalloc.arrays`) — or a :class:`Decline` saying
why not. A trade can still decline at run time (data the arrays cannot hold exactly); that is a
:class:`Decline` too, carried by :class:`Declined`. Either way the explanation of the result
names the backend that ran and, for the record backend, why (``document(explain=True)["backend"]``).
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import TYPE_CHECKING

import msgspec

from fairalloc.expressions.ast import Path
from fairalloc.expressions.vector import Vectorised, vectorise
from fairalloc.options import METHODS, MINIMUM_KINDS, Action

if TYPE_CHECKING:
    from fairalloc.plan import Policy

ARRAYS_FROM = 64
"""Blocks of at least this many accounts run on arrays when the policy has an array form. Measured
with the benchmark's policy: 20 accounts take 0.10 ms by records and 0.17 ms on arrays, 64
accounts 0.20 and 0.15 ms, 512 accounts 1.28 and 0.37 ms."""


class Why(enum.StrEnum):
    """Why an allocation ran by records rather than on arrays."""

    METHOD = "method"
    ROTATION = "rotation"
    WEIGHT = "weight"
    MINIMUM = "minimum"
    PRIORITY = "priority"
    CONDITION = "condition"
    CAP = "cap"
    DATA = "data"
    SMALL_BLOCK = "small_block"
    REQUESTED = "requested"


WHY: dict[Why, str] = {
    Why.METHOD: "the method runs account by account",
    Why.ROTATION: "a rotation section orders accounts one by one",
    Why.WEIGHT: "the pro-rata weight is not the intended quantity or a number attribute",
    Why.MINIMUM: "the minimum is computed per account by an expression",
    Why.PRIORITY: "the priority expression has no columnar form",
    Why.CONDITION: "a rule's condition has no columnar form",
    Why.CAP: "a cap rule's quantity has no columnar form",
    Why.DATA: "the trade holds data the arrays cannot evaluate exactly",
    Why.SMALL_BLOCK: f"blocks under {ARRAYS_FROM} accounts are faster by records",
    Why.REQUESTED: "the caller asked for the record backend",
}


class Decline(msgspec.Struct, frozen=True):
    """A typed reason the array backend does not run: which kind, and the particular."""

    why: Why
    detail: str

    def text(self) -> str:
        return f"{WHY[self.why]}: {self.detail}" if self.detail else WHY[self.why]


class Declined(Exception):
    """Raised by the array backend mid-run for data it cannot evaluate exactly; the driver catches
    exactly this and runs the trade by records, recording the decline in the explanation."""

    def __init__(self, decline: Decline) -> None:
        super().__init__(decline.text())
        self.decline = decline


class ArrayForm(msgspec.Struct, frozen=True):
    """Every expression of a policy that the array backend evaluates, in columnar form."""

    conditions: dict[str, Vectorised]  # rule id -> its condition
    caps: dict[str, Vectorised | Decimal]  # cap rule id -> its quantity
    weight: str | None  # the number attribute weighed by (None: the intended quantity, or equal)
    priority: Vectorised | None = None  # each account's tier, if the policy has priority tiers


def array_form(policy: Policy) -> ArrayForm | Decline:
    """The array form of ``policy``, or why it has none."""
    if not METHODS[policy.method].arrays:
        return Decline(Why.METHOD, f"method {policy.method}")
    # without a rotation section there is no remainder or minimum.denied by rotation (compile.py)
    if policy.rotation is not None:
        return Decline(Why.ROTATION, "")
    weight = weight_attribute(policy)
    if policy.weight is not None and weight is None:
        return Decline(Why.WEIGHT, policy.weight.source)
    if policy.minimum is not None and not MINIMUM_KINDS[policy.minimum.kind].arrays:
        return Decline(Why.MINIMUM, policy.minimum.describe())
    priority = None if policy.priority is None else vectorise(policy.priority)
    if policy.priority is not None and priority is None:
        return Decline(Why.PRIORITY, policy.priority.source)
    conditions: dict[str, Vectorised] = {}
    caps: dict[str, Vectorised | Decimal] = {}
    for rule in policy.rules:
        condition = vectorise(rule.when)
        if condition is None:
            return Decline(Why.CONDITION, f"rule '{rule.id}': {rule.when.source}")
        conditions[rule.id] = condition
        if rule.action is Action.CAP:
            quantity = rule.quantity
            if isinstance(quantity, Decimal):
                caps[rule.id] = quantity
                continue
            assert quantity is not None  # the compiler requires a quantity for action 'cap'
            form = vectorise(quantity)
            if form is None:
                return Decline(Why.CAP, f"rule '{rule.id}': {quantity.source}")
            caps[rule.id] = form
    return ArrayForm(conditions, caps, weight, priority)


def weight_attribute(policy: Policy) -> str | None:
    """The number attribute a policy weighs by (``weight: account.assets``), if that is its weight."""
    weight = policy.weight
    if weight is None or not isinstance(weight.tree, Path) or len(weight.tree.parts) != 2:
        return None
    root, name = weight.tree.parts
    numbers = {attribute.name for attribute in policy.account_attributes if attribute.kind == "number"}
    return name if root == "account" and name in numbers else None
