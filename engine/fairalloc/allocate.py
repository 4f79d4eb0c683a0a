"""Stage 6 — allocate: execute a compiled policy against one trade's fills.

``allocate`` is a pure function of (policy, trade, rotation state): no clock, no randomness, no
dependence on the order of accounts or fills in the input. It runs in this fixed order, which
``docs/policy-language.md`` documents for compliance authors:

1. controls — refuse trades the playbook forbids allocating (``fairalloc.controls``);
2. governance — the policy must be in effect on the trade date and ``applies_to`` must hold;
3. eligibility — ``exclude`` rules remove accounts; ``cap`` rules and the intended quantity cap them;
4. rounds — the method allocates the filled quantity among the participating accounts; accounts
   for which a ``zero`` rule fires or which fall below the minimum are denied and the method runs
   again without them, until no account is denied (a fixed point: at most one round per account).
   A round that would leave the remaining accounts unable to take the fill under their caps (for
   example, by denying all of them) is not applied, and the result says so in its notes;
5. ``minimum.denied: rotation`` — below-minimum shares are handed on in rotation order instead;
6. ``flag`` rules — evaluated on the final allocation; they record exceptions, change nothing;
7. prices — every account gets the block's average price (pro-rata, rotation) or the average of
   its own fills (price/time), exact, presented at the policy's precision.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from fairalloc.columnar import COLUMNAR_FROM, allocate_columnar
from fairalloc.context import TradeContext, applies, build_context
from fairalloc.controls import check_controls, check_policy_governs, refuse_if
from fairalloc.errors import Diagnostic, InputError, Location, RefusedError
from fairalloc.expressions import CompiledExpression, ExpressionRuntimeError
from fairalloc.numbers import as_decimal, decimal_text, to_units, units_scale
from fairalloc.plan import Policy, Rule
from fairalloc.result import AccountState, Allocation, Columns, ExceptionRecord, Outcome
from fairalloc.rotation import RotationState, Schedule, schedule
from fairalloc.rounding import Apportionment, largest_remainder, quota_method
from fairalloc.trade import Trade, pointer


def _floor_units(value: int | Decimal | Fraction, scale: int) -> int:
    """Round a computed cap down to whole units: never hand out more than it says."""
    return math.floor(Fraction(value) * scale)


def _ceil_units(value: int | Decimal | Fraction, scale: int) -> int:
    """Round a computed minimum up: an account must reach at least what the policy says."""
    return math.ceil(Fraction(value) * scale)


class _Run:
    """State of one allocation while the stages run."""

    def __init__(self, policy: Policy, trade: Trade, ctx: TradeContext, file: str) -> None:
        self.policy = policy
        self.trade = trade
        self.ctx = ctx
        self.file = file
        self.exceptions: list[ExceptionRecord] = []
        self.notes: list[str] = []

    def evaluate(self, expr: CompiledExpression, account: AccountState | None, allocation: int | None,
                 where: str) -> Any:
        c = self.ctx
        amount = None if allocation is None else self.quantity(allocation)
        try:
            record = c.accounts[account.index] if account else None
            return expr.fn(c.order, c.security, c.statement, c.fill, record, amount)
        except ExpressionRuntimeError as error:
            detail = Diagnostic(
                "expression-runtime",
                f"while evaluating {where}" + (f" for account '{account.id}'" if account else ""),
                Location(self.file, pointer=pointer(("statement", "accounts", account.index)) if account else "/order"),
            )
            raise InputError(error.diagnostics + [detail]) from None

    def quantity(self, units: int) -> int | Decimal:
        if self.scale == 1:
            return units
        value = Fraction(units, self.scale)
        return value.numerator if value.denominator == 1 else as_decimal(value)

    # -- stage 3: eligibility ---------------------------------------------------------------
    def accounts(self) -> list[AccountState]:
        policy = self.policy
        statement = self.trade.statement
        self.scale = units_scale([policy.lot, *(f.quantity for f in self.trade.fills), *statement.intended])
        self.lot = to_units(policy.lot, self.scale)
        intended = [to_units(quantity, self.scale) for quantity in statement.intended]
        accounts = [
            AccountState(account, i, units, None if policy.allow_above_intended else units)
            for i, (account, units) in enumerate(zip(statement.account_ids, intended))
        ]
        accounts.sort(key=lambda a: a.id)
        self.rank(accounts)
        exclude = policy.rules_by_action("exclude")
        caps = policy.rules_by_action("cap")
        for rule in exclude:
            for account in self.matching(rule, accounts):
                account.excluded = True
        eligible = [a for a in accounts if not a.excluded]
        for rule in caps:
            limit = rule.quantity
            assert limit is not None  # the compiler requires a quantity for action 'cap'
            for account in self.matching(rule, eligible):
                value = limit if isinstance(limit, Decimal) else self.evaluate(
                    limit, account, None, f"the quantity of rule '{rule.id}'")
                if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
                    raise InputError(Diagnostic(
                        "cap-invalid", f"rule '{rule.id}' gives account '{account.id}' a cap of {value!r}",
                        Location(self.file, pointer=pointer(("statement", "accounts", account.index)))))
                units = max(0, _floor_units(value, self.scale))
                account.cap = units if account.cap is None else min(account.cap, units)
        return accounts

    def matching(self, rule: Rule, accounts: list[AccountState], units: dict[str, int] | None = None) -> list[AccountState]:
        """The accounts for which ``rule`` fires (recorded as exceptions), in the order given.

        ``units``: the provisional allocations, for rules that read ``allocation``. This loop runs
        once per rule and account, so it calls the compiled expression directly; should it fail,
        the accounts are evaluated one by one to say which account's data made it fail.
        """
        fn = rule.when.fn
        c = self.ctx
        order, security, statement, fill, records = c.order, c.security, c.statement, c.fill, c.accounts
        try:
            if units is None:
                fired = [a for a in accounts if fn(order, security, statement, fill, records[a.index], None) is True]
            else:
                amount = self.quantity
                fired = [a for a in accounts
                         if fn(order, security, statement, fill, records[a.index], amount(units.get(a.id, 0))) is True]
        except ExpressionRuntimeError:
            for account in accounts:
                allocation = None if units is None else units.get(account.id, 0)
                self.evaluate(rule.when, account, allocation, f"rule '{rule.id}'")
            raise
        for account in fired:
            account.fired(rule.id)
            self.exceptions.append(ExceptionRecord(account.id, rule.id, rule.action, rule.reason, rule.review))
        return fired

    def rank(self, accounts: list[AccountState]) -> None:
        """Tie-break rank from the policy's rule; always ends on the account id (accounts are sorted)."""
        rule = self.policy.tie_break
        if rule == "smallest_account":
            ordered = sorted(accounts, key=lambda a: (a.intended, a.id))
        elif rule == "largest_account":
            ordered = sorted(accounts, key=lambda a: (-a.intended, a.id))
        else:
            ordered = accounts
        for position, account in enumerate(ordered):
            account.rank = position

    # -- weights --------------------------------------------------------------------------
    def weights(self, accounts: list[AccountState]) -> None:
        expr = self.policy.weight
        if expr is None:
            for account in accounts:
                account.weight = account.intended
            return
        raw: list[Decimal] = []
        for account in accounts:
            value = self.evaluate(expr, account, None, "the pro-rata weight")
            if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or value < 0:
                raise InputError(Diagnostic(
                    "weight-invalid",
                    f"the pro-rata weight of account '{account.id}' is {value!r}; weights must be numbers >= 0",
                    Location(self.file, pointer=pointer(("statement", "accounts", account.index))),
                ))
            raw.append(Decimal(value))
        scale = units_scale(raw)
        for account, value in zip(accounts, raw):
            account.weight = to_units(value, scale)
            account.weight_text = decimal_text(value)


