"""Impact analysis: replay recorded trades under two policy versions and report what would change.

Every trade is allocated under the old and the new version (each policy is compiled once). An
order *changed* when any account's quantity differs, or when one version allocates it and the
other refuses it (e.g. a narrower ``applies_to``). For each changed account the report gives the
old and new quantity, the change, and its value at the trade's volume-weighted average price —
computed exactly (``Fraction``) and rounded to cents half-even only for display; totals are summed
exactly before rounding.

Rotation policies carry state from order to order: trades are replayed in (trade date, entry time,
order id) order and each version keeps its own rotation state per group, starting from position 0
(the first account of the sequence). Policies with fairness over time carry their cumulative
rounding advantages the same way, each group starting with every account at 0. A replay therefore shows how the two versions diverge over
the period, not what was recorded in production.

**Attribution** ("which rule caused it") compares the engine's per-account explanation under each
version and is exact only as far as those facts go:

* ``direct`` — the account's own facts differ and the diff changed what explains them: a changed
  rule fired under one version only, or the minimum changed and the account's denial by it did, or
  its binding cap, weight, priority tier, rotation position or receipt of the odd lot
  (``odd_lots.recipient``) changed. The cause is that diff item. (A rule or
  minimum the diff did not touch that fires differently only because shares were re-spread is a
  consequence, not a cause.)
* ``order`` — the account's own facts are equal but another account of the same order changed
  directly; its shares moved because that account's did (re-spread). The cause is the other
  accounts' causes.
* ``policy`` — heuristic: nothing account-specific differs (e.g. a new round lot or remainder
  rule); the causes are the diff's allocation-affecting changes that are not rules or minimums.
* ``governance`` — one version does not govern the order (``applies_to``, effective date, a newly
  required attribute); the causes are those changes.
* ``refusal`` — heuristic: one version refuses the order for another reason (e.g. nothing can be
  allocated under new thresholds); every allocation-affecting change is listed.

Flag rules never move a share, so a flag that fires under one version only is counted in
``exceptions_changed`` but is never named as the cause of a quantity change.
"""

from __future__ import annotations

import datetime as dt
import functools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from fairalloc import allocate, load_trade, policy_from_text
from fairalloc.compile import canonical_json
from fairalloc.errors import Diagnostic, FairallocError, FileAccessError, Location
from fairalloc.fairness import FairnessState
from fairalloc.numbers import present
from fairalloc.plan import Policy
from fairalloc.result import AccountAllocation, Allocation
from fairalloc.review.diff import PolicyDiff, diff_policies, money_changes
from fairalloc.rotation import RotationState
from fairalloc.trade import Trade

Tick = Callable[[int], None]
Exact = Fraction | int  # an exact quantity or amount; whole ones are kept as int for speed
CHUNK = 250  # trades per work unit of a parallel replay
# Refusals that mean "this version does not govern the order" rather than "cannot allocate it".
_GOVERNANCE_CODES = frozenset({"policy-not-applicable", "policy-not-effective", "trade-attribute-missing"})
CENT = Decimal("0.01")


def _no_tick(_: int) -> None:
    """A progress callback that ignores progress."""


@dataclass(frozen=True, slots=True)
class Period:
    """The trade dates to replay, both ends included; an end left as None is open."""

    first: dt.date | None = None
    last: dt.date | None = None

    def contains(self, day: dt.date) -> bool:
        return (self.first is None or day >= self.first) and (self.last is None or day <= self.last)


