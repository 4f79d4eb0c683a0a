"""Stage 6, columnar: the allocation of :mod:`fairalloc.allocate`, computed on arrays for large blocks.

A block of 100,000 accounts spends most of its time on per-account Python objects: one context
record, one account record and one closure call per rule and account. This module runs the same
stages in the same order with one numpy array per account field instead, and builds the records
behind ``--explain`` only when asked for them.

:func:`fairalloc.allocate.allocate_general` stays the definition. This path covers the common case
and returns ``None`` for anything else, and ``allocate`` then runs the general path:

* methods: ``pro_rata`` without a rotation (``remainder`` not ``rotation``, no ``minimum.denied:
  rotation``), weighted by the intended quantity or a number attribute (``weight:
  account.assets``), either rounding method;
* minimum: ``absolute`` or ``relative_to_intended``;
* rules: ``exclude``, ``zero``, ``flag`` and ``cap`` whose ``when`` (and a cap's ``quantity``)
  has a columnar form (:mod:`fairalloc.expressions.vector`);
* trades: string, boolean and number attributes (numbers as integers, decimals or decimal
  strings), and quantities whose integer units fit int64 products.

It also returns ``None`` instead of raising: a trade that fails a control, a policy that does not
govern it, data an expression cannot evaluate exactly, a fill the caps cannot hold. The general
path then reports the error, so both paths report every error identically.
``tests/test_columnar.py`` holds the two paths to identical documents, explanations included.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from itertools import repeat
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from fairalloc.context import TradeContext, applies, scalar_context
from fairalloc.controls import check_controls, check_policy_governs
from fairalloc.errors import FairallocError
from fairalloc.expressions.ast import Path
from fairalloc.expressions.vector import SAFE, Frame, Rational, Unsupported, vectorise
from fairalloc.numbers import decimal_text, to_units, units_scale
from fairalloc.plan import Attribute, Policy, Rule
from fairalloc.result import AccountState, Allocation, Columns, ExceptionRecord, Outcome
from fairalloc.rotation import RotationState
from fairalloc.rounding import NO_CAP, Apportionment, largest_remainder, largest_remainder_array, quota_method
from fairalloc.trade import Trade

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

COLUMNAR_FROM = 64
"""Blocks of at least this many accounts are allocated by this module. Measured with the
benchmark's policy: 20 accounts take 0.10 ms account by account and 0.17 ms on arrays, 64
accounts 0.20 and 0.15 ms, 512 accounts 1.28 and 0.37 ms."""


def covers(policy: Policy) -> bool:
    """Whether ``policy`` is within this path's scope (the trade may still send it back)."""
    # without a rotation section there is no remainder or minimum.denied by rotation (compile.py)
    if policy.method != "pro_rata" or policy.rotation is not None:
        return False
    if policy.weight is not None and _weight_attribute(policy) is None:
        return False
    if policy.minimum is not None and policy.minimum.kind == "expression":
        return False
    for rule in policy.rules:
        if vectorise(rule.when) is None:
            return False
        quantity = rule.quantity
        if rule.action == "cap" and not isinstance(quantity, Decimal) and (
                quantity is None or vectorise(quantity) is None):
            return False
    return True


def _weight_attribute(policy: Policy) -> str | None:
    """The number attribute a policy weighs by (``weight: account.assets``), if that is its weight."""
    weight = policy.weight
    if weight is None or not isinstance(weight.tree, Path) or len(weight.tree.parts) != 2:
        return None
    root, name = weight.tree.parts
    numbers = {attribute.name for attribute in policy.account_attributes if attribute.kind == "number"}
    return name if root == "account" and name in numbers else None


def allocate_columnar(policy: Policy, trade: Trade, rotation: RotationState | None = None,
                      *, file: str = "<trade>") -> Allocation | None:
    """:func:`fairalloc.allocate.allocate_general`'s result, or ``None`` where this path does not apply."""
    if rotation is not None or not covers(policy) or check_controls(trade, file):
        return None
    try:
        ctx = scalar_context(policy, trade, file)
        if check_policy_governs(policy, trade, applies(policy, ctx), file):
            return None
        book = _Book.build(policy, trade, ctx)
        return book.allocate() if book is not None else None
    except (Unsupported, ValueError, FairallocError):
        # data this path cannot evaluate exactly, caps that cannot hold the fill, an expression
        # or input error: the general path decides, and reports any error with its location
        return None