def allocate(
    policy: Policy,
    trade: Trade,
    rotation: RotationState | None = None,
    *,
    file: str = "<trade>",
) -> Allocation:
    """Allocate ``trade``'s fills under ``policy``; a pure function of its three inputs.

    Raises :class:`RefusedError` when a control refuses the trade or the policy does not govern
    it, and :class:`InputError` when the trade lacks data the policy reads.

    Blocks of :data:`~fairalloc.columnar.COLUMNAR_FROM` accounts or more are computed on arrays by
    :mod:`fairalloc.columnar` where it applies; the result is the same (``tests/test_columnar.py``).
    """
    if len(trade.statement.accounts) >= COLUMNAR_FROM:
        result = allocate_columnar(policy, trade, rotation, file=file)
        if result is not None:
            return result
    return allocate_general(policy, trade, rotation, file=file)


def allocate_general(
    policy: Policy,
    trade: Trade,
    rotation: RotationState | None = None,
    *,
    file: str = "<trade>",
) -> Allocation:
    """:func:`allocate`, one account record at a time: the definition, for every policy and trade."""
    refuse_if(check_controls(trade, file))
    ctx = build_context(policy, trade, file)
    refuse_if(check_policy_governs(policy, trade, applies(policy, ctx), file))

    run = _Run(policy, trade, ctx, file)
    everyone = run.accounts()
    all_accounts = {a.id: a for a in everyone}
    participants = [a for a in everyone if not a.excluded]
    run.weights(participants)
    filled = to_units(ctx.filled, run.scale)
    state = _rotation_state(policy, trade, ctx, rotation)
    plan: Schedule | None = None
    if state is not None and policy.rotation is not None:
        keys = {}
        if policy.rotation.order_by is not None:
            keys = {a.id: run.evaluate(policy.rotation.order_by, a, None, "rotation.order_by") for a in participants}
        plan = schedule(policy.rotation, state, [a.id for a in participants], keys, trade.order.trade_date)
    rotation_rank = {account: i for i, account in enumerate(plan.order)} if plan else {}

    method = _method(policy, run, filled, rotation_rank)
    minimum_applies = policy.minimum is not None and (
        policy.method == "rotation" or policy.minimum.denied == "pro_rata"
    )
    zero_rules = policy.rules_by_action("zero")
    for account in participants:
        account.minimum = _minimum_units(run, account) if policy.minimum is not None else None
    outcome = method(participants) if participants else Outcome({})
    for round_number in range(1, len(all_accounts) + 2):
        if not participants:
            break
        denied: dict[str, str] = {}
        recorded = len(run.exceptions)
        rules_before = {a.id: len(a.rules or ()) for a in participants} if zero_rules else {}
        for rule in zero_rules:
            for account in run.matching(rule, participants, outcome.units):
                denied.setdefault(account.id, rule.id)
        if minimum_applies:
            for account in participants:
                units = outcome.units.get(account.id, 0)
                if account.minimum is not None and 0 < units < account.minimum and account.id not in denied:
                    denied[account.id] = "minimum"
        if not denied:
            break
        remaining = [a for a in participants if a.id not in denied]
        if not _can_hold(remaining, filled):
            run.notes.append(
                f"round {round_number}: denying {', '.join(sorted(denied))} would leave accounts unable to take "
                "the filled quantity under their caps; the round was not applied"
            )
            _withdraw_round(run, participants, recorded, rules_before)
            break
        for account in participants:
            if account.id in denied:
                account.denied_round = round_number
                account.denied_by = denied[account.id]
                if denied[account.id] == "minimum":
                    run.exceptions.append(ExceptionRecord(
                        account.id, "minimum", "deny", f"allocation below the minimum ({policy.minimum.describe() if policy.minimum else ''})", False))
        participants = remaining
        outcome = method(participants)
    if policy.minimum is not None and policy.minimum.denied == "rotation" and policy.method == "pro_rata":
        outcome = _deny_by_rotation(run, participants, outcome, rotation_rank)
    final = outcome.units
    allocated = [a for a in everyone if a.denied_round is None and not a.excluded]
    for rule in policy.rules_by_action("flag"):
        run.matching(rule, allocated, final)
    if sum(final.values()) != filled:
        raise RefusedError(Diagnostic(
            "unallocatable",
            f"only {sum(final.values())} of {filled} units could be allocated under {policy.ref}",
            Location(file, pointer="/fills"),
            "every eligible account is excluded, capped or denied; the policy must say where such shares go",
        ))
    return _result(run, trade, all_accounts, outcome, plan)


