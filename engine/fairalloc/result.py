"""The outcome of an allocation, as values, as a contract document and as an explanation.

:class:`Allocation` keeps exact numbers (``Fraction``) and every fact needed to answer an
examiner's "why this number?" for each account: the method, weight, exact share, rounding step,
tie-break rank, cap, threshold and the rules that fired. ``document()`` renders the
``allocation.schema.json`` contract (plus extra fields the contract allows); ``explain=True`` adds a
plain-words explanation per account and says which backend computed the result (``backend``).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING, Any

import msgspec

from fairalloc.money import Presenter, Settlement, explain_entries, extend_entries, own_average, summary
from fairalloc.numbers import present_text
from fairalloc.options import METHODS, ROUNDING_METHODS, Method
from fairalloc.rounding import Apportionment, Step

if TYPE_CHECKING:
    from fairalloc.fairness import FairnessState
    from fairalloc.plan import Policy
    from fairalloc.rotation import RotationState


class ExceptionRecord(msgspec.Struct, frozen=True, gc=False):
    """A rule that fired for an account: which, what it did, why, and whether the CCO must review it.

    Immutable, compared and hashed by its fields; built in C (a large block can have thousands)."""

    account: str
    rule: str
    action: str
    reason: str
    review: bool

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "rule": self.rule, "action": self.action,
                "reason": self.reason, "review": self.review}


class AccountState(msgspec.Struct):
    """One statement account while the allocation runs (quantities in integer units)."""

    id: str
    index: int  # position in the statement: its expression context and JSON pointer
    intended: int
    cap: int | None
    weight: int = 0
    weight_text: str | None = None  # the weight expression's value as the policy computed it
    rank: int = 0
    rules: list[str] | None = None
    excluded: bool = False
    denied_round: int | None = None
    denied_by: str | None = None
    minimum: int | None = None
    tier: int | None = None  # pro_rata.priority: the account's tier

    def fired(self, rule_id: str) -> None:
        if self.rules is None:
            self.rules = []
        self.rules.append(rule_id)


class Outcome(msgspec.Struct):
    """What one run of a method produced for the participating accounts (integer units)."""

    units: dict[str, int]
    apportionment: Apportionment | None = None
    positions: dict[str, int] = msgspec.field(default_factory=dict)  # account -> index in the apportionment
    prices: dict[str, Fraction] = msgspec.field(default_factory=dict)
    fills: dict[str, list[tuple[str, int]]] = msgspec.field(default_factory=dict)
    tiers: dict[int, tuple[bool, str]] = msgspec.field(default_factory=dict)  # tier -> (filled to caps, words)
    odd_lot: tuple[str, int] | None = None  # odd_lots.recipient: (account, units) it took

    def step(self, account: str) -> Step | None:
        if self.apportionment is None or account not in self.positions:
            return None
        return self.apportionment.steps[self.positions[account]]


class AccountAllocation(msgspec.Struct, frozen=True):
    """One account's allocation with everything that produced it (exact numbers)."""

    account: str
    intended: Fraction
    quantity: Fraction
    average_price: Fraction | None
    weight: int
    weight_text: str | None
    cap: Fraction | None
    step: Step | None
    rank: int
    rules: tuple[str, ...]
    denied_round: int | None
    denied_by: str | None
    minimum: Fraction | None
    fills: tuple[tuple[str, Fraction], ...]
    rotation_rank: int | None
    tier: int | None = None
    tier_outcome: tuple[bool, str] | None = None
    odd_lot: Fraction | None = None  # the odd quantity it took as odd_lots.recipient


def quantity_json(value: Fraction) -> int | str:
    """Contract form of a quantity: an integer, or a decimal string when fractional."""
    if value.denominator == 1:
        return value.numerator
    return present_text(value, 12, "down")


def fraction_text(value: Fraction, places: int = 6) -> str:
    shown = present_text(value, places, "half_even")
    if value.denominator == 1 or Fraction(shown) == value:
        return shown
    return f"{shown}... (= {value.numerator}/{value.denominator})"


