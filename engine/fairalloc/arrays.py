"""The array book: one trade's accounts as one numpy array per field, for large pro-rata blocks.

A block of 100,000 accounts spends most of its time on per-account Python objects: one context
record and one closure call per rule and account. This book holds each account field as a column
and evaluates each rule once over all accounts with the columnar forms the policy was compiled
with (:class:`fairalloc.arrayform.ArrayForm`); the records behind ``--explain`` are built only when
asked for. Positions are int64 arrays, units int64 arrays; every integer is kept below
:data:`~fairalloc.expressions.vector.SAFE` so no product leaves int64.

This book never reports an error in the trade's data: where it cannot evaluate exactly — a value
that needs converting or is missing, a number beyond int64, a condition that gives no boolean — it
raises :class:`~fairalloc.arrayform.Declined` and the trade runs on the record book, which reports
any error with its location. :func:`open_arrays` returns the :class:`~fairalloc.arrayform.Decline`
instead of a book when the trade's attributes already say so.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from fairalloc.arrayform import ArrayForm, Decline, Declined, Why
from fairalloc.book import Book, Ledger, Shares
from fairalloc.context import TradeContext
from fairalloc.expressions.vector import SAFE, Coded, Frame, Rational, Unsupported
from fairalloc.numbers import decimal_text, to_units, units_scale
from fairalloc.options import Backend, MinimumKind, RoundingMethod
from fairalloc.plan import Attribute, Policy, Rule
from fairalloc.rounding import (
    NO_CAP,
    Apportionment,
    at_caps,
    largest_remainder,
    largest_remainder_array,
    quota_method,
)
from fairalloc.trade import AttributeColumn, Trade

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Array = NDArray[np.int64]
else:
    Array = Any


def open_arrays(policy: Policy, form: ArrayForm, trade: Trade, ctx: TradeContext) -> ArrayBook | Decline:
    """The array book of ``trade``, or why its data keep it off arrays."""
    import numpy as np

    columns = trade.statement.columns
    raw: dict[str, tuple[str, list[Any], AttributeColumn | None]] = {}
    for attribute in policy.account_attributes:
        column = columns.attribute(attribute.name)
        values = _attribute_column(attribute, column)
        if values is None:
            return Decline(Why.DATA, f"account.{attribute.name} needs converting or is missing")
        # the column's own arrays serve while no default had to be filled in
        raw[attribute.name] = (attribute.kind, values, column if values is column.values else None)
    quantities = columns.intended
    scale = units_scale([policy.lot, *(fill.quantity for fill in trade.fills)])
    if not columns.whole:
        scale = max(scale, units_scale(quantities))
    if scale > 1 or not columns.whole:
        quantities = [to_units(q, scale) for q in quantities]
        if max(quantities) >= SAFE:
            return Decline(Why.DATA, "an intended quantity beyond int64")
        intended = np.asarray(quantities, dtype=np.int64)
    elif columns.units is None or columns.most >= SAFE:
        return Decline(Why.DATA, "an intended quantity beyond int64")
    else:
        intended = _frozen(np.frombuffer(columns.units, dtype=np.int64))
    ids = columns.ids
    given = cast("list[int]", columns.intended) if columns.whole and scale == 1 else None
    if columns.in_id_order:
        return ArrayBook(policy, form, ctx, ids, columns.id_order, intended, scale, raw, given)
    index = list(columns.id_order)
    return ArrayBook(policy, form, ctx, [ids[i] for i in index], index, intended[index], scale, raw, given)


def _frozen(array: NDArray[Any]) -> NDArray[Any]:
    """``array`` made read-only: a view of a trade's column, which no allocation may change."""
    array.flags.writeable = False
    return array