def _can_hold(accounts: list[AccountState], filled: int) -> bool:
    """Whether ``accounts`` (those with a positive weight) can take ``filled`` units under their caps."""
    room = 0
    for account in accounts:
        if account.weight > 0 or account.cap is None:
            if account.cap is None:
                return bool(accounts)
            room += account.cap
    return room >= filled


def _withdraw_round(run: _Run, participants: list[AccountState], recorded: int,
                    rules_before: dict[str, int]) -> None:
    """Forget the exceptions a round recorded (the round is not applied): records and rule lists."""
    del run.exceptions[recorded:]
    for account in participants:
        before = rules_before.get(account.id)  # absent when no zero rule ran this round
        if account.rules is not None and before is not None:
            del account.rules[before:]


def _minimum_units(run: _Run, account: AccountState) -> int | None:
    minimum = run.policy.minimum
    assert minimum is not None
    if minimum.kind == "absolute":
        assert minimum.absolute is not None
        return _ceil_units(minimum.absolute, run.scale)
    if minimum.kind == "relative_to_intended":
        assert minimum.relative is not None
        return _ceil_units(Fraction(account.intended) * Fraction(minimum.relative), 1)
    assert minimum.expression is not None
    value = run.evaluate(minimum.expression, account, None, "minimum.expression")
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise InputError(Diagnostic("minimum-invalid", f"the minimum for '{account.id}' is {value!r}, not a number",
                                    Location(run.file, pointer=pointer(("statement", "accounts", account.index)))))
    return _ceil_units(value, run.scale)


