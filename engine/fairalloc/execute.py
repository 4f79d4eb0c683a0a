"""Stage 6 — execute a compiled policy against one trade's fills: the allocation stages, once.

``allocate`` is a pure function of (policy, trade, rotation state, fairness state): no clock, no randomness, no
dependence on the order of accounts or fills in the input. It runs in this fixed order, which
``docs/policy-language.md`` documents for compliance authors:

1. controls — refuse trades the playbook forbids allocating (``fairalloc.controls``);
2. governance — the policy must be in effect on the trade date and ``applies_to`` must hold;
3. eligibility — ``exclude`` rules remove accounts; ``cap`` rules and the intended quantity cap them;
4. rounds — the method allocates the filled quantity among the participating accounts (pro-rata:
   tier by tier under ``pro_rata.priority``, the odd quantity set aside for ``odd_lots.recipient``,
   :meth:`_Run.pro_rata`); accounts for which a ``zero`` rule fires or which fall below the
   minimum are denied and the method runs again without them, until no account is denied (a
   fixed point: at most one round per account).
   A round that would leave the remaining accounts unable to take the fill under their caps (for
   example, by denying all of them) is not applied, and the result says so in its notes;
5. ``minimum.denied: rotation`` — below-minimum shares are handed on in rotation order instead;
6. ``flag`` rules — evaluated on the final allocation; they record exceptions, change nothing;
7. prices — every account gets the block's average price (pro-rata, rotation) or the average of
   its own fills (price/time), exact, presented at the policy's precision.

The stages are written here once, over an account book (:mod:`fairalloc.book`): the record book
for small blocks and for every policy, the array book for large pro-rata blocks under a policy
with an array form. Notes, exceptions, their order and the result are defined here, so both books
give the same document byte for byte; ``document(explain=True)["backend"]`` says which ran.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from fractions import Fraction
from typing import Any, Generic, TypeVar, cast

import msgspec
import msgspec.structs

from fairalloc.arrayform import ARRAYS_FROM, ArrayForm, Decline, Declined, Why
from fairalloc.book import Book, S, Shares, U
from fairalloc.context import TradeContext, check_policy_governs, fairness_group, rotation_group, scalar_context
from fairalloc.controls import check_controls, refuse_if
from fairalloc.errors import Code, Diagnostic, InputError, Location, RefusedError
from fairalloc.expressions import ExpressionRuntimeError
from fairalloc.fairness import FairnessState, rounding_advantages
from fairalloc.money import settle
from fairalloc.options import (
    METHODS,
    REMAINDERS,
    TIE_BREAKS,
    Action,
    Backend,
    Denied,
    Method,
    Stage,
)
from fairalloc.plan import Policy, Rule
from fairalloc.records import RecordBook
from fairalloc.result import AccountState, Allocation, Columns, ExceptionRecord, Outcome, quantity_json
from fairalloc.rounding import Apportionment, Step
from fairalloc.rotation import RotationState, Schedule, schedule
from fairalloc.trade import Trade


class Choice(msgspec.Struct, frozen=True):
    """The backend that ran, and why the array backend did not (``None`` when it ran)."""

    backend: Backend
    decline: Decline | None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"used": str(self.backend)}
        if self.decline is not None:
            out["why"] = self.decline.text()
        return out


def allocate(
    policy: Policy,
    trade: Trade,
    rotation: RotationState | None = None,
    *,
    file: str = "<trade>",
    backend: Backend | None = None,
    fairness: FairnessState | None = None,
) -> Allocation:
    """Allocate ``trade``'s fills under ``policy``; a pure function of its inputs.

    Raises :class:`RefusedError` when a control refuses the trade or the policy does not govern
    it, and :class:`InputError` when the trade lacks data the policy reads.

    ``backend`` chooses how it is computed; the result is the same. ``None``: on arrays for
    blocks of :data:`~fairalloc.arrayform.ARRAYS_FROM` accounts or more under a policy with an
    array form, by records otherwise. ``Backend.ARRAYS``: on arrays whatever the block's size,
    where the policy and the trade allow. ``Backend.RECORDS``: by records.

    ``fairness``: the cumulative rounding advantages of the order's fairness group before it, for
    a policy with a ``fairness`` section (``None``: every account at 0); the result carries the
    state after it (:attr:`Allocation.fairness_after`).
    """
    refuse_if(check_controls(trade, file))
    ctx = scalar_context(policy, trade, file)
    refuse_if(check_policy_governs(policy, trade, ctx, file))
    choice = _choose(policy, trade, backend)
    if choice.decline is None:
        assert isinstance(policy.arrays, ArrayForm)
        from fairalloc.arrays import open_arrays  # numpy is imported by large blocks only

        book = open_arrays(policy, policy.arrays, trade, ctx)
        if isinstance(book, Decline):
            choice = Choice(Backend.RECORDS, book)
        else:
            try:
                return _Run(policy, trade, ctx, book, rotation, file, choice, fairness).execute()
            except Declined as declined:
                choice = Choice(Backend.RECORDS, declined.decline)
    return _Run(policy, trade, ctx, RecordBook(policy, trade, ctx, file), rotation, file, choice,
                fairness).execute()


def _choose(policy: Policy, trade: Trade, backend: Backend | None) -> Choice:
    """The backend to try first, from the compiled plan, the block's size and the caller's wish."""
    if backend is Backend.RECORDS:
        return Choice(Backend.RECORDS, Decline(Why.REQUESTED, ""))
    if isinstance(policy.arrays, Decline):
        return Choice(Backend.RECORDS, policy.arrays)
    accounts = len(trade.statement.accounts)
    if backend is None and accounts < ARRAYS_FROM:
        return Choice(Backend.RECORDS, Decline(Why.SMALL_BLOCK, f"{accounts} accounts"))
    return Choice(Backend.ARRAYS, None)


class _Run(Generic[S, U]):
    """One allocation while the stages run over ``book``."""

    def __init__(self, policy: Policy, trade: Trade, ctx: TradeContext, book: Book[S, U],
                 rotation: RotationState | None, file: str, choice: Choice,
                 fairness: FairnessState | None = None) -> None:
        self.policy, self.trade, self.ctx, self.book = policy, trade, ctx, book
        self.given_rotation, self.file, self.choice = rotation, file, choice
        self.fairness = self.fairness_state(fairness)
        self.advantage: list[Fraction] | None = None  # by position, in units: fairness over time
        if self.fairness is not None:
            scale = book.scale
            self.advantage = [self.fairness.of(account) * scale for account in book.ids]
        self.events: list[tuple[Rule, S]] = []  # rules that fired, in the order they ran
        self.denials: list[tuple[int, str, S, str | None]] = []  # round, by, accounts, exception reason
        self.notes: list[str] = []
        self.rotation_rank: dict[int, int] = {}  # position -> place in this order's rotation
        self.recipient: int | None = None  # odd_lots.recipient's position
        self.odd_lot_note: str | None = None  # why the last round's odd quantity did not go to it

    def fire(self, rule: Rule, among: S, shares: Shares[S, U] | None) -> S:
        hits = self.book.fires(rule, among, shares)
        if self.book.size(hits):
            self.events.append((rule, hits))
        return hits

    def rules(self, stage: Stage, action: Action | None = None) -> tuple[Rule, ...]:
        return self.policy.staged_rules[stage, action]

    def execute(self) -> Allocation:
        """Stages 3 to 6 (the module docstring), then the result."""
        policy, book = self.policy, self.book
        self.recipient = self.odd_lot_recipient()
        eligible = self.eligibility()
        plan = self.schedule(eligible)
        if policy.minimum is not None:
            book.set_minimums(eligible)
        shares, participants = self.rounds(eligible)
        if policy.minimum is not None and policy.minimum.denied is Denied.ROTATION and policy.method is Method.PRO_RATA:
            shares, participants = self.deny_by_rotation(participants, shares)
        for rule in self.rules(Stage.FINAL):
            self.fire(rule, participants, shares)
        allocated = book.total(shares.units)
        if allocated != book.filled:
            raise RefusedError(Diagnostic(
                "unallocatable",
                f"only {allocated} of {book.filled} units could be allocated under {policy.ref}",
                Location(self.file, pointer="/fills"),
                self.shortfall_hint(participants),
            ))
        return self.result(shares, plan)

    def eligibility(self) -> S:
        """Rank every account, apply ``exclude`` then ``cap`` rules, weigh the eligible accounts."""
        policy, book = self.policy, self.book
        everyone = book.everyone()
        book.rank(TIE_BREAKS[policy.tie_break])
        excluded = book.nobody()
        for rule in self.rules(Stage.ELIGIBILITY, Action.EXCLUDE):
            excluded = book.union(excluded, self.fire(rule, everyone, None))
        eligible = book.without(everyone, excluded)
        for rule in self.rules(Stage.ELIGIBILITY, Action.CAP):
            book.cap(rule, self.fire(rule, eligible, None))
        book.weigh(eligible)
        return eligible

    def rounds(self, eligible: S) -> tuple[Shares[S, U], S]:
        """Run the method, deny, run again without the denied, to the fixed point; a round whose
        denials would leave accounts unable to hold the fill is not applied (and noted)."""
        policy, book = self.policy, self.book
        minimum_in_rounds = policy.minimum is not None and (
            policy.method is Method.ROTATION or policy.minimum.denied is Denied.PRO_RATA)
        zero_rules = self.rules(Stage.ROUNDS)
        participants = eligible
        shares = self.method(participants) if book.size(participants) else book.nothing()
        for round_number in range(1, len(book.ids) + 2):
            if not book.size(participants):
                break
            recorded = len(self.events)
            denied = book.nobody()
            by: list[tuple[str, S]] = []
            for rule in zero_rules:
                hits = self.fire(rule, participants, shares)
                by.append((rule.id, book.without(hits, denied)))
                denied = book.union(denied, hits)
            if minimum_in_rounds:
                low = book.without(book.below_minimum(participants, shares.units), denied)
                by.append(("minimum", low))
                denied = book.union(denied, low)
            if not book.size(denied):
                break
            remaining = book.without(participants, denied)
            if not book.can_hold(remaining):
                names = ", ".join(book.ids[k] for k in book.positions(denied))
                self.notes.append(
                    f"round {round_number}: denying {names} would leave accounts unable to take "
                    "the filled quantity under their caps; the round was not applied")
                del self.events[recorded:]  # the round's exceptions are withdrawn with it
                break
            for denier, accounts in by:
                if book.size(accounts):
                    reason = None if denier != "minimum" or policy.minimum is None else (
                        f"allocation below the minimum ({policy.minimum.describe()})")
                    self.denials.append((round_number, denier, accounts, reason))
            participants = remaining
            shares = self.method(participants)
        return shares, participants

    def shortfall_hint(self, participants: S) -> str:
        """Say which it is: no account left to take the fill, or caps too small to hold it. (A
        round that would deny every account is not applied, so only rules can exclude them all.)"""
        book = self.book
        room = book.room(participants)
        if not book.size(participants):
            return "every account is excluded; the policy must say where such shares go"
        if room is None:
            return "the policy must say where such shares go"
        return f"the accounts taking part can hold {room} units in all under their caps"

    # -- methods ------------------------------------------------------------------------------
    def method(self, participants: S) -> Shares[S, U]:
        policy, book = self.policy, self.book
        if policy.method is Method.PRO_RATA:
            spec = REMAINDERS[policy.remainder]
            if spec.rotation:
                order = self.rotation_rank
                odd_key: list[int] | None = [order.get(k, len(order)) for k in range(len(book.ids))]
            else:
                odd_key = book.odd_key(spec.by_intended)
            def apportion(members: S, total: int) -> Shares[S, U]:
                return book.apportion(members, policy.rounding_method, odd_key, total, self.advantage)

            try:
                return self.pro_rata(participants, apportion)
            except ValueError as error:
                raise RefusedError(Diagnostic(
                    "unallocatable", str(error), Location(self.file, pointer="/fills"),
                    "the eligible accounts cannot take the filled quantity under their caps")) from None
        records, members = self.records(), cast("list[int]", participants)
        if policy.method is Method.ROTATION:
            return cast("Shares[S, U]", records.rotate(members, self.rotation_rank))
        return cast("Shares[S, U]", records.price_time(members))

    def pro_rata(self, participants: S, apportion: Callable[[S, int], Shares[S, U]]) -> Shares[S, U]:
        """``odd_lots.recipient`` first: the whole lots are shared, the odd quantity (the fill's part
        smaller than a lot) goes to the recipient if it takes part and its cap leaves room for it
        all; otherwise the whole fill is shared and the remainder rule places the odd quantity."""
        book, recipient = self.book, self.recipient
        total = book.filled
        odd = total % book.lot
        self.odd_lot_note = None
        if recipient is None or not odd:
            return self.tiered(participants, total, apportion)
        why = "takes no part in the allocation"
        if book.holds(participants, recipient):
            shares = self.tiered(participants, total - odd, apportion)
            if book.give(shares, recipient, odd):
                shares.odd_lot = (recipient, odd)
                return shares
            why = "has no room for it under its cap"
        self.odd_lot_note = (f"the odd quantity of {_quantity(odd, book.scale)} went by the remainder rule: "
                             f"the designated recipient {book.ids[recipient]} {why}")
        return self.tiered(participants, total, apportion)

    def tiered(self, participants: S, total: int, apportion: Callable[[S, int], Shares[S, U]]) -> Shares[S, U]:
        """``pro_rata.priority``: tiers in increasing order, each filled up to its caps while the
        quantity lasts; the tier at which it runs short shares what is left pro rata (with the
        policy's rounding); the tiers after it receive nothing."""
        if self.policy.priority is None:
            return apportion(participants, total)
        book = self.book
        left = total
        parts: list[Shares[S, U]] = []
        outcomes: dict[int, tuple[bool, str]] = {}
        for tier, members in book.tiers(participants):
            room = book.tier_room(members)
            if left and (room is None or room > left):
                parts.append(apportion(members, left))
                outcomes[tier] = (False, f"shared {_quantity(left, book.scale)} pro rata: the rest of the fill")
                left = 0
            elif left:
                assert room is not None
                parts.append(book.to_caps(members))
                outcomes[tier] = (True, "filled up to every account's cap")
                left -= room
            else:
                outcomes[tier] = (False, "received nothing: the tiers before it took the whole fill")
        # the tiers' apportionments are joined only for the explanation (details), on demand
        shares: Shares[S, U] = Shares(book.combine(parts), participants, tiers=outcomes, parts=parts)
        return shares

    def records(self) -> RecordBook:
        """The record book, for the stages only it runs: the array form declines a rotation
        section and every method but pro-rata (``options.METHODS``)."""
        book = self.book
        assert isinstance(book, RecordBook) and not (
            METHODS[self.policy.method].arrays and self.policy.rotation is None)
        return book

    def schedule(self, eligible: S) -> Schedule | None:
        """This order's rotation order of the eligible accounts, if the policy has a rotation."""
        policy = self.policy
        state = self.rotation_state()
        if state is None or policy.rotation is None:
            return None
        book, members = self.records(), cast("list[int]", eligible)
        keys = {}
        if policy.rotation.order_by is not None:
            keys = book.sort_keys(policy.rotation.order_by, members)
        plan = schedule(policy.rotation, state, [book.ids[k] for k in members], keys, self.trade.order.trade_date,
                        self.file)
        place = {account: i for i, account in enumerate(plan.order)}
        self.rotation_rank = {k: place[book.ids[k]] for k in members}
        return plan

    def odd_lot_recipient(self) -> int | None:
        """The position of ``odd_lots.recipient`` in this trade; an account the statement does not
        name is refused, since the policy's designation could not be honoured."""
        chosen = self.policy.odd_lot_recipient
        if chosen is None:
            return None
        account: object = chosen.account
        if chosen.expression is not None:
            c = self.ctx
            try:
                account = chosen.expression.fn(c.order, c.security, c.statement, c.fill, None, None)
            except ExpressionRuntimeError as error:
                raise InputError(error.diagnostics + [Diagnostic(
                    "expression-runtime", "while evaluating odd_lots.recipient", Location(self.file, pointer="/order"))]
                ) from None
        ids = self.book.ids
        at = bisect.bisect_left(ids, account) if isinstance(account, str) else len(ids)
        if at == len(ids) or ids[at] != account:
            raise RefusedError(Diagnostic(
                "odd-lot-recipient-unknown",
                f"the policy's odd-lot recipient is {account!r} ({chosen.describe()}), "
                "an account this order's statement does not name",
                Location(self.file, pointer="/statement/accounts"),
                "add the account to the allocation statement, or correct odd_lots.recipient in the policy",
            ))
        return at

    def rotation_state(self) -> RotationState | None:
        group = rotation_group(self.policy, self.trade, self.ctx)
        return None if group is None else _state_of(group, self.given_rotation, RotationState, "rotation",
                                                     Code.ROTATION_GROUP_MISMATCH)

    def fairness_state(self, given: FairnessState | None) -> FairnessState | None:
        """The order's fairness group's state before it (a new group: every account at 0)."""
        group = fairness_group(self.policy, self.trade, self.ctx)
        return None if group is None else _state_of(group, given, FairnessState, "fairness",
                                                     Code.FAIRNESS_GROUP_MISMATCH)

    def fairness_after(self, shares: Shares[S, U]) -> FairnessState | None:
        """The state after this order: each member's advantage moves by allocated minus exact share
        (:func:`fairalloc.fairness.rounding_advantages`)."""
        before = self.fairness
        if before is None:
            return before
        book = self.book
        units, members = book.allocated(shares.units), book.positions(shares.members)
        apportionment = shares.apportionment
        if apportionment is None and shares.parts:
            apportionment = _joined(book, shares.parts, members, units)
        if apportionment is None:
            return before
        changes = rounding_advantages(members, units, apportionment.steps, shares.odd_lot, book.scale)
        return before.advanced({book.ids[k]: change for k, change in changes.items()})

    def deny_by_rotation(self, participants: S, shares: Shares[S, U]) -> tuple[Shares[S, U], S]:
        """``minimum.denied: rotation``: below-minimum shares go to the others in rotation order."""
        book, members = self.records(), cast("list[int]", participants)
        units = list(cast("list[int]", shares.units))
        below = book.below_minimum(members, units)
        keep = book.without(members, below)
        if not below or not keep:
            return shares, participants
        freed = sum(units[k] for k in below)
        for k in below:
            units[k] = 0
        self.denials.append((1, "minimum", cast(S, below),
                             "allocation below the minimum; shares passed on in rotation order"))
        order = self.rotation_rank
        for k in sorted(keep, key=lambda k: order.get(k, len(order))):
            cap = book.caps[k]
            room = freed if cap is None else min(freed, cap - units[k])
            if room > 0:
                units[k] += room
                freed -= room
        if freed:
            raise RefusedError(Diagnostic("unallocatable", "denied shares found no account with room in the rotation",
                                          Location(self.file, pointer="/fills")))
        # tiers and the odd lot are kept for the explanation
        moved = msgspec.structs.replace(shares, units=cast(U, units), members=cast(S, members))
        return moved, cast(S, keep)

    # -- the result ---------------------------------------------------------------------------
    def result(self, shares: Shares[S, U], plan: Schedule | None) -> Allocation:
        policy, book = self.policy, self.book
        ids = book.ids
        records: list[ExceptionRecord] = []
        for rule, hits in self.events:
            records.extend(ExceptionRecord(ids[k], rule.id, rule.action, rule.reason, rule.review)
                           for k in book.positions(hits))
        for _, denier, accounts, reason in self.denials:
            if reason is not None:
                records.extend(ExceptionRecord(ids[k], "minimum", "deny", reason, False) for k in book.positions(accounts))
        if records:
            order = {rule.id: rule.index for rule in policy.rules}
            records.sort(key=lambda r: (r.account, order.get(r.rule, len(policy.rules)), r.action))
        allocated = book.allocated(shares.units)
        own_prices = None
        if policy.method is Method.PRICE_TIME:
            own_prices = {ids[k]: price for k, price in shares.prices.items()}
        taken = dict(shares.fills) if policy.method is Method.PRICE_TIME else None
        settlement = settle(policy, self.trade, ids, allocated, book.scale, book.lot, taken, self.file)
        notes = self.notes + ([self.odd_lot_note] if self.odd_lot_note else [])
        return Allocation(
            policy=policy,
            order_id=self.trade.order.id,
            method=policy.method,
            filled=Fraction(self.ctx.filled),
            average_price=self.ctx.average_price,
            columns=Columns(ids, book.intended_units(), allocated),
            details=self.details(shares),
            own_prices=own_prices,
            exceptions=tuple(records),
            rotation_before=plan.before if plan else None,
            rotation_after=plan.after if plan else None,
            rotation_order=plan.order if plan else (),
            lot=Fraction(book.lot, book.scale),  # the policy's lot, exactly
            notes=tuple(notes),
            scale=book.scale,
            backend=self.choice.to_json(),
            settlement=settlement,
            price_rule=policy.pricing.side_rounding(policy.price_rounding, self.trade.order.side),
            fairness_before=self.fairness,
            fairness_after=self.fairness_after(shares),
        )

    def details(self, shares: Shares[S, U]) -> Callable[[], tuple[list[AccountState], Outcome]]:
        """The per-account records behind ``--explain``, built on demand."""

        def build() -> tuple[list[AccountState], Outcome]:
            book, ids = self.book, self.book.ids
            n = len(ids)
            ledger = book.ledger()
            tiers = ledger.tiers
            rules: list[list[str] | None] = [None] * n
            excluded = [False] * n
            for rule, hits in self.events:
                for k in book.positions(hits):
                    fired = rules[k]
                    if fired is None:
                        rules[k] = [rule.id]
                    else:
                        fired.append(rule.id)
                    if rule.action is Action.EXCLUDE:
                        excluded[k] = True
            rounds: list[int | None] = [None] * n
            by: list[str | None] = [None] * n
            for round_number, denier, accounts, _ in self.denials:
                for k in book.positions(accounts):
                    rounds[k], by[k] = round_number, denier
            minimums = ledger.minimums
            states = [
                AccountState(ids[k], ledger.index[k], ledger.intended[k], ledger.caps[k], weight=ledger.weights[k],
                             weight_text=ledger.weight_texts[k], rank=ledger.ranks[k], rules=rules[k],
                             excluded=excluded[k], denied_round=rounds[k], denied_by=by[k],
                             minimum=None if minimums is None else minimums[k],
                             tier=None if tiers is None else tiers[k])
                for k in range(n)
            ]
            members = book.positions(shares.members)
            units = book.allocated(shares.units)
            apportionment = shares.apportionment
            if apportionment is None and shares.parts:
                apportionment = _joined(book, shares.parts, members, units)
            return states, Outcome(
                {ids[k]: units[k] for k in members},
                apportionment=apportionment,
                positions={ids[k]: i for i, k in enumerate(members)} if apportionment else {},
                prices={ids[k]: price for k, price in shares.prices.items()},
                fills={ids[k]: taken for k, taken in shares.fills.items()},
                tiers=shares.tiers,
                odd_lot=None if shares.odd_lot is None else (ids[shares.odd_lot[0]], shares.odd_lot[1]),
            )

        return build


def _quantity(units: int, scale: int) -> str:
    """Integer units as the quantity people read."""
    return str(quantity_json(Fraction(units, scale)))


def _joined(book: Book[S, U], parts: list[Shares[S, U]], positions: list[int], units: list[int]) -> Apportionment:
    """The tiers' apportionments as one, in the order of ``positions`` (the members)."""

    def steps() -> list[Step]:
        table: dict[int, Step] = {}
        for part in parts:
            if part.apportionment is not None:
                table.update(zip(book.positions(part.members), part.apportionment.steps))
        nothing = Step(Fraction(0), False, 0, False, 0, None)
        return [table.get(k, nothing) for k in positions]

    return Apportionment([units[k] for k in positions], steps)


State = TypeVar("State", RotationState, FairnessState)


def _state_of(group: str, given: State | None, new: Callable[[str], State], kind: str, code: Code) -> State:
    """The state carried for ``group``: the one given, a new one if none was, refused if the one
    given is another group's (a rotation or fairness state belongs to one group)."""
    if given is None:
        return new(group)
    if given.group != group:
        raise InputError(Diagnostic(
            code, f"the {kind} state given is for group '{given.group}', but this order belongs to '{group}'",
            Location(f"<{kind}>", pointer="/group"), f"pass the state of this order's {kind} group"))
    return given