class Columns(msgspec.Struct, frozen=True):
    """Every statement account's id, intended and allocated quantity (integer units), by account id.

    The contract document and :meth:`Allocation.quantities` need nothing more, so they are built
    from these three lists without the per-account records behind ``--explain``.
    """

    ids: list[str]
    intended: list[int]
    allocated: list[int]


Details = Callable[[], "tuple[list[AccountState], Outcome]"]
"""Builds the per-account records of a run (sorted by account id) and the method's outcome."""


class Allocation:
    """What the engine decided for one block order, and under which policy version.

    Per-account views (:attr:`accounts`) are built on first use: a caller that only needs the
    quantities of a 100,000-account block does not pay for 100,000 explanations.
    """

    def __init__(
        self,
        *,
        policy: Policy,
        order_id: str,
        method: Method,
        filled: Fraction,
        average_price: Fraction | None,
        columns: Columns,
        details: Details,
        own_prices: dict[str, Fraction] | None,
        exceptions: tuple[ExceptionRecord, ...],
        rotation_before: RotationState | None,
        rotation_after: RotationState | None,
        rotation_order: tuple[str, ...],
        lot: Fraction,
        notes: tuple[str, ...],
        scale: int,
        backend: dict[str, Any],
        settlement: Settlement | None = None,
        price_rule: str | None = None,
        fairness_before: FairnessState | None = None,
        fairness_after: FairnessState | None = None,
    ) -> None:
        self.policy = policy
        self.order_id = order_id
        self.method = method
        self.filled = filled
        self.average_price = average_price
        self.exceptions = exceptions
        self.rotation_before = rotation_before
        self.rotation_after = rotation_after
        self.lot = lot
        self.notes = notes
        self.scale = scale  # integer units per unit of quantity (10 ** decimal places in the trade)
        self.columns = columns
        self._details = details
        self._own_prices = own_prices  # price/time: each account's own average price
        self._rotation_order = rotation_order
        self.backend = backend  # which backend computed it, and why not on arrays (the explanation)
        self.settlement = settlement  # pieces of fills, costs, money, clearing (None: none of them)
        self._average_text: str | None = None
        self._average_taken = False
        self.price_rule = price_rule or policy.price_rounding  # the rounding rule for this order's side
        self.fairness_before = fairness_before  # the fairness group's advantages before and after
        self.fairness_after = fairness_after

    def quantities(self) -> dict[str, Fraction]:
        """Each account's allocated quantity (exact), by account id."""
        columns, scale = self.columns, self.scale
        return {account: Fraction(units, scale) for account, units in zip(columns.ids, columns.allocated)}

    @cached_property
    def accounts(self) -> tuple[AccountAllocation, ...]:
        """Every statement account's allocation and how it came about, sorted by account id."""
        states, outcome = self._details()
        scale = self.scale
        leaders = {account: i for i, account in enumerate(self._rotation_order)}
        views = []
        settlement = self.settlement
        for k, (state, units) in enumerate(zip(states, self.columns.allocated)):
            if self._own_prices is not None:
                price = self._own_prices.get(state.id)
            elif settlement is not None and settlement.pieces is not None:
                price = own_average(settlement, k)  # pieces of fills, or of trade dates and brokers
            else:
                price = self.average_price if units else None
            views.append(AccountAllocation(
                account=state.id,
                intended=Fraction(state.intended, scale),
                quantity=Fraction(units, scale),
                average_price=price,
                weight=state.weight,
                weight_text=state.weight_text,
                cap=None if state.cap is None else Fraction(state.cap, scale),
                step=outcome.step(state.id),
                rank=state.rank,
                rules=tuple(state.rules or ()),
                denied_round=state.denied_round,
                denied_by="exclude" if state.excluded else state.denied_by,
                minimum=None if state.minimum is None else Fraction(state.minimum, scale),
                fills=tuple((fill, Fraction(u, scale)) for fill, u in outcome.fills.get(state.id, [])),
                rotation_rank=leaders.get(state.id),
                tier=state.tier,
                tier_outcome=None if state.tier is None else outcome.tiers.get(state.tier),
                odd_lot=Fraction(outcome.odd_lot[1], scale) if outcome.odd_lot and outcome.odd_lot[0] == state.id else None,
            ))
        return tuple(views)

    def price_text(self, price: Fraction | None) -> str | None:
        """A price at the policy's precision and named rounding rule (``None`` stays ``None``)."""
        if price is None:
            return None
        return present_text(price, self.policy.price_precision, self.price_rule)

    @property
    def _average_price_text(self) -> str | None:
        # taken once (a cached_property would take a lock at its first use, in every result)
        if not self._average_taken:
            self._average_text, self._average_taken = self.price_text(self.average_price), True
        return self._average_text

    ENTRY_FIELDS = ("account", "quantity", "average_price", "intended")
    """The fields of each of the contract's per-account entries, in order."""

    def entry_columns(self) -> list[list[Any]]:
        """The contract's per-account entries as columns (:attr:`ENTRY_FIELDS`, JSON values),
        straight from the run's columns: no per-account views, no per-account objects."""
        columns, scale = self.columns, self.scale
        ids, allocated, intended = columns.ids, columns.allocated, columns.intended
        own_prices = self._own_prices
        if own_prices is not None:
            prices = [self.price_text(own_prices.get(account)) if units else None
                      for account, units in zip(ids, allocated)]
        else:
            price = self._average_price_text
            prices = [price if units else None for units in allocated] if price is not None else [None] * len(ids)
        if scale == 1:
            return [ids, allocated, prices, intended]
        return [ids, [quantity_json(Fraction(units, scale)) for units in allocated], prices,
                [quantity_json(Fraction(wanted, scale)) for wanted in intended]]

    def _allocation_entries(self) -> list[dict[str, Any]]:
        """The contract's per-account entries, one object each, with the settlement's pieces,
        money and clearing when there is one (those are not columns: see :meth:`entry_columns`)."""
        entries = [dict(zip(self.ENTRY_FIELDS, row)) for row in zip(*self.entry_columns())]
        if self.settlement is not None:
            extend_entries(self.settlement, entries, self.columns.allocated, self.scale,
                           Presenter(self.policy.price_precision, self.price_rule))
        return entries

    def document(self, *, explain: bool = False, entries: bool = True) -> dict[str, Any]:
        """The allocation as a JSON-ready dict valid against ``allocation.schema.json``.

        ``entries=False`` leaves ``allocations`` empty, for a writer that takes the entries from
        :meth:`entry_columns` (``explain`` then must be false)."""
        policy = self.policy
        apportioned = METHODS[self.method].rounding
        assert entries or not explain, "the explanations are written into the entries"
        allocations = self._allocation_entries() if entries else []
        if explain:
            for entry, account in zip(allocations, self.accounts):
                entry["explain"] = self.explain(account)
            if self.settlement is not None:
                explain_entries(self.settlement, allocations)
        document: dict[str, Any] = {
            "order_id": self.order_id,
            "policy": {"id": policy.id, "version": policy.version, "digest": policy.digest},
            "method": self.method,
            "rounding": {
                "lot": quantity_json(self.lot),
                "method": policy.rounding_method if apportioned else None,
                "remainder": policy.remainder if apportioned else None,
                "tie_break": policy.tie_break,
                "price_precision": policy.price_precision,
                "price_rounding": policy.price_rounding,
            },
            "filled": quantity_json(self.filled),
            "average_price": self._average_price_text,
            "allocations": allocations,
            "exceptions": [record.to_json() for record in self.exceptions],
            "review_required": any(record.review for record in self.exceptions),
        }
        if self.rotation_before is not None and self.rotation_after is not None:
            document["rotation"] = {"before": self.rotation_before.to_json(), "after": self.rotation_after.to_json()}
        if self.settlement is not None:
            document["settlement"] = summary(self.settlement, policy)
        if self.fairness_before is not None and self.fairness_after is not None:
            document["fairness"] = {"before": self.fairness_before.to_json(), "after": self.fairness_after.to_json()}
        if self.notes:
            document["notes"] = list(self.notes)
        if explain:
            document["backend"] = dict(self.backend)
        return document

    def explain(self, account: AccountAllocation) -> dict[str, Any]:
        """Why ``account`` got its number, in the terms a compliance examiner asks about."""
        policy = self.policy
        lot = quantity_json(self.lot)
        out: dict[str, Any] = {"method": self.method}
        apportioned = METHODS[self.method].rounding
        remainder_rule = ROUNDING_METHODS[policy.rounding_method].remainder_rule
        if account.denied_by == "exclude":
            out["outcome"] = f"excluded before allocation by rule(s) {', '.join(account.rules)}"
            out["rules"] = list(account.rules)
            return out
        if apportioned and policy.equal_weights:
            out["weight"] = 1
            out["weight_basis"] = "equal: the same for every account"
        elif apportioned:
            out["weight"] = account.weight_text if policy.weight is not None else quantity_json(account.intended)
            out["weight_basis"] = policy.weight.source if policy.weight is not None else "intended quantity"
        if account.tier is not None:
            out["tier"] = account.tier
            if account.tier_outcome is not None:
                out["tier_outcome"] = account.tier_outcome[1]
        out["cap"] = quantity_json(account.cap) if account.cap is not None else "none (allowed above intended)"
        step = account.step
        if step is not None and apportioned:
            if not remainder_rule:
                # the quota method respects caps as it hands out lots; it computes no capped share
                out["exact_share_before_caps"] = fraction_text(self._units(step.exact))
            else:
                out["exact_share"] = fraction_text(self._units(step.exact))
                out["capped_in_water_filling"] = step.capped
            if not remainder_rule:
                words = f"{step.base_lots} lot(s) of {lot} by the quota method (priority weight/(lots+1))"
            else:
                words = f"exact share rounded down to {step.base_lots} lot(s) of {lot}"
                if step.extra_lot and policy.fairness is not None:
                    words += (f"; +1 lot for the lowest cumulative advantage "
                              f"(position {step.order} in fairness order)")
                elif step.extra_lot:
                    words += f"; +1 lot for its remainder (position {step.order} in remainder order)"
            if step.odd:
                rule = "fairness over time" if policy.fairness is not None else (
                    f"remainder rule '{policy.remainder}'" if remainder_rule else "remainder rule 'next in line'")
                words += f"; +{quantity_json(self._units(Fraction(step.odd)))} odd quantity ({rule})"
            out["rounding"] = words
            if account.tier_outcome is not None and account.tier_outcome[0]:
                out["rounding"] = "none: its tier was filled up to every account's cap"
        if account.odd_lot is not None:
            out["odd_lot"] = (f"+{quantity_json(account.odd_lot)} odd quantity as the designated recipient "
                              "(odd_lots.recipient)")
            if policy.fairness is not None:
                out["odd_lot"] += "; not counted in its cumulative advantage"
        if self.fairness_before is not None and self.fairness_after is not None:
            before = self.fairness_before.of(account.account)
            after = self.fairness_after.of(account.account)
            out["cumulative_advantage"] = {"before": fraction_text(before), "this_order": fraction_text(after - before),
                                           "after": fraction_text(after)}
        if self.method is Method.ROTATION or account.rotation_rank is not None:
            out["rotation_position"] = account.rotation_rank
        if self.method is Method.PRICE_TIME:
            out["fills"] = [{"fill": fill, "quantity": quantity_json(q)} for fill, q in account.fills]
        out["tie_break"] = f"{policy.tie_break} (rank {account.rank})"
        if account.minimum is not None:
            out["minimum"] = quantity_json(account.minimum)
        if account.denied_round is not None:
            out["outcome"] = (f"denied in round {account.denied_round} by {account.denied_by}; "
                              "its share was re-spread to the other accounts")
        out["rules"] = list(account.rules)
        out["quantity"] = quantity_json(account.quantity)
        return out

    def _units(self, units: Fraction) -> Fraction:
        """Quantity of an amount counted in the engine's integer units."""
        return units / self.scale

    def rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """Table rows for people: account, intended, allocated, price, percent of intended, notes."""
        rows = []
        for account in self.accounts:
            share = (account.quantity / account.intended * 100) if account.intended else Fraction(0)
            notes = ", ".join(account.rules) or ("denied: " + account.denied_by if account.denied_by else "")
            rows.append((
                account.account,
                present_text(account.intended, 12, "down"),
                present_text(account.quantity, 12, "down"),
                self.price_text(account.average_price) or "-" if account.quantity else "-",
                present_text(share, 2) + "%",
                notes,
            ))
        return rows