@dataclass(frozen=True, slots=True)
class RecordedTrade:
    """A trade to replay and where it came from."""

    source: str
    trade: Trade

    @property
    def sort_key(self) -> tuple[dt.date, dt.datetime, str]:
        order = self.trade.order
        return (order.trade_date, order.entered_at, order.id)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One order under one version: an allocation, or the codes of its refusal."""

    allocation: Allocation | None
    refused: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        return "allocated" if self.allocation is not None else "refused: " + ", ".join(self.refused)


@dataclass(frozen=True, slots=True)
class AccountImpact:
    """One account of one order whose quantity differs between the versions."""

    order_id: str
    trade_date: dt.date
    account: str
    old: Exact
    new: Exact
    price: Fraction | None
    causes: tuple[str, ...]
    attribution: str  # direct | order | policy | governance | refusal
    delta: Exact  # new - old
    exact_value: Exact  # delta x the order's average price, exact (0 when no price is known)

    @classmethod
    def of(cls, order_id: str, trade_date: dt.date, account: str, old: Exact, new: Exact,
           price: Fraction | None, causes: tuple[str, ...], attribution: str) -> AccountImpact:
        """Build a row, computing the change and its value once (reports read them many times)."""
        old, new = exact(old), exact(new)
        delta = new - old
        return cls(order_id, trade_date, account, old, new, price, causes, attribution, delta,
                   exact(delta * price) if price is not None else 0)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle with integers: a Fraction pickles as text, and parsing it back dominated parallel replays."""
        price = None if self.price is None else (self.price.numerator, self.price.denominator)
        return (_row, (self.order_id, self.trade_date, self.account, self.old, self.new, price, self.causes,
                       self.attribution))


@functools.lru_cache(maxsize=1024)
def _price(numerator: int, denominator: int) -> Fraction:
    """An order's price, built once for all its rows."""
    return Fraction(numerator, denominator)


def _row(order_id: str, trade_date: dt.date, account: str, old: Exact, new: Exact, price: tuple[int, int] | None,
         causes: tuple[str, ...], attribution: str) -> AccountImpact:
    """Rebuild a pickled :class:`AccountImpact`."""
    return AccountImpact.of(order_id, trade_date, account, old, new, None if price is None else _price(*price),
                            causes, attribution)


def exact(value: Exact) -> Exact:
    """``value`` as an int when it is whole: ints add, compare and pickle far faster than Fractions."""
    return value.numerator if value.denominator == 1 else value


def _magnitude(value: Exact) -> Exact:
    return -value if value < 0 else value


def exact_sum(values: Iterable[Exact]) -> Fraction:
    """The exact sum of ``values``. Numerators are added per denominator first: rows of one order
    share a denominator, so this is far cheaper than adding fractions one by one."""
    by_denominator: dict[int, int] = {}
    for value in values:
        by_denominator[value.denominator] = by_denominator.get(value.denominator, 0) + value.numerator
    return sum((Fraction(numerator, denominator) for denominator, numerator in by_denominator.items()), Fraction(0))