def rotation_group(policy: Policy, trade: Trade, ctx: TradeContext | None = None) -> str | None:
    """The rotation group of ``trade``: the policy id, or ``id/<group expression>`` when it sets one."""
    rotation = policy.rotation
    if rotation is None:
        return None
    if rotation.group is None:
        return policy.id
    ctx = ctx or build_context(policy, trade)
    return f"{policy.id}/{rotation.group.fn(ctx.order, ctx.security, None, None, None, None)}"


def _rotation_state(policy: Policy, trade: Trade, ctx: TradeContext, given: RotationState | None) -> RotationState | None:
    group = rotation_group(policy, trade, ctx)
    if group is None:
        return None
    if given is None:
        return RotationState(group)
    if given.group != group:
        raise InputError(Diagnostic(
            "rotation-group-mismatch",
            f"the rotation state given is for group '{given.group}', but this order belongs to '{group}'",
            Location("<rotation>", pointer="/group"),
            "pass the state of this order's rotation group",
        ))
    return given


Method = Callable[[list[AccountState]], Outcome]
_LATEST = dt.datetime.max.replace(tzinfo=dt.timezone.utc)


def _method(policy: Policy, run: _Run, filled: int, rotation_rank: dict[str, int]) -> Method:
    if policy.method == "pro_rata":
        return lambda accounts: _pro_rata(run, accounts, filled, rotation_rank)
    if policy.method == "rotation":
        return lambda accounts: _rotation(run, accounts, filled, rotation_rank)
    return lambda accounts: _price_time(run, accounts)


def _pro_rata(run: _Run, accounts: list[AccountState], filled: int, rotation_rank: dict[str, int]) -> Outcome:
    policy = run.policy
    weights = [a.weight for a in accounts]
    caps = [a.cap for a in accounts]
    ranks = [a.rank for a in accounts]
    try:
        if policy.rounding_method == "quota":
            result: Apportionment = quota_method(filled, weights, caps, run.lot, ranks)
        else:
            odd_key: list[int] | None = None
            if policy.remainder == "smallest_account":
                odd_key = [a.intended for a in accounts]
            elif policy.remainder == "largest_account":
                odd_key = [-a.intended for a in accounts]
            elif policy.remainder == "rotation":
                odd_key = [rotation_rank.get(a.id, len(rotation_rank)) for a in accounts]
            result = largest_remainder(filled, weights, caps, run.lot, ranks, odd_key)
    except ValueError as error:
        raise RefusedError(Diagnostic("unallocatable", str(error), Location(run.file, pointer="/fills"),
                                      "the eligible accounts cannot take the filled quantity under their caps")) from None
    return Outcome(
        {a.id: units for a, units in zip(accounts, result.allocations)},
        apportionment=result,
        positions={a.id: i for i, a in enumerate(accounts)},
    )


def _rotation(run: _Run, accounts: list[AccountState], filled: int, rotation_rank: dict[str, int]) -> Outcome:
    """Fill accounts in full, one after another, in this order's rotation order.

    Each account takes its cap rounded down to a whole lot; the account at which the fill runs
    out takes everything left, so a final quantity smaller than a lot falls to the last account
    filled and the filled quantity is conserved.
    """
    left, lot = filled, run.lot
    units: dict[str, int] = {}
    for account in sorted(accounts, key=lambda a: rotation_rank[a.id]):
        if account.cap is None or left <= account.cap:
            take = left
        else:
            take = account.cap - account.cap % lot
        units[account.id] = take
        left -= take
    return Outcome(units)