class _Book:
    """One trade's accounts as columns, sorted by account id, while the stages run."""

    def __init__(self, policy: Policy, trade: Trade, ctx: TradeContext, ids: list[str], index: list[int],
                 intended: NDArray[np.int64], scale: int, raw: dict[str, tuple[str, list[Any]]]) -> None:
        import numpy as np

        self.policy, self.trade, self.ctx = policy, trade, ctx
        self.ids, self.index, self.intended, self.scale = ids, index, intended, scale
        self.raw = raw  # declared attributes: (kind, values in statement order, of that kind)
        self.n = len(ids)
        self.order = np.asarray(index, dtype=np.int64)
        self.cache: dict[str, Any] = {}
        self.events: list[tuple[Rule, NDArray[np.int64]]] = []  # rules that fired, in the order they ran
        self.denials: list[NDArray[np.int64]] = []  # accounts denied by the minimum, round by round
        self.notes: list[str] = []
        self.weight_values: list[Any] | None = None  # a weight attribute's values (None: excluded)

    @classmethod
    def build(cls, policy: Policy, trade: Trade, ctx: TradeContext) -> _Book | None:
        import numpy as np

        entries = trade.statement.accounts
        raw: dict[str, tuple[str, list[Any]]] = {}
        given = [entry.attributes for entry in entries] if policy.account_attributes else []
        for attribute in policy.account_attributes:
            values = _attribute_column(attribute, list(map(dict.get, given, repeat(attribute.name))))
            if values is None:
                return None
            raw[attribute.name] = (attribute.kind, values)
        quantities = trade.statement.intended
        scale = units_scale([policy.lot, *(fill.quantity for fill in trade.fills), *quantities])
        if scale > 1 or not set(map(type, quantities)) <= {int}:
            quantities = [to_units(q, scale) for q in quantities]
        if max(quantities) >= SAFE:
            return None
        ids = trade.statement.account_ids
        index = sorted(range(len(ids)), key=ids.__getitem__)  # one pass if already in id order
        if index == list(range(len(ids))):
            return cls(policy, trade, ctx, ids, index, np.asarray(quantities, dtype=np.int64), scale, raw)
        intended = np.asarray(quantities, dtype=np.int64)[index]
        return cls(policy, trade, ctx, [ids[i] for i in index], index, intended, scale, raw)

    # -- columns for expressions ------------------------------------------------------------
    def column(self, name: str) -> Any:
        """``account.<name>`` in account-id order, built on first use."""
        import numpy as np

        if name in self.cache:
            return self.cache[name]
        if name == "id":
            value: Any = np.asarray(self.ids, dtype=object)
        elif name == "intended":
            value = Rational(self.intended, self.scale)
        elif name in self.raw:
            kind, values = self.raw[name]
            if kind == "boolean":
                value = np.asarray(values, dtype=bool)[self.order]
            elif kind == "number":
                scale = units_scale(values)
                units = values if scale == 1 else [to_units(number, scale) for number in values]
                if max(map(abs, units)) >= SAFE:
                    raise Unsupported(f"account.{name} leaves int64")
                value = Rational(np.asarray(units, dtype=np.int64)[self.order], scale)
            else:
                value = np.asarray(values, dtype=object)[self.order]
        else:
            raise Unsupported(f"account.{name} has no column")
        self.cache[name] = value
        return value

    def frame(self, units: NDArray[np.int64] | None) -> Frame:
        """What a vectorised expression reads; ``units``: the provisional allocation, if any."""
        c = self.ctx
        roots = {"order": c.order, "security": c.security, "statement": c.statement, "fill": c.fill}
        allocation = None if units is None else Rational(units, self.scale)
        return Frame(roots, self.column, allocation)

    def fired(self, rule: Rule, among: NDArray[np.int64], units: NDArray[np.int64] | None) -> NDArray[np.int64]:
        """The accounts of ``among`` (positions) for which ``rule`` fires; recorded in order."""
        function = vectorise(rule.when)
        assert function is not None  # covers() checked every rule
        value = function(self.frame(units))
        if type(value) is bool:
            hits = among if value else among[:0]
        elif hasattr(value, "dtype") and value.dtype == bool:
            hits = among[value[among]]
        else:
            raise Unsupported(f"rule '{rule.id}' does not give a boolean")
        self.events.append((rule, hits))
        return hits

    # -- the stages, as in fairalloc.allocate ------------------------------------------------
    def allocate(self) -> Allocation | None:
        import numpy as np

        policy, n, scale = self.policy, self.n, self.scale
        everyone = np.arange(n, dtype=np.int64)
        lot = int(Fraction(policy.lot) * scale)
        self.rank = self._rank()
        caps = np.full(n, NO_CAP, dtype=np.int64) if policy.allow_above_intended else self.intended.copy()
        excluded = np.zeros(n, dtype=bool)
        for rule in policy.rules_by_action("exclude"):
            excluded[self.fired(rule, everyone, None)] = True
        eligible = everyone[~excluded]
        for rule in policy.rules_by_action("cap"):
            hit = self.fired(rule, eligible, None)
            caps[hit] = np.minimum(caps[hit], self._cap_units(rule, hit))
        self.caps, self.excluded = caps, excluded
        self.weights = self._weights(excluded)
        filled = int(Fraction(self.ctx.filled) * scale)
        minimum = self._minimum()
        zero_rules = policy.rules_by_action("zero")
        participants = eligible
        denied_round = np.zeros(n, dtype=np.int64)  # 0: not denied
        denied_by: dict[int, str] = {}
        outcome = self._method(participants, filled, lot) if len(participants) else None
        for round_number in range(1, n + 2):
            if not len(participants) or outcome is None:
                break
            units, _ = outcome
            events = len(self.events)
            denied = np.zeros(n, dtype=bool)
            by_rule: list[tuple[Rule, NDArray[np.int64]]] = []
            for rule in zero_rules:
                hit = self.fired(rule, participants, units)
                by_rule.append((rule, hit[~denied[hit]]))
                denied[hit] = True
            below = np.zeros(n, dtype=bool)
            if minimum is not None:
                got = units[participants]
                low = participants[(got > 0) & (got < minimum[participants])]
                below[low] = ~denied[low]
                denied |= below
            if not denied.any():
                break
            remaining = participants[~denied[participants]]
            if not self._can_hold(remaining, filled):
                names = ", ".join(sorted(self.ids[i] for i in np.flatnonzero(denied).tolist()))
                self.notes.append(
                    f"round {round_number}: denying {names} would leave accounts unable to take "
                    "the filled quantity under their caps; the round was not applied"
                )
                del self.events[events:]
                break
            for rule, hit in by_rule:
                for k in hit.tolist():
                    denied_by.setdefault(k, rule.id)
            newly_below = np.flatnonzero(below)
            for k in newly_below.tolist():
                denied_by[k] = "minimum"
            if len(newly_below):
                self.denials.append(newly_below)
            denied_round[denied] = round_number
            participants = remaining
            outcome = self._method(participants, filled, lot)
        final = outcome[0] if outcome is not None else np.zeros(n, dtype=np.int64)
        if int(final.sum()) != filled:
            return None  # the general path refuses it, with its message
        allocated = everyone[~excluded & (denied_round == 0)]
        for rule in policy.rules_by_action("flag"):
            self.fired(rule, allocated, final)
        return self._result(final, outcome, participants, denied_round, denied_by, minimum)

    def _weights(self, excluded: NDArray[np.bool_]) -> NDArray[np.int64]:
        """Each participant's weight in integer units, as ``fairalloc.allocate`` computes it (0 if excluded).

        A weight attribute's values are scaled by the power of ten that makes every participant's
        value whole; the values themselves are kept for the explanation (``weight_text``).
        """
        import numpy as np

        name = _weight_attribute(self.policy)
        if name is None:
            return np.where(excluded, 0, self.intended)
        _, values = self.raw[name]
        taking = (~excluded).tolist()
        chosen = [values[i] for i, take in zip(self.index, taking) if take]
        if chosen and min(chosen) < 0:
            raise Unsupported("a negative weight")  # the general path reports it
        scale = units_scale(chosen)
        units = [to_units(values[i], scale) if take else 0 for i, take in zip(self.index, taking)]
        if units and max(units) >= SAFE:
            raise Unsupported("a weight beyond int64")
        self.weight_values = [values[i] if take else None for i, take in zip(self.index, taking)]
        return np.asarray(units, dtype=np.int64)

    def _cap_units(self, rule: Rule, hit: NDArray[np.int64]) -> Any:
        """The cap ``rule`` sets for the accounts ``hit``, in units rounded down, never below zero."""
        import numpy as np

        quantity = rule.quantity
        if not isinstance(quantity, Decimal):
            assert quantity is not None
            function = vectorise(quantity)
            assert function is not None  # covers() checked it
            value = function(self.frame(None))
            if isinstance(value, Rational):
                _bounded(value.top * self.scale)
                return np.maximum(0, (value.numerators[hit] * self.scale) // value.denominator)
            if type(value) is not int and type(value) is not Decimal:
                raise Unsupported("a cap that is not a number")  # the general path reports it
            quantity = Decimal(value)
        units = max(0, int(Fraction(quantity) * self.scale // 1))
        _bounded(units)
        return units

    def _rank(self) -> NDArray[np.int64]:
        import numpy as np

        n = self.n
        rule = self.policy.tie_break
        if rule not in ("smallest_account", "largest_account"):
            return np.arange(n, dtype=np.int64)
        key = self.intended if rule == "smallest_account" else -self.intended
        ordered = np.lexsort((np.arange(n), key))
        rank = np.empty(n, dtype=np.int64)
        rank[ordered] = np.arange(n)
        return rank

    def _minimum(self) -> NDArray[np.int64] | None:
        import numpy as np

        minimum = self.policy.minimum
        if minimum is None:
            return None
        if minimum.kind == "absolute":
            assert minimum.absolute is not None
            value = -((-Fraction(minimum.absolute) * self.scale) // 1)
            if value >= SAFE:
                raise Unsupported("minimum leaves int64")
            return np.full(self.n, value, dtype=np.int64)
        assert minimum.relative is not None
        ratio = Fraction(minimum.relative)
        if self.intended.max(initial=0) * ratio.numerator >= SAFE or ratio.denominator >= SAFE:
            raise Unsupported("minimum leaves int64")
        return -((-self.intended * ratio.numerator) // ratio.denominator)

    def _can_hold(self, accounts: NDArray[np.int64], filled: int) -> bool:
        """As ``fairalloc.allocate._can_hold``: whether ``accounts`` can take ``filled`` under their caps."""
        caps, weights = self.caps[accounts], self.weights[accounts]
        counted = (weights > 0) | (caps == NO_CAP)
        if (counted & (caps == NO_CAP)).any():
            return len(accounts) > 0
        return int(caps[counted].sum(dtype=object)) >= filled

    def _method(self, participants: NDArray[np.int64], filled: int,
                lot: int) -> tuple[NDArray[np.int64], Apportionment]:
        import numpy as np

        policy = self.policy
        weights, caps, ranks = self.weights[participants], self.caps[participants], self.rank[participants]
        result: Apportionment
        if policy.rounding_method == "quota":
            result = quota_method(filled, weights.tolist(), _cap_list(caps), lot, ranks.tolist())
            alloc = np.asarray(result.allocations, dtype=np.int64)
        else:
            odd_key = None
            if policy.remainder == "smallest_account":
                odd_key = self.intended[participants]
            elif policy.remainder == "largest_account":
                odd_key = -self.intended[participants]
            arrays = largest_remainder_array(filled, weights, caps, lot, ranks, odd_key)
            if arrays is None:
                result = largest_remainder(filled, weights.tolist(), _cap_list(caps), lot, ranks.tolist(),
                                           None if odd_key is None else odd_key.tolist())
                alloc = np.asarray(result.allocations, dtype=np.int64)
            else:
                alloc, result = arrays
        units = np.zeros(self.n, dtype=np.int64)
        units[participants] = alloc
        return units, result

    # -- the result ---------------------------------------------------------------------------
    def _result(self, final: NDArray[np.int64], outcome: tuple[NDArray[np.int64], Apportionment] | None,
                participants: NDArray[np.int64], denied_round: NDArray[np.int64], denied_by: dict[int, str],
                minimum: NDArray[np.int64] | None) -> Allocation:
        policy, ids = self.policy, self.ids
        records: list[ExceptionRecord] = []
        for rule, hits in self.events:
            records.extend(ExceptionRecord(ids[k], rule.id, rule.action, rule.reason, rule.review)
                           for k in hits.tolist())
        if self.denials:
            assert policy.minimum is not None
            reason = f"allocation below the minimum ({policy.minimum.describe()})"
            for accounts in self.denials:
                records.extend(ExceptionRecord(ids[k], "minimum", "deny", reason, False) for k in accounts.tolist())
        order = {rule.id: rule.index for rule in policy.rules}
        records.sort(key=lambda r: (r.account, order.get(r.rule, len(policy.rules)), r.action))
        intended = self.intended.tolist()
        columns = Columns(ids, intended, final.tolist())
        details = _details(self, intended, participants, outcome, denied_round, denied_by, minimum)
        return Allocation(
            policy=policy,
            order_id=self.trade.order.id,
            method=policy.method,
            filled=Fraction(self.ctx.filled),
            average_price=self.ctx.average_price,
            columns=columns,
            details=details,
            own_prices=None,
            exceptions=tuple(records),
            rotation_before=None,
            rotation_after=None,
            rotation_order=(),
            lot=Fraction(policy.lot),
            notes=tuple(self.notes),
            scale=self.scale,
        )


def _details(book: _Book, intended: list[int], participants: NDArray[np.int64],
             outcome: tuple[NDArray[np.int64], Apportionment] | None, denied_round: NDArray[np.int64],
             denied_by: dict[int, str], minimum: NDArray[np.int64] | None
             ) -> Callable[[], tuple[list[AccountState], Outcome]]:
    """The per-account records ``fairalloc.allocate`` would have built, on demand (``--explain``)."""

    def build() -> tuple[list[AccountState], Outcome]:
        ids, n = book.ids, book.n
        rules: list[list[str] | None] = [None] * n
        for rule, hits in book.events:
            for k in hits.tolist():
                fired = rules[k]
                if fired is None:
                    rules[k] = [rule.id]
                else:
                    fired.append(rule.id)
        caps = _cap_list(book.caps)
        excluded = book.excluded.tolist()
        weights, ranks, rounds = book.weights.tolist(), book.rank.tolist(), denied_round.tolist()
        texts: list[str | None] = [None] * n
        if book.weight_values is not None:
            texts = [None if value is None else decimal_text(Decimal(value)) for value in book.weight_values]
        minimums = minimum.tolist() if minimum is not None else None
        states = [
            AccountState(
                ids[k], book.index[k], intended[k], caps[k], weight=weights[k], weight_text=texts[k],
                rank=ranks[k], rules=rules[k],
                excluded=excluded[k], denied_round=rounds[k] or None, denied_by=denied_by.get(k),
                minimum=None if minimums is None or excluded[k] else minimums[k],
            )
            for k in range(n)
        ]
        if outcome is None:
            return states, Outcome({})
        units, apportionment = outcome
        members = participants.tolist()
        allocated = units[participants].tolist()
        return states, Outcome(
            {ids[k]: u for k, u in zip(members, allocated)},
            apportionment=apportionment,
            positions={ids[k]: i for i, k in enumerate(members)},
        )

    return build


def _cap_list(caps: NDArray[np.int64]) -> list[int | None]:
    """Caps as the list functions and account records take them (``None``: no cap)."""
    return [None if cap == NO_CAP else cap for cap in caps.tolist()]


def _bounded(value: int) -> None:
    if value >= SAFE:
        raise Unsupported("a quantity beyond int64")


def _attribute_column(attribute: Attribute, values: list[Any]) -> list[Any] | None:
    """``values`` with defaults filled in, if every one is already of the declared type; else ``None``
    (a conversion, a missing value or a wrong one: the general path converts or reports it)."""
    kinds = set(map(type, values))
    if type(None) in kinds:
        if not attribute.has_default:
            return None
        default = attribute.default
        values = [default if value is None else value for value in values]
        kinds = set(map(type, values))
    if attribute.kind == "string":
        if kinds != {str} or (attribute.values is not None and not set(values) <= set(attribute.values)):
            return None
    elif attribute.kind == "boolean":
        if kinds != {bool}:
            return None
    elif attribute.kind == "number":
        if kinds <= {int}:
            return values
        if not kinds <= {int, Decimal, str}:
            return None
        numbers: list[Any] = []
        for value in values:  # as fairalloc.context converts a number attribute
            if type(value) is str:
                try:
                    value = Decimal(value)
                except InvalidOperation:
                    return None
            if type(value) is Decimal and not value.is_finite():
                return None
            numbers.append(value)
        return numbers
    else:
        return None
    return values


