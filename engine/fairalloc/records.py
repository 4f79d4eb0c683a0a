"""The record book: one trade's accounts as one expression record each, in plain lists.

Every policy runs on this book; small blocks run on it because it is the fastest for them (no
arrays to set up), and rotation, price/time and expressions without a columnar form run on it at
any size. Errors in the trade's data are reported here, with the JSON pointer of the account.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

from fairalloc.book import Book, Ledger, Shares
from fairalloc.context import TradeContext, build_context
from fairalloc.errors import Diagnostic, InputError, Location, RefusedError, pointer
from fairalloc.expressions import CompiledExpression, ExpressionRuntimeError
from fairalloc.numbers import as_decimal, decimal_text, to_units, units_scale
from fairalloc.options import Backend, MinimumKind, RoundingMethod
from fairalloc.plan import Policy, Rule
from fairalloc.rounding import Apportionment, at_caps as _at_caps, largest_remainder, quota_method
from fairalloc.trade import Trade

Positions = list[int]
Units = list[int]
_LATEST = dt.datetime.max.replace(tzinfo=dt.timezone.utc)


class RecordBook(Book[Positions, Units]):
    """Accounts by position (account-id order), each field a list."""

    backend = Backend.RECORDS

    def __init__(self, policy: Policy, trade: Trade, ctx: TradeContext, file: str) -> None:
        self.policy, self.trade, self.file = policy, trade, file
        self.ctx = build_context(policy, trade, file, ctx)
        columns = trade.statement.columns
        given = columns.intended
        self.scale = units_scale([policy.lot, *(f.quantity for f in trade.fills), *([] if columns.whole else given)])
        self.lot = to_units(policy.lot, self.scale)
        self.filled = to_units(ctx.filled, self.scale)
        ids = columns.ids
        self.index = list(columns.id_order)
        if columns.in_id_order:  # the statement's order is the book's
            self.ids, self.records = list(ids), self.ctx.accounts
            self.intended = list(given) if self.scale == 1 and columns.whole else [
                to_units(quantity, self.scale) for quantity in given]
        else:
            self.ids = [ids[i] for i in self.index]
            self.records = [self.ctx.accounts[i] for i in self.index]
            self.intended = [to_units(given[i], self.scale) for i in self.index]
        n = len(ids)
        self.caps: list[int | None] = [None] * n if policy.allow_above_intended else list(self.intended)
        self.weights = [0] * n
        self.weight_values: list[int | Decimal | None] = [None] * n  # the weight expression's values
        self.ranks = list(range(n))
        self.minimums: list[int | None] | None = None
        self.tier_values: list[int | None] | None = None

    # -- selections -------------------------------------------------------------------------
    def everyone(self) -> Positions:
        return list(range(len(self.ids)))

    def nobody(self) -> Positions:
        return []

    def size(self, accounts: Positions) -> int:
        return len(accounts)

    def without(self, accounts: Positions, removed: Positions) -> Positions:
        if not removed:
            return accounts
        gone = set(removed)
        return [k for k in accounts if k not in gone]

    def union(self, first: Positions, second: Positions) -> Positions:
        if not first or not second:
            return second or first
        return sorted(set(first) | set(second))

    def positions(self, accounts: Positions) -> list[int]:
        return accounts

    # -- evaluation -------------------------------------------------------------------------
    def quantity(self, units: int) -> int | Decimal:
        """Integer units as the quantity expressions read (an int when whole)."""
        if self.scale == 1:
            return units
        value = Fraction(units, self.scale)
        return value.numerator if value.denominator == 1 else as_decimal(value)

    def evaluate(self, expr: CompiledExpression, k: int, units: int | None, where: str) -> Any:
        """``expr`` for the account at position ``k``; a runtime error names the account."""
        c = self.ctx
        amount = None if units is None else self.quantity(units)
        try:
            return expr.fn(c.order, c.security, c.statement, c.fill, self.records[k], amount)
        except ExpressionRuntimeError as error:
            detail = Diagnostic("expression-runtime", f"while evaluating {where} for account '{self.ids[k]}'",
                                self.location(k))
            raise InputError(error.diagnostics + [detail]) from None

    def location(self, k: int) -> Location:
        return Location(self.file, pointer=pointer(("statement", "accounts", self.index[k])))

    def fires(self, rule: Rule, among: Positions, shares: Shares[Positions, Units] | None) -> Positions:
        # once per rule and account: the compiled closure is called directly; should it fail, the
        # accounts are evaluated one by one to say which account's data made it fail
        fn = rule.when.fn
        c, records = self.ctx, self.records
        order, security, statement, fill = c.order, c.security, c.statement, c.fill
        try:
            if shares is None:
                return [k for k in among if fn(order, security, statement, fill, records[k], None) is True]
            units, amount = shares.units, self.quantity
            if self.scale == 1:  # units are the quantities expressions read
                return [k for k in among if fn(order, security, statement, fill, records[k], units[k]) is True]
            return [k for k in among if fn(order, security, statement, fill, records[k], amount(units[k])) is True]
        except ExpressionRuntimeError:
            for k in among:
                self.evaluate(rule.when, k, None if shares is None else shares.units[k], f"rule '{rule.id}'")
            raise

    # -- eligibility, weights, minimums ---------------------------------------------------------
    def rank(self, sign: int) -> None:
        if sign:
            intended = self.intended
            for position, k in enumerate(sorted(range(len(intended)), key=lambda k: (sign * intended[k], k))):
                self.ranks[k] = position

    def cap(self, rule: Rule, accounts: Positions) -> None:
        limit = rule.quantity
        assert limit is not None  # the compiler requires a quantity for action 'cap'
        if isinstance(limit, Decimal):  # one cap for all: in units once
            if accounts:
                units = max(0, math.floor(Fraction(limit) * self.scale))
                caps = self.caps
                for k in accounts:
                    cap = caps[k]
                    caps[k] = units if cap is None else min(cap, units)
            return
        for k in accounts:
            value = self.evaluate(limit, k, None, f"the quantity of rule '{rule.id}'")
            if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
                raise InputError(Diagnostic(
                    "cap-invalid", f"rule '{rule.id}' gives account '{self.ids[k]}' a cap of {value!r}",
                    self.location(k)))
            units = max(0, math.floor(Fraction(value) * self.scale))
            cap = self.caps[k]
            self.caps[k] = units if cap is None else min(cap, units)

    def weigh(self, eligible: Positions) -> None:
        expr = self.policy.weight
        if expr is None:
            equal = self.policy.equal_weights
            if len(eligible) == len(self.ids):  # everyone
                self.weights = [1] * len(self.ids) if equal else list(self.intended)
                return
            for k in eligible:
                self.weights[k] = 1 if equal else self.intended[k]
            return
        # every account's weight in one loop; should one fail, account by account, so that the
        # first problem of either kind is the one reported
        c, records, fn = self.ctx, self.records, expr.fn
        try:
            raw: list[Any] = [fn(c.order, c.security, c.statement, c.fill, records[k], None) for k in eligible]
        except ExpressionRuntimeError:
            raw = []
            for k in eligible:
                raw.append(self.evaluate(expr, k, None, "the pro-rata weight"))
                self.check_weight(k, raw[-1])
        for k, value in zip(eligible, raw):
            self.check_weight(k, value)
        scale = units_scale(raw)  # an int is its own Decimal here: the same scale, units and text
        for k, value in zip(eligible, raw):
            self.weights[k] = to_units(value, scale)
            self.weight_values[k] = value

    def check_weight(self, k: int, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or value < 0:
            raise InputError(Diagnostic(
                "weight-invalid",
                f"the pro-rata weight of account '{self.ids[k]}' is {value!r}; weights must be numbers >= 0",
                self.location(k)))

    def set_minimums(self, eligible: Positions) -> None:
        minimum = self.policy.minimum
        assert minimum is not None
        minimums: list[int | None] = [None] * len(self.ids)
        by_value = minimum.value_units(self.ctx.average_price, self.scale)
        for k in eligible:
            if minimum.kind is MinimumKind.VALUE:
                minimums[k] = by_value
            elif minimum.kind is MinimumKind.ABSOLUTE:
                assert minimum.absolute is not None
                minimums[k] = math.ceil(Fraction(minimum.absolute) * self.scale)
            elif minimum.kind is MinimumKind.RELATIVE_TO_INTENDED:
                assert minimum.relative is not None
                minimums[k] = math.ceil(self.intended[k] * Fraction(minimum.relative))
            else:
                assert minimum.expression is not None
                value = self.evaluate(minimum.expression, k, None, "minimum.expression")
                if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
                    raise InputError(Diagnostic(
                        "minimum-invalid", f"the minimum for '{self.ids[k]}' is {value!r}, not a number",
                        self.location(k)))
                minimums[k] = math.ceil(Fraction(value) * self.scale)
            minimums[k] = max(minimums[k] or 0, by_value)
        self.minimums = minimums

    def below_minimum(self, members: Positions, units: Units) -> Positions:
        minimums = self.minimums
        assert minimums is not None
        return [k for k in members if 0 < units[k] < (minimums[k] or 0)]

    def can_hold(self, accounts: Positions) -> bool:
        if not accounts:
            return False
        room = self.room([k for k in accounts if self.weights[k] > 0 or self.caps[k] is None])
        return room is None or room >= self.filled

    def room(self, accounts: Positions) -> int | None:
        caps = [self.caps[k] for k in accounts]
        return None if None in caps else sum(cap or 0 for cap in caps)

    # -- priority tiers -----------------------------------------------------------------------
    def tiers(self, members: Positions) -> list[tuple[int, Positions]]:
        expr = self.policy.priority
        assert expr is not None
        if self.tier_values is None:
            self.tier_values = [None] * len(self.ids)
        values = self.tier_values
        groups: dict[int, Positions] = {}
        for k in members:
            tier = values[k]
            if tier is None:
                got = self.evaluate(expr, k, None, "pro_rata.priority")
                if isinstance(got, bool) or not isinstance(got, (int, Decimal)) or got != int(got):
                    raise InputError(Diagnostic(
                        "priority-invalid",
                        f"the priority of account '{self.ids[k]}' is {got!r}; a tier must be an integer",
                        self.location(k)))
                tier = values[k] = int(got)
            groups.setdefault(tier, []).append(k)
        return sorted(groups.items())

    def tier_room(self, members: Positions) -> int | None:
        return self.room([k for k in members if self.weights[k] > 0])

    def to_caps(self, members: Positions) -> Shares[Positions, Units]:
        units = [0] * len(self.ids)
        for k in members:
            if self.weights[k] > 0:
                units[k] = self.caps[k] or 0
        return Shares(units, members, _at_caps([units[k] for k in members], self.lot))

    def combine(self, parts: list[Shares[Positions, Units]]) -> Units:
        units = [0] * len(self.ids)
        for part in parts:
            given = part.units
            for k in part.members:
                units[k] = given[k]
        return units

    def holds(self, accounts: Positions, position: int) -> bool:
        at = bisect.bisect_left(accounts, position)
        return at < len(accounts) and accounts[at] == position

    def give(self, shares: Shares[Positions, Units], position: int, units: int) -> bool:
        cap = self.caps[position]
        if cap is not None and cap - shares.units[position] < units:
            return False
        shares.units[position] += units
        return True

    # -- methods ------------------------------------------------------------------------------
    def odd_key(self, sign: int) -> list[int] | None:
        return [sign * units for units in self.intended] if sign else None

    def apportion(self, members: Positions, method: RoundingMethod, odd_key: list[int] | None,
                  total: int | None = None, advantage: list[Fraction] | None = None) -> Shares[Positions, Units]:
        if len(members) == len(self.ids):  # everyone (members are distinct positions): the book's own lists
            weights, caps, ranks = self.weights, self.caps, self.ranks
        else:
            weights = [self.weights[k] for k in members]
            caps = [self.caps[k] for k in members]
            ranks = [self.ranks[k] for k in members]
        amount = self.filled if total is None else total
        result: Apportionment
        if method is RoundingMethod.QUOTA:
            result = quota_method(amount, weights, caps, self.lot, ranks)
        else:
            keys = None if odd_key is None else [odd_key[k] for k in members]
            owed = None if advantage is None else [advantage[k] for k in members]
            result = largest_remainder(amount, weights, caps, self.lot, ranks, keys, owed)
        if len(members) == len(self.ids):
            return Shares(list(result.allocations), members, result)
        units = [0] * len(self.ids)
        for k, got in zip(members, result.allocations):
            units[k] = got
        return Shares(units, members, result)

    def rotate(self, members: Positions, order: dict[int, int]) -> Shares[Positions, Units]:
        """Fill accounts in full, one after another, in rotation ``order`` (position -> place).

        Each account takes its cap rounded down to a whole lot, the account at which the fill
        runs out everything left. Should whole lots leave part of the fill over — caps that are
        not whole lots — that part goes, in rotation order, to the accounts with room up to their
        caps: a full fill gives every account its cap, as pro-rata does.
        """
        left, lot = self.filled, self.lot
        units = [0] * len(self.ids)
        ordered = sorted(members, key=order.__getitem__)
        for k in ordered:
            cap = self.caps[k]
            take = left if cap is None or left <= cap else cap - cap % lot
            units[k] = take
            left -= take
        for k in ordered:
            if not left:
                break
            cap = self.caps[k]
            take = left if cap is None else min(left, cap - units[k])
            units[k] += take
            left -= take
        return Shares(units, members)

    def price_time(self, members: Positions) -> Shares[Positions, Units]:
        """Each fill, in execution order, to the best-ranked account still short whose limit it meets."""
        trade, caps = self.trade, self.caps
        side = trade.order.side
        unlimited_first = self.policy.unlimited_first
        entries = trade.statement.accounts

        def key(k: int) -> tuple[Any, ...]:
            entry = entries[self.index[k]]
            limit = entry.limit_price
            if limit is None:
                price_key: tuple[int, Decimal] = (0 if unlimited_first else 2, Decimal(0))
            else:
                price_key = (1, limit.copy_negate() if side == "buy" else limit)
            return (price_key, entry.received_at or _LATEST, k)

        ranked = sorted(members, key=key)
        units = [0] * len(self.ids)
        value = {k: Fraction(0) for k in members}
        taken: dict[int, list[tuple[str, int]]] = {k: [] for k in members}
        fills = sorted(enumerate(trade.fills), key=lambda pair: (pair[1].executed_at, pair[1].id))
        for index, fill in fills:
            left = to_units(fill.quantity, self.scale)
            for k in ranked:
                if not left:
                    break
                limit = entries[self.index[k]].limit_price
                if limit is not None and ((side == "buy" and fill.price > limit) or (side != "buy" and fill.price < limit)):
                    continue
                cap = caps[k]
                take = min(left, left if cap is None else cap - units[k])
                if take > 0:
                    units[k] += take
                    value[k] += Fraction(take) * Fraction(fill.price)
                    taken[k].append((fill.id, take))
                    left -= take
            if left:
                raise RefusedError(Diagnostic(
                    "fill-unallocatable",
                    f"fill '{fill.id}' at {fill.price} cannot be placed: no account still short accepts that price",
                    Location(self.file, pointer=pointer(("fills", index))),
                    "the statement's limits and intended quantities must be able to absorb every fill",
                ))
        prices = {k: value[k] / units[k] for k in members if units[k]}
        return Shares(units, members, prices=prices, fills=taken)

    def sort_keys(self, expr: CompiledExpression, members: Positions) -> dict[str, Any]:
        """``rotation.order_by`` for each member, by account id."""
        return {self.ids[k]: self.evaluate(expr, k, None, "rotation.order_by") for k in members}

    # -- results ------------------------------------------------------------------------------
    def nothing(self) -> Shares[Positions, Units]:
        return Shares([0] * len(self.ids), [])

    def allocated(self, units: Units) -> list[int]:
        return units

    def total(self, units: Units) -> int:
        return sum(units)

    def intended_units(self) -> list[int]:
        return self.intended

    def ledger(self) -> Ledger:
        texts = [None if value is None else decimal_text(value) for value in self.weight_values]
        return Ledger(self.index, self.intended, self.caps, self.weights, texts, self.ranks,
                      self.minimums, self.tier_values)
