"""Fairness over time: each account's cumulative rounding advantage in a group of orders.

Rounding one order fairly is not enough for CFTC 1.35(b)(5)(iv)(B)'s "no account consistently
favoured": under the largest remainder method the same account can take the spare lot order after
order. A policy with ``fairness: {over_time: cumulative_advantage}`` counts, per *fairness group*
(the policy id, or ``id/<group expression>`` as rotation groups are named), each account's
*cumulative rounding advantage*: the sum, over the orders of the group, of what it was allocated
minus its exact share after caps. An order's spare lots and odd quantity go to the accounts whose
advantage is lowest (``fairalloc.rounding``); ``docs/rounding.md`` states what that guarantees
and proves it.

Beside priority tiers, the exact share is the one the account's tier gives it: its cap in a tier
the fill covers, its water-filled share of what is left in the tier the fill runs short in, 0 in
the tiers after; only that tier rounds, so only its accounts gain or lose advantage. Beside an
odd-lot recipient that takes the odd quantity, the exact shares are those of the whole lots (the
fill less the odd quantity), and the odd quantity the recipient takes by designation is not a
rounding advantage: it is left out of the recipient's allocation when the advantage is counted.

Like the rotation state, the advantages are an explicit input and output of an allocation — never
hidden in the engine — so that a caller or the ledger carries them from order to order, and a
replay recomputes them. Values are exact fractions of a unit of quantity (a share, a unit of face
value); an account absent from the state has advantage 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import msgspec

from fairalloc.errors import Diagnostic, InputError, Location
from fairalloc.rounding import Step


def fraction_json(value: Fraction) -> int | str:
    """An exact rational as JSON: an integer, or ``"numerator/denominator"`` in lowest terms."""
    return value.numerator if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _fraction(value: Any) -> Fraction | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, Decimal):
        return Fraction(value) if value.is_finite() else None
    if not isinstance(value, str) or len(value) > 10_000:
        return None
    top, slash, bottom = value.partition("/")
    digits = top[1:] if top.startswith("-") else top
    if not digits.isdigit() or (slash and not bottom.isdigit()) or (slash and int(bottom) == 0):
        return None
    return Fraction(int(top), int(bottom) if slash else 1)


class FairnessState(msgspec.Struct, frozen=True):
    """One fairness group's cumulative rounding advantage per account (0 when absent)."""

    group: str
    advantage: Mapping[str, Fraction] = msgspec.field(default_factory=dict)

    def of(self, account: str) -> Fraction:
        return self.advantage.get(account, Fraction(0))

    def to_json(self) -> dict[str, Any]:
        """Accounts in id order, zero advantages left out: the same state always gives the same bytes."""
        return {"group": self.group,
                "advantage": {account: fraction_json(value)
                              for account, value in sorted(self.advantage.items()) if value}}

    @classmethod
    def from_json(cls, data: Any, file: str = "<fairness>") -> FairnessState:
        """Read a state written by :meth:`to_json`; raise :class:`InputError` on anything else."""
        def bad(message: str, where: str) -> InputError:
            return InputError(Diagnostic("fairness-state", message, Location(file, pointer=where),
                                         'expected {"group": "...", "advantage": {"ACCOUNT": "-1/3", ...}}'))

        if not isinstance(data, dict):
            raise bad("a fairness state must be a JSON object", "")
        unknown = set(data) - {"group", "advantage"}
        if unknown:
            raise bad(f"unknown field '{sorted(unknown)[0]}'", f"/{sorted(unknown)[0]}")
        group, advantage = data.get("group"), data.get("advantage", {})
        if not isinstance(group, str) or not group:
            raise bad("'group' must be a non-empty string", "/group")
        if not isinstance(advantage, dict):
            raise bad("'advantage' must be an object of account ids to exact numbers", "/advantage")
        values: dict[str, Fraction] = {}
        for account, value in advantage.items():
            number = _fraction(value)
            if number is None:
                raise bad(f"the advantage of '{account}' must be an integer or a string 'p/q', not {value!r}",
                          f"/advantage/{account.replace('~', '~0').replace('/', '~1')}")
            if number:
                values[account] = number
        return cls(group, values)

    def advanced(self, changes: Mapping[str, Fraction]) -> FairnessState:
        """The state after an order whose rounding gave each account of ``changes`` that advantage."""
        totals = dict(self.advantage)
        for account, change in changes.items():
            totals[account] = totals.get(account, Fraction(0)) + change
        return FairnessState(self.group, {account: value for account, value in totals.items() if value})


def rounding_advantages(members: Sequence[int], units: Sequence[int], steps: Sequence[Step],
                        odd_lot: tuple[int, int] | None, scale: int) -> dict[int, Fraction]:
    """Each member's rounding advantage in this order, in units of quantity, by position (0 left
    out): its allocation less its exact share (``steps``, in the order of ``members``), less the
    odd quantity it took as the odd-lot recipient (``odd_lot``: position, units), which the policy
    designates rather than the rounding."""
    odd_position, odd_units = odd_lot if odd_lot is not None else (-1, 0)
    changes: dict[int, Fraction] = {}
    for step, k in zip(steps, members):
        change = (units[k] - (odd_units if k == odd_position else 0) - step.exact) / scale
        if change:
            changes[k] = change
    return changes