def _price_time(run: _Run, accounts: list[AccountState]) -> Outcome:
    """Each fill, in execution order, to the best-ranked account still short whose limit it meets."""
    side = run.trade.order.side
    unlimited_first = run.policy.unlimited_first
    entries = {a.id: run.trade.statement.accounts[a.index] for a in accounts}

    def key(account: AccountState) -> tuple[Any, ...]:
        entry = entries[account.id]
        limit = entry.limit_price
        if limit is None:
            price_key: tuple[int, Decimal] = (0 if unlimited_first else 2, Decimal(0))
        else:
            price_key = (1, limit.copy_negate() if side == "buy" else limit)
        return (price_key, entry.received_at or _LATEST, account.id)

    ranked = sorted(accounts, key=key)
    units = {a.id: 0 for a in accounts}
    value = {a.id: Fraction(0) for a in accounts}
    taken: dict[str, list[tuple[str, int]]] = {a.id: [] for a in accounts}
    fills = sorted(enumerate(run.trade.fills), key=lambda pair: (pair[1].executed_at, pair[1].id))
    for index, fill in fills:
        left = to_units(fill.quantity, run.scale)
        for account in ranked:
            if not left:
                break
            limit = entries[account.id].limit_price
            if limit is not None and ((side == "buy" and fill.price > limit) or (side != "buy" and fill.price < limit)):
                continue
            room = left if account.cap is None else account.cap - units[account.id]
            take = min(left, room)
            if take > 0:
                units[account.id] += take
                value[account.id] += Fraction(take) * Fraction(fill.price)
                taken[account.id].append((fill.id, take))
                left -= take
        if left:
            raise RefusedError(Diagnostic(
                "fill-unallocatable",
                f"fill '{fill.id}' at {fill.price} cannot be placed: no account still short accepts that price",
                Location(run.file, pointer=pointer(("fills", index))),
                "the statement's limits and intended quantities must be able to absorb every fill",
            ))
    prices = {a: value[a] / units[a] for a in units if units[a]}
    return Outcome(units, prices=prices, fills=taken)


def _deny_by_rotation(run: _Run, participants: list[AccountState], outcome: Outcome,
                      rotation_rank: dict[str, int]) -> Outcome:
    """``minimum.denied: rotation``: below-minimum shares go to the others in rotation order."""
    units = dict(outcome.units)
    below = [a for a in participants if a.minimum is not None and 0 < units.get(a.id, 0) < a.minimum]
    keep = [a for a in participants if a not in below]
    if not below or not keep:
        return outcome
    freed = 0
    for account in below:
        freed += units[account.id]
        units[account.id] = 0
        account.denied_round = 1
        account.denied_by = "minimum"
        run.exceptions.append(ExceptionRecord(account.id, "minimum", "deny", "allocation below the minimum; "
                                              "shares passed on in rotation order", False))
    for account in sorted(keep, key=lambda a: rotation_rank.get(a.id, len(rotation_rank))):
        room = freed if account.cap is None else min(freed, account.cap - units[account.id])
        if room > 0:
            units[account.id] += room
            freed -= room
    if freed:
        raise RefusedError(Diagnostic("unallocatable", "denied shares found no account with room in the rotation",
                                      Location(run.file, pointer="/fills")))
    return Outcome(units, apportionment=outcome.apportionment, positions=outcome.positions)


def _result(run: _Run, trade: Trade, accounts: dict[str, AccountState], outcome: Outcome,
            plan: Schedule | None) -> Allocation:
    policy = run.policy
    exceptions = sorted(run.exceptions, key=lambda r: (r.account, _rule_order(policy, r.rule), r.action))
    states = [accounts[key] for key in sorted(accounts)]
    units = outcome.units
    columns = Columns([s.id for s in states], [s.intended for s in states], [units.get(s.id, 0) for s in states])
    return Allocation(
        policy=policy,
        order_id=trade.order.id,
        method=policy.method,
        filled=Fraction(run.ctx.filled),
        average_price=run.ctx.average_price,
        columns=columns,
        details=lambda: (states, outcome),
        own_prices=outcome.prices if policy.method == "price_time" else None,
        exceptions=tuple(exceptions),
        rotation_before=plan.before if plan else None,
        rotation_after=plan.after if plan else None,
        rotation_order=plan.order if plan else (),
        lot=Fraction(policy.lot),
        notes=tuple(run.notes),
        scale=run.scale,
    )


def _rule_order(policy: Policy, rule_id: str) -> int:
    for rule in policy.rules:
        if rule.id == rule_id:
            return rule.index
    return len(policy.rules)