class ArrayBook(Book[Array, Array]):
    """Accounts by position (account-id order), each field an array."""

    backend = Backend.ARRAYS

    def __init__(self, policy: Policy, form: ArrayForm, ctx: TradeContext, ids: list[str], index: Sequence[int],
                 intended: Array, scale: int, raw: dict[str, tuple[str, list[Any], AttributeColumn | None]],
                 given: list[int] | None) -> None:
        import numpy as np

        self.policy, self.form, self.ctx = policy, form, ctx
        self.ids, self.index, self.intended, self.scale = ids, index, intended, scale
        self.given = given  # the intended quantities in units as the statement gives them (None: converted)
        # declared attributes: (kind, values in statement order, of that kind, the statement's
        # column when those are its values)
        self.raw = raw
        self.n = n = len(ids)
        # statement positions in account-id order; None: the statement is in that order
        self.order: Array | None = None if isinstance(index, range) else np.asarray(index, dtype=np.int64)
        self.cache: dict[str, Any] = {}
        self.lot = int(Fraction(policy.lot) * scale)
        self.filled = int(Fraction(ctx.filled) * scale)
        self.caps = np.full(n, NO_CAP, dtype=np.int64) if policy.allow_above_intended else intended.copy()
        self.weights = np.zeros(n, dtype=np.int64)
        self.weight_values: list[Any] | None = None  # a weight attribute's values (None: not eligible)
        self.ranks = np.arange(n, dtype=np.int64)
        self.ranked = False  # whether a tie-break ranks the accounts otherwise than by position
        self.minimums: Array | None = None
        self.tier_column: Array | None = None
        self.eligible = np.zeros(n, dtype=bool)

    # -- selections -------------------------------------------------------------------------
    def everyone(self) -> Array:
        import numpy as np

        return np.arange(self.n, dtype=np.int64)

    def nobody(self) -> Array:
        import numpy as np

        return np.zeros(0, dtype=np.int64)

    def size(self, accounts: Array) -> int:
        return len(accounts)

    def without(self, accounts: Array, removed: Array) -> Array:
        import numpy as np

        if not len(removed):
            return accounts
        keep = np.ones(self.n, dtype=bool)
        keep[removed] = False
        return accounts[keep[accounts]]

    def union(self, first: Array, second: Array) -> Array:
        import numpy as np

        if not len(first) or not len(second):
            return second if len(second) else first
        return np.union1d(first, second)

    def positions(self, accounts: Array) -> list[int]:
        positions: list[int] = accounts.tolist()
        return positions

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
            kind, values, column = self.raw[name]
            if kind == "boolean":
                flags = None if column is None else column.flags
                value = (np.asarray(values, dtype=bool) if flags is None
                         else _frozen(np.frombuffer(flags, dtype=np.int8).view(bool)))
            elif kind == "number":
                scale = units_scale(values)
                units = values if scale == 1 else [to_units(number, scale) for number in values]
                if max(map(abs, units)) >= SAFE:
                    raise Unsupported(f"account.{name} leaves int64")
                value = Rational(np.asarray(units, dtype=np.int64), scale)
            else:  # strings: dictionary-coded once per trade, when it was read
                if column is None or column.codes is None or column.strings is None:
                    value = Coded.of(values)
                else:
                    value = Coded(_frozen(np.frombuffer(column.codes, dtype=np.int32)), column.strings)
            value = self.in_id_order(value)
        else:
            raise Unsupported(f"account.{name} has no column")
        self.cache[name] = value
        return value

    def in_id_order(self, value: Any) -> Any:
        """A column in statement order (an array, a :class:`Rational` or :class:`Coded`) in account-id order."""
        order = self.order
        if order is None:
            return value
        if isinstance(value, Rational):
            return Rational(value.numerators[order], value.denominator)
        if isinstance(value, Coded):
            return Coded(value.codes[order], value.values)
        return value[order]

    def frame(self, units: Array | None) -> Frame:
        """What a vectorised expression reads; ``units``: the provisional allocation, if any."""
        c = self.ctx
        roots = {"order": c.order, "security": c.security, "statement": c.statement, "fill": c.fill}
        allocation = None if units is None else Rational(units, self.scale)
        return Frame(roots, self.column, allocation)

    def fires(self, rule: Rule, among: Array, shares: Shares[Array, Array] | None) -> Array:
        try:
            value = self.form.conditions[rule.id](self.frame(None if shares is None else shares.units))
        except Unsupported as unsupported:
            raise Declined(Decline(Why.DATA, f"rule '{rule.id}': {unsupported}")) from None
        if type(value) is bool:
            return among if value else among[:0]
        if hasattr(value, "dtype") and value.dtype == bool:
            hits: Array = among[value[among]]
            return hits
        raise Declined(Decline(Why.DATA, f"rule '{rule.id}' does not give a boolean for every account"))

    # -- eligibility, weights, minimums ---------------------------------------------------------
    def rank(self, sign: int) -> None:
        import numpy as np

        if sign:
            ordered = np.lexsort((np.arange(self.n), sign * self.intended))
            self.ranks[ordered] = np.arange(self.n)
            self.ranked = True

    def cap(self, rule: Rule, accounts: Array) -> None:
        import numpy as np

        quantity = self.form.caps[rule.id]
        if not isinstance(quantity, Decimal):
            try:
                value = quantity(self.frame(None))
            except Unsupported as unsupported:
                raise Declined(Decline(Why.DATA, f"the quantity of rule '{rule.id}': {unsupported}")) from None
            if isinstance(value, Rational):
                _bounded(value.top * self.scale, f"the quantity of rule '{rule.id}'")
                units = np.maximum(0, (value.numerators[accounts] * self.scale) // value.denominator)
                self.caps[accounts] = np.minimum(self.caps[accounts], units)
                return
            if type(value) is not int and type(value) is not Decimal:
                raise Declined(Decline(Why.DATA, f"rule '{rule.id}' gives a cap that is not a number"))
            quantity = Decimal(value)
        cap = max(0, int(Fraction(quantity) * self.scale // 1))
        _bounded(cap, f"the quantity of rule '{rule.id}'")
        self.caps[accounts] = np.minimum(self.caps[accounts], cap)

    def weigh(self, eligible: Array) -> None:
        """Weights in integer units: the intended quantity, or a number attribute scaled by the
        power of ten that makes every eligible account's value whole (its text kept for the
        explanation)."""
        import numpy as np

        self.eligible[eligible] = True
        name = self.form.weight
        if name is None:
            self.weights[eligible] = 1 if self.policy.equal_weights else self.intended[eligible]
            return
        _, values, _ = self.raw[name]
        taking = self.eligible.tolist()
        chosen = [values[i] for i, take in zip(self.index, taking) if take]
        if chosen and min(chosen) < 0:
            raise Declined(Decline(Why.DATA, "a negative weight"))
        scale = units_scale(chosen)
        units = [to_units(values[i], scale) if take else 0 for i, take in zip(self.index, taking)]
        if units and max(units) >= SAFE:
            raise Declined(Decline(Why.DATA, "a weight beyond int64"))
        self.weight_values = [values[i] if take else None for i, take in zip(self.index, taking)]
        self.weights = np.asarray(units, dtype=np.int64)

    def set_minimums(self, eligible: Array) -> None:
        import numpy as np

        minimum = self.policy.minimum
        assert minimum is not None
        by_value = minimum.value_units(self.ctx.average_price, self.scale)
        _bounded(by_value, "the minimum by value")
        if minimum.kind is MinimumKind.VALUE:
            self.minimums = np.full(self.n, by_value, dtype=np.int64)
            return
        if minimum.kind is MinimumKind.ABSOLUTE:
            assert minimum.absolute is not None
            value = -((-Fraction(minimum.absolute) * self.scale) // 1)
            _bounded(value, "the minimum")
            self.minimums = np.full(self.n, max(value, by_value), dtype=np.int64)
            return
        assert minimum.relative is not None  # the array form covers no other kind
        ratio = Fraction(minimum.relative)
        _bounded(int(self.intended.max(initial=0)) * ratio.numerator, "the minimum")
        _bounded(ratio.denominator, "the minimum")
        self.minimums = np.maximum(-((-self.intended * ratio.numerator) // ratio.denominator), by_value)

    def below_minimum(self, members: Array, units: Array) -> Array:
        assert self.minimums is not None
        got = units[members]
        low: Array = members[(got > 0) & (got < self.minimums[members])]
        return low

    def can_hold(self, accounts: Array) -> bool:
        if not len(accounts):
            return False
        counted = accounts[(self.weights[accounts] > 0) | (self.caps[accounts] == NO_CAP)]
        room = self.room(counted)
        return room is None or room >= self.filled

    def room(self, accounts: Array) -> int | None:
        caps = self.caps[accounts]
        return None if (caps == NO_CAP).any() else int(caps.sum(dtype=object))

    # -- priority tiers -----------------------------------------------------------------------
    def tiers(self, members: Array) -> list[tuple[int, Array]]:
        """Tiers from the priority's columnar form, evaluated once; a tier that is not an integer
        sends the trade to the record book, which reports it with the account."""
        import numpy as np

        if self.tier_column is None:
            assert self.form.priority is not None
            try:
                value = self.form.priority(self.frame(None))
            except Unsupported as unsupported:
                raise Declined(Decline(Why.DATA, f"pro_rata.priority: {unsupported}")) from None
            if isinstance(value, Rational):
                if (value.numerators % value.denominator).any():
                    raise Declined(Decline(Why.DATA, "a priority that is not an integer"))
                self.tier_column = value.numerators // value.denominator
            elif type(value) in (int, Decimal) and value == int(value):
                self.tier_column = np.full(self.n, int(value), dtype=np.int64)
            else:
                raise Declined(Decline(Why.DATA, "a priority that is not an integer"))
        tiers = self.tier_column[members]
        order = np.argsort(tiers, kind="stable")  # stable: each tier keeps position order
        ranked, values = members[order], tiers[order]
        starts = np.flatnonzero(values[1:] != values[:-1]) + 1
        groups = np.split(ranked, starts)
        firsts = values[np.concatenate(([0], starts))].tolist() if len(values) else []
        return list(zip(firsts, groups))

    def tier_room(self, members: Array) -> int | None:
        return self.room(members[self.weights[members] > 0])

    def to_caps(self, members: Array) -> Shares[Array, Array]:
        import numpy as np

        units = np.zeros(self.n, dtype=np.int64)
        taking = members[self.weights[members] > 0]
        units[taking] = self.caps[taking]
        return Shares(units, members, at_caps(units[members].tolist(), self.lot))

    def combine(self, parts: list[Shares[Array, Array]]) -> Array:
        import numpy as np

        units = np.zeros(self.n, dtype=np.int64)
        for part in parts:
            units[part.members] = part.units[part.members]
        return units

    def holds(self, accounts: Array, position: int) -> bool:
        import numpy as np

        at = int(np.searchsorted(accounts, position))
        return at < len(accounts) and int(accounts[at]) == position

    def give(self, shares: Shares[Array, Array], position: int, units: int) -> bool:
        cap = int(self.caps[position])
        if cap != NO_CAP and cap - int(shares.units[position]) < units:
            return False
        shares.units[position] += units
        return True

    # -- methods ------------------------------------------------------------------------------
    def odd_key(self, sign: int) -> list[int] | None:
        return (sign * self.intended).tolist() if sign else None

    def apportion(self, members: Array, method: RoundingMethod, odd_key: list[int] | None,
                  total: int | None = None, advantage: list[Fraction] | None = None) -> Shares[Array, Array]:
        import numpy as np

        weights, caps = self.weights[members], self.caps[members]
        ranks = self.ranks[members] if self.ranked else members  # by position, a position is its rank
        amount = self.filled if total is None else total
        result: Apportionment
        if method is RoundingMethod.QUOTA:
            result = quota_method(amount, weights.tolist(), _cap_list(caps), self.lot, ranks.tolist())
            allocations = np.asarray(result.allocations, dtype=np.int64)
        else:
            keys = None if odd_key is None else np.asarray(odd_key, dtype=np.int64)[members]
            owed = None if advantage is None else [advantage[k] for k in members.tolist()]
            arrays = largest_remainder_array(amount, weights, caps, self.lot, ranks, keys, owed)
            if arrays is None:
                result = largest_remainder(amount, weights.tolist(), _cap_list(caps), self.lot, ranks.tolist(),
                                           None if keys is None else keys.tolist(), owed)
                allocations = np.asarray(result.allocations, dtype=np.int64)
            else:
                allocations, result = arrays
        units = np.zeros(self.n, dtype=np.int64)
        units[members] = allocations
        return Shares(units, members, result)

    # -- results ------------------------------------------------------------------------------
    def nothing(self) -> Shares[Array, Array]:
        import numpy as np

        return Shares(np.zeros(self.n, dtype=np.int64), self.nobody())

    def allocated(self, units: Array) -> list[int]:
        allocated: list[int] = units.tolist()
        return allocated

    def total(self, units: Array) -> int:
        return int(units.sum())

    def intended_units(self) -> list[int]:
        if self.order is None and self.given is not None:
            return self.given  # the statement's own list: in id order, whole, in units already
        intended: list[int] = self.intended.tolist()
        return intended

    def ledger(self) -> Ledger:
        texts: list[str | None] = [None] * self.n
        if self.weight_values is not None:
            texts = [None if value is None else decimal_text(Decimal(value)) for value in self.weight_values]
        eligible = self.eligible.tolist()
        minimums = None
        if self.minimums is not None:
            minimums = [value if take else None for value, take in zip(self.minimums.tolist(), eligible)]
        tiers = None
        if self.tier_column is not None:
            tiers = [value if take else None for value, take in zip(self.tier_column.tolist(), eligible)]
        return Ledger(list(self.index), self.intended.tolist(), _cap_list(self.caps), self.weights.tolist(), texts,
                      self.ranks.tolist(), minimums, tiers)


def _cap_list(caps: Array) -> list[int | None]:
    """Caps as the list functions and the explanation take them (``None``: no cap)."""
    return [None if cap == NO_CAP else cap for cap in caps.tolist()]


def _bounded(value: int, what: str) -> None:
    if value >= SAFE:
        raise Declined(Decline(Why.DATA, f"{what} leaves int64"))


def _attribute_column(attribute: Attribute, column: AttributeColumn) -> list[Any] | None:
    """The column's values with defaults filled in, if every one is already of the declared type;
    else ``None`` (a conversion, a missing value or a wrong one: the record book converts or
    reports it). Without a default to fill in, the values are the column's own."""
    values, kinds, strings = column.values, set(column.kinds), column.strings
    if type(None) in kinds:
        if not attribute.has_default:
            return None
        default = attribute.default
        values = [default if value is None else value for value in values]
        kinds = set(map(type, values))
        strings = None
    if attribute.kind == "string":
        if kinds != {str}:
            return None
        if attribute.values is not None and not set(values if strings is None else strings) <= set(attribute.values):
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