@dataclass(frozen=True, slots=True)
class OrderImpact:
    """One replayed order whose outcome differs between the versions."""

    order_id: str
    trade_date: dt.date
    source: str
    old_status: str
    new_status: str
    accounts: tuple[AccountImpact, ...]

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle by constructor arguments (the default state protocol of frozen slots is slow)."""
        return (OrderImpact, (self.order_id, self.trade_date, self.source, self.old_status, self.new_status,
                              self.accounts))


@dataclass
class Tally:
    """Counts and changed orders of (part of) a replay; plain data, so it can cross process boundaries."""

    replayed: int = 0
    governed_old: int = 0
    governed_new: int = 0
    flags_changed: int = 0  # account-orders whose fired exceptions differ (quantity or not)
    money_changed: int = 0  # account-orders whose pieces, costs or net money differ (prices and costs diffs)
    outside_period: int = 0  # trades read but not replayed: their trade date is outside the period
    orders: list[OrderImpact] = field(default_factory=list)
    unreadable: list[Diagnostic] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.replayed += other.replayed
        self.governed_old += other.governed_old
        self.governed_new += other.governed_new
        self.flags_changed += other.flags_changed
        self.money_changed += other.money_changed
        self.outside_period += other.outside_period
        self.orders.extend(other.orders)
        self.unreadable.extend(other.unreadable)


@dataclass
class ImpactReport:
    """The outcome of a replay: counts, changed orders (by trade date and order id), unreadable inputs."""

    diff: PolicyDiff
    tally: Tally

    @property
    def replayed(self) -> int:
        return self.tally.replayed

    @property
    def orders(self) -> list[OrderImpact]:
        return self.tally.orders

    @property
    def unreadable(self) -> list[Diagnostic]:
        return self.tally.unreadable

    @cached_property
    def rows(self) -> list[AccountImpact]:
        return [row for order in self.orders for row in order.accounts]

    @cached_property
    def totals(self) -> dict[str, Any]:
        """Exact totals: orders and accounts changed, shares added and removed, value moved."""
        rows = self.rows
        return {
            "orders_replayed": self.tally.replayed,
            "orders_governed_old": self.tally.governed_old,
            "orders_governed_new": self.tally.governed_new,
            "orders_changed": len(self.orders),
            "account_allocations_changed": len(rows),
            "accounts_affected": len({row.account for row in rows}),
            "shares_added": exact_sum(row.delta for row in rows if row.delta > 0),
            "shares_removed": exact_sum(-row.delta for row in rows if row.delta < 0),
            "value_added": exact_sum(row.exact_value for row in rows if row.delta > 0),
            "value_removed": exact_sum(-row.exact_value for row in rows if row.delta < 0),
            "exceptions_changed": self.tally.flags_changed,
            **({"account_money_changed": self.tally.money_changed} if money_changes(self.diff) else {}),
            "trades_outside_period": self.tally.outside_period,
            "unreadable_trades": len(self.unreadable),
        }

    @cached_property
    def by_cause(self) -> list[tuple[str, int, int, Fraction, Fraction]]:
        """Per cause: account-orders, orders, shares moved (|change|) and value moved; a row with
        several causes counts under each."""
        table: dict[str, list[AccountImpact]] = {}
        for row in self.rows:
            for cause in row.causes:
                table.setdefault(cause, []).append(row)
        return sorted(((cause, len({(r.order_id, r.account) for r in rows}), len({r.order_id for r in rows}),
                        exact_sum(_magnitude(r.delta) for r in rows), exact_sum(_magnitude(r.exact_value) for r in rows))
                       for cause, rows in table.items()), key=lambda item: (-item[1], item[0]))


    @cached_property
    def by_account(self) -> list[tuple[str, int, Fraction, Fraction, Fraction]]:
        """Per account (the examiner's "which clients?"): orders changed, shares gained, shares lost,
        and the net value at each order's average price; the accounts most moved first."""
        table: dict[str, list[AccountImpact]] = {}
        for row in self.rows:
            table.setdefault(row.account, []).append(row)
        summary = [(account, len({r.order_id for r in rows}), exact_sum(r.delta for r in rows if r.delta > 0),
                    exact_sum(-r.delta for r in rows if r.delta < 0), exact_sum(r.exact_value for r in rows))
                   for account, rows in table.items()]
        return sorted(summary, key=lambda item: (-(item[2] + item[3]), item[0]))


def money(value: Exact) -> Decimal:
    """A value for display: cents, rounded half-even from the exact amount."""
    return present(Fraction(value), 2, "half_even").quantize(CENT)


# -- reading -------------------------------------------------------------------------------------
def trade_files(folder: str) -> list[str]:
    """Trade documents in ``folder`` and below: every ``*.json`` except rotation states (``*.state.json``)."""
    return sorted(str(p) for p in Path(folder).rglob("*.json") if not p.name.endswith(".state.json"))


def read_trades(paths: Sequence[str], tick: Tick = _no_tick) -> tuple[list[RecordedTrade], list[Diagnostic]]:
    """Load trade documents; a file that is not a valid trade is reported, not fatal."""
    trades: list[RecordedTrade] = []
    problems: list[Diagnostic] = []
    for path in paths:
        try:
            trades.append(RecordedTrade(path, load_trade(path)))
        except FairallocError as error:
            problems.extend(error.diagnostics[:1])
        tick(1)
    return trades, problems


# -- replaying -----------------------------------------------------------------------------------
class _Replayer:
    """Allocates trades in order under one policy version, carrying its rotation states and its
    fairness states (cumulative rounding advantages, every group starting at 0)."""

    def __init__(self, policy: Policy, states: Mapping[str, RotationState]) -> None:
        self.policy = policy
        self.states = dict(states)
        self.fairness: dict[str, FairnessState] = {}

    def run(self, recorded: RecordedTrade) -> Outcome:
        policy = self.policy
        try:
            group = policy.rotation_group(recorded.trade)
            state = self.states.get(group) if group is not None else None
            fair_group = policy.fairness_group(recorded.trade)
            fairness = self.fairness.get(fair_group) if fair_group is not None else None
            allocation = allocate(policy, recorded.trade, state, file=recorded.source, fairness=fairness)
        except FairallocError as error:  # refused, or the trade lacks data this version reads
            return Outcome(None, tuple(error.codes))
        if group is not None and allocation.rotation_after is not None:
            self.states[group] = allocation.rotation_after
        if fair_group is not None and allocation.fairness_after is not None:
            self.fairness[fair_group] = allocation.fairness_after
        return Outcome(allocation)


def _facts(account: AccountAllocation | None) -> dict[str, Any]:
    """The per-account facts attribution compares (everything but the rounding step)."""
    if account is None:
        return {}
    return {"rules": frozenset(account.rules), "denied_by": account.denied_by, "cap": account.cap,
            "weight": account.weight, "rotation": account.rotation_rank, "tier": account.tier,
            "odd_lot": account.odd_lot is not None}


def _cap_binds(*accounts: AccountAllocation | None) -> bool:
    """Whether the account received exactly its cap under either version."""
    return any(a is not None and a.cap is not None and a.quantity == a.cap for a in accounts)


class _Attributor:
    """Maps differences in per-account facts to the diff items that explain them."""

    def __init__(self, diff: PolicyDiff) -> None:
        changes = diff.allocation_changes
        self.flags = {rule.id for policy in (diff.old, diff.new) for rule in policy.rules if rule.action == "flag"}
        self.everything = [change.label for change in changes] or ["policy"]
        self.by_rule = {change.rule: change.label for change in changes if change.rule is not None}
        self.minimum = [change.label for change in changes if change.pointer.startswith("/minimum")]
        self.weight = [c.label for c in changes if c.pointer.startswith(("/pro_rata", "/attributes"))]
        self.rotation = [c.label for c in changes if c.pointer.startswith("/rotation")]
        self.caps = [c.label for c in changes if c.pointer.startswith("/caps")]
        self.tiers = [c.label for c in changes if c.pointer.startswith(("/pro_rata/priority", "/attributes"))]
        self.odd_lots = [c.label for c in changes if c.pointer.startswith("/odd_lots")]
        self.general = [c.label for c in changes if c.rule is None and not c.pointer.startswith("/minimum")] or [
            c.label for c in changes] or ["policy"]
        self.governance = [c.label for c in changes if c.pointer.startswith(("/applies_to", "/effective", "/attributes"))]

    def refusal(self, codes: tuple[str, ...]) -> tuple[list[str], str]:
        """Causes of one version refusing an order the other allocates, and how they were found."""
        if set(codes) & _GOVERNANCE_CODES and self.governance:
            return self.governance, "governance"
        return self.everything, "refusal"

    def direct(self, old: AccountAllocation | None, new: AccountAllocation | None) -> list[str]:
        a, b = _facts(old), _facts(new)
        causes: list[str] = []
        fired = (set(a.get("rules", ())) ^ set(b.get("rules", ()))) - self.flags
        causes.extend(sorted(self.by_rule[rule] for rule in fired if rule in self.by_rule))
        if a.get("denied_by") != b.get("denied_by") and "minimum" in (a.get("denied_by"), b.get("denied_by")):
            causes.extend(self.minimum)
        if a.get("cap") != b.get("cap") and not fired and _cap_binds(old, new):
            own_rules = set(a.get("rules", ())) | set(b.get("rules", ()))
            causes.extend(self.caps + sorted(self.by_rule[rule] for rule in own_rules if rule in self.by_rule))
        # A weight or rotation position can also shift because other accounts left the order;
        # only a diff that changed the weight or the rotation makes it a cause.
        if a.get("weight") != b.get("weight"):
            causes.extend(self.weight)
        if a.get("rotation") != b.get("rotation"):
            causes.extend(self.rotation)
        if a.get("tier") != b.get("tier"):
            causes.extend(self.tiers)
        if a.get("odd_lot") != b.get("odd_lot"):
            causes.extend(self.odd_lots)
        return list(dict.fromkeys(causes))


def _compare(attributor: _Attributor, recorded: RecordedTrade, old: Outcome, new: Outcome) -> OrderImpact | None:
    """The impact on one order, or None when both versions give the same quantities."""
    order = recorded.trade.order
    before = {a.account: a for a in old.allocation.accounts} if old.allocation else {}
    after = {a.account: a for a in new.allocation.accounts} if new.allocation else {}
    zero = Fraction(0)
    changed = [account for account in sorted(set(before) | set(after))
               if (before[account].quantity if account in before else zero)
               != (after[account].quantity if account in after else zero)]
    if not changed and (old.allocation is None) == (new.allocation is None):
        return None
    either = old.allocation or new.allocation
    price = either.average_price if either is not None else None
    refused = old.refused or new.refused
    direct = {account: attributor.direct(before.get(account), after.get(account)) for account in changed}
    order_causes = list(dict.fromkeys(cause for causes in direct.values() for cause in causes))
    rows = []
    for account in changed:
        if refused:
            causes, how = attributor.refusal(refused)
        elif direct[account]:
            causes, how = direct[account], "direct"
        elif order_causes:
            causes, how = order_causes, "order"
        else:
            causes, how = attributor.general, "policy"
        rows.append(AccountImpact.of(order.id, order.trade_date, account,
                                  before[account].quantity if account in before else zero,
                                  after[account].quantity if account in after else zero,
                                  price, tuple(causes), how))
    return OrderImpact(order.id, order.trade_date, recorded.source, old.status, new.status, tuple(rows))


def _exceptions_changed(old: Outcome, new: Outcome) -> int:
    def fired(outcome: Outcome) -> dict[str, frozenset[str]]:
        if outcome.allocation is None:
            return {}
        table: dict[str, set[str]] = {}
        for record in outcome.allocation.exceptions:
            table.setdefault(record.account, set()).add(record.rule)
        return {account: frozenset(rules) for account, rules in table.items()}

    a, b = fired(old), fired(new)
    return sum(1 for account in set(a) | set(b) if a.get(account) != b.get(account))


def _money_changed(old: Outcome, new: Outcome) -> int:
    """Account-orders whose settlement differs: the pieces they receive, their costs or net money."""
    def money(outcome: Outcome) -> dict[str, tuple[str, str]]:
        if outcome.allocation is None:
            return {}
        return {entry["account"]: (canonical_json(entry.get("pieces")), canonical_json(entry.get("money")))
                for entry in outcome.allocation.document()["allocations"]}

    a, b = money(old), money(new)
    return sum(1 for account in set(a) | set(b) if a.get(account) != b.get(account))


def replay(diff: PolicyDiff, trades: Iterable[RecordedTrade], tick: Tick = _no_tick,
           states: Mapping[str, RotationState] | None = None) -> Tally:
    """Replay ``trades`` under ``diff.old`` and ``diff.new`` in trade order; count and collect what changes.

    ``states`` are the rotation states each version starts from, by group (default: position 0).
    """
    tally = Tally()
    old, new = _Replayer(diff.old, states or {}), _Replayer(diff.new, states or {})
    attributor = _Attributor(diff)
    settles = bool(money_changes(diff))
    for recorded in sorted(trades, key=lambda t: t.sort_key):
        before, after = old.run(recorded), new.run(recorded)
        tally.replayed += 1
        tally.governed_old += before.allocation is not None
        tally.governed_new += after.allocation is not None
        tally.flags_changed += _exceptions_changed(before, after)
        if settles:
            tally.money_changed += _money_changed(before, after)
        impact = _compare(attributor, recorded, before, after)
        if impact is not None:
            tally.orders.append(impact)
        tick(1)
    return tally


def _read_and_replay(diff: PolicyDiff, paths: Sequence[str], period: Period, tick: Tick = _no_tick) -> Tally:
    trades, problems = read_trades(paths, tick)
    inside = [recorded for recorded in trades if period.contains(recorded.trade.order.trade_date)]
    tick(len(trades) - len(inside))
    tally = replay(diff, inside, tick)
    tally.unreadable.extend(problems)
    tally.outside_period += len(trades) - len(inside)
    return tally


_WORKER_DIFF: PolicyDiff | None = None  # set in each worker process by _start_worker


def _start_worker(old_source: str, old_file: str, new_source: str, new_file: str) -> None:
    """Compile both versions once per worker (compiled policies hold closures and cannot be pickled)."""
    global _WORKER_DIFF
    _WORKER_DIFF = diff_policies(policy_from_text(old_source, old_file), policy_from_text(new_source, new_file))


def _worker_chunk(job: tuple[list[str], Period]) -> Tally:
    assert _WORKER_DIFF is not None
    return _read_and_replay(_WORKER_DIFF, *job)


def _parallel(diff: PolicyDiff, paths: list[str], period: Period, workers: int, tick: Tick) -> Tally:
    chunks = [(paths[i : i + CHUNK], period) for i in range(0, len(paths), CHUNK)]
    tally = Tally()
    arguments = (diff.old.source, diff.old.file, diff.new.source, diff.new.file)
    with multiprocessing.Pool(workers, initializer=_start_worker, initargs=arguments) as pool:
        for part in pool.imap_unordered(_worker_chunk, chunks):
            tally.add(part)
            tick(2 * (part.replayed + part.outside_period + len(part.unreadable)))
    return tally


def impact_of(diff: PolicyDiff, folder: str, tick: Tick = _no_tick, workers: int | None = None,
              period: Period = Period()) -> ImpactReport:
    """Read every trade document under ``folder`` and replay those of ``period`` under both versions.

    ``tick`` is called with the number of steps done (two per trade: read, replay). Without a
    rotation or fairness over time in either version the order of trades cannot matter, so chunks of trades are replayed
    in ``workers`` processes (default: one per CPU); with a rotation or fairness over time the
    replay is sequential.
    """
    if not os.path.isdir(folder):
        raise FileAccessError(Diagnostic("impact-trades", f"not a folder of trade documents: {folder}",
                                         Location(folder), "give a folder containing trade JSON documents"))
    paths = trade_files(folder)
    count = min(workers or os.cpu_count() or 1, len(paths) // CHUNK)
    stateful = any(policy.rotation is not None or policy.fairness is not None for policy in (diff.old, diff.new))
    if count > 1 and not stateful:
        tally = _parallel(diff, paths, period, count, tick)
    else:
        tally = _read_and_replay(diff, paths, period, tick)
    tally.orders.sort(key=lambda order: (order.trade_date, order.order_id, order.source))  # the same either way
    return ImpactReport(diff, tally)


def impact_of_recorded(diff: PolicyDiff, trades: Sequence[RecordedTrade], states: Mapping[str, RotationState],
                       tick: Tick = _no_tick) -> ImpactReport:
    """Replay trades already read (e.g. from the ledger) from the given rotation states, in one process."""
    tally = replay(diff, trades, tick, states)
    tally.orders.sort(key=lambda order: (order.trade_date, order.order_id, order.source))
    return ImpactReport(diff, tally)


# -- rendering -----------------------------------------------------------------------------------
def quantity_text(value: Exact) -> str:
    """A quantity for people: an integer, or exact decimals (a repeating fraction shown as n/d)."""
    if value.denominator == 1:
        return str(value.numerator)
    shown = present(Fraction(value), 6)
    return str(shown) if Fraction(shown) == value else f"{value.numerator}/{value.denominator}"


def signed(value: Exact) -> str:
    return ("+" if value > 0 else "") + quantity_text(value)


def summary_rows(report: ImpactReport) -> list[tuple[str, str]]:
    """The headline figures as (label, value) pairs, the same for the terminal and Markdown."""
    totals = report.totals
    return [
        ("orders replayed", str(totals["orders_replayed"])),
        ("orders governed (old → new)", f"{totals['orders_governed_old']} → {totals['orders_governed_new']}"),
        ("orders whose allocation changes", str(totals["orders_changed"])),
        ("account allocations that change", str(totals["account_allocations_changed"])),
        ("distinct accounts affected", str(totals["accounts_affected"])),
        ("shares added to accounts", quantity_text(totals["shares_added"])),
        ("shares taken from accounts", quantity_text(totals["shares_removed"])),
        ("value added (at each order's average price)", str(money(totals["value_added"]))),
        ("value taken (at each order's average price)", str(money(totals["value_removed"]))),
        ("account-orders whose fired exceptions change", str(totals["exceptions_changed"])),
        *([("account-orders whose prices, commissions, fees or net money change",
            str(totals["account_money_changed"]))] if "account_money_changed" in totals else []),
        ("trades outside the period (not replayed)", str(totals["trades_outside_period"])),
        ("trade files that could not be read", str(totals["unreadable_trades"])),
    ]


def cause_rows(report: ImpactReport) -> list[tuple[str, str, str, str, str]]:
    return [(cause, str(pairs), str(orders), quantity_text(shares), str(money(value)))
            for cause, pairs, orders, shares, value in report.by_cause]


def client_rows(report: ImpactReport, limit: int) -> list[tuple[str, ...]]:
    rows = report.by_account if limit <= 0 else report.by_account[:limit]
    return [(account, str(orders), quantity_text(gained), quantity_text(lost), str(money(value)))
            for account, orders, gained, lost, value in rows]


def account_rows(report: ImpactReport, limit: int) -> list[tuple[str, ...]]:
    rows = report.rows if limit <= 0 else report.rows[:limit]
    return [(row.order_id, row.trade_date.isoformat(), row.account, quantity_text(row.old), quantity_text(row.new),
             signed(row.delta), str(money(row.exact_value)), ", ".join(row.causes), row.attribution) for row in rows]


ACCOUNT_COLUMNS = ("order", "trade date", "account", "old", "new", "change", "value", "cause", "attribution")
CAUSE_COLUMNS = ("cause", "account-orders", "orders", "shares moved", "value moved")
CLIENT_COLUMNS = ("account", "orders changed", "shares gained", "shares lost", "net value")
NOTE = ("Values are the change in shares times the order's volume-weighted average price, computed exactly and "
        "rounded half-even to cents for display. Attribution `direct`: the account's own rules, cap, minimum, "
        "weight or rotation position differ; `order`: re-spread after another account of the order changed; "
        "`policy`, `refusal`: heuristic, no account-specific difference was found.")


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines.extend("| " + " | ".join(cell(value) for value in row) + " |" for row in rows)
    return lines


def impact_markdown(report: ImpactReport, limit: int = 50) -> str:
    """The impact report as Markdown for a pull request (after the diff's own Markdown)."""
    lines = [f"### Impact on {report.replayed} recorded orders", ""]
    lines += _table(("", "count"), summary_rows(report)) + [""]
    if report.orders:
        lines += ["**By cause** (an account-order with several causes counts under each)", ""]
        lines += _table(CAUSE_COLUMNS, cause_rows(report)) + [""]
        clients = client_rows(report, limit)
        lines += [f"**By account** ({len(clients)} of {len(report.by_account)} shown, most shares moved first)", ""]
        lines += _table(CLIENT_COLUMNS, clients) + [""]
        shown = account_rows(report, limit)
        lines += [f"**Changed allocations** ({len(shown)} of {len(report.rows)} shown)", ""]
        lines += _table(ACCOUNT_COLUMNS, shown) + [""]
    else:
        lines += ["No recorded order would be allocated differently.", ""]
    for problem in report.unreadable[:10]:
        lines.append(f"- unreadable: `{problem.render().splitlines()[0]}`")
    lines += ["", f"_{NOTE}_"]
    return "\n".join(lines).rstrip("\n") + "\n"


def impact_json(report: ImpactReport) -> dict[str, Any]:
    """The full report as JSON: exact quantities as text, values rounded to cents."""
    totals = report.totals
    return {
        "totals": {key: (quantity_text(value) if key.startswith("shares") else str(money(value))
                         if key.startswith("value") else value) for key, value in totals.items()},
        "by_cause": [dict(zip(CAUSE_COLUMNS, row)) for row in cause_rows(report)],
        "by_account": [dict(zip(CLIENT_COLUMNS, row)) for row in client_rows(report, 0)],
        "orders": [{
            "order_id": order.order_id, "trade_date": order.trade_date.isoformat(), "source": order.source,
            "old": order.old_status, "new": order.new_status,
            "accounts": [{"account": row.account, "old": quantity_text(row.old), "new": quantity_text(row.new),
                          "change": signed(row.delta), "value": str(money(row.exact_value)),
                          "causes": list(row.causes), "attribution": row.attribution} for row in order.accounts],
        } for order in report.orders],
        "unreadable": [problem.to_json() for problem in report.unreadable],
    }
