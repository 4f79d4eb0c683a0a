"""Pre-allocation controls: refuse a well-formed trade that the playbook says must not be allocated.

These are the checks a regulator expects an OMS to enforce before any share is handed out: intent
recorded before the order, fills after it, fills within the order, a statement that covers the
order exactly, no duplicates, no empty quantities (whether the policy governs the order is
:func:`fairalloc.context.check_policy_governs`).
All failing controls are reported together as a :class:`RefusedError` (exit status 5), each with
the JSON pointer of the offending value; ``docs/cli.md`` lists the codes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fairalloc.errors import Diagnostic, Location, RefusedError, pointer
from fairalloc.numbers import exact_sum

if TYPE_CHECKING:
    from fairalloc.trade import Trade


def check_controls(trade: Trade, file: str = "<trade>") -> list[Diagnostic]:
    """Every control ``trade`` fails on its own (independent of the policy)."""
    problems: list[Diagnostic] = []

    def refuse(code: str, message: str, *where: int | str, hint: str | None = None) -> None:
        problems.append(Diagnostic(code, message, Location(file, pointer=pointer(where)), hint))

    order, statement = trade.order, trade.statement
    if order.quantity <= 0:
        refuse("zero-quantity", "the order quantity is zero", "order", "quantity")
    if statement.recorded_at > order.entered_at:
        refuse(
            "statement-after-order",
            f"the allocation statement was recorded at {statement.recorded_at.isoformat()}, "
            f"after the order was entered at {order.entered_at.isoformat()}",
            "statement", "recorded_at",
            hint="intent must be documented before the order goes out; this trade cannot be allocated mechanically",
        )
    columns = statement.columns
    ids, intended = columns.ids, columns.intended
    if not columns.distinct or (ids and columns.least <= 0):
        # a statement's columns say whether an id repeats and its least quantity (found once per
        # trade); only a failing one is walked account by account to say where
        seen_accounts: dict[str, int] = {}
        for index, (account, quantity) in enumerate(zip(ids, intended)):
            if account in seen_accounts:
                refuse("duplicate-account", f"account '{account}' appears twice in the statement "
                       f"(first at /statement/accounts/{seen_accounts[account]})",
                       "statement", "accounts", index, "account")
            seen_accounts.setdefault(account, index)
            if quantity <= 0:
                refuse("zero-quantity", f"account '{account}' intends a quantity of zero",
                       "statement", "accounts", index, "intended",
                       hint="leave accounts that take no part out of the statement")
    total = columns.total
    if total != order.quantity:
        refuse("statement-total-mismatch",
               f"the statement intends {total} in total but the order is for {order.quantity}",
               "statement", "accounts",
               hint="the pre-trade statement must cover the whole order quantity")
    seen_fills: dict[str, int] = {}
    for index, fill in enumerate(trade.fills):
        if fill.id in seen_fills:
            refuse("duplicate-fill", f"fill '{fill.id}' appears twice (first at /fills/{seen_fills[fill.id]})",
                   "fills", index, "id", hint="a fill reported twice must be counted once")
        seen_fills.setdefault(fill.id, index)
        if fill.quantity <= 0:
            refuse("zero-quantity", f"fill '{fill.id}' has a quantity of zero", "fills", index, "quantity")
        if fill.executed_at < order.entered_at:
            refuse("fill-before-order",
                   f"fill '{fill.id}' executed at {fill.executed_at.isoformat()}, before the order was "
                   f"entered at {order.entered_at.isoformat()}",
                   "fills", index, "executed_at")
        if fill.trade_date is not None and fill.trade_date < order.trade_date:
            refuse("fill-before-order",
                   f"fill '{fill.id}' is dated {fill.trade_date.isoformat()}, before the order's trade date "
                   f"{order.trade_date.isoformat()}",
                   "fills", index, "trade_date", hint="a multi-day order's fills fall on its trade date or later")
        if order.limit_price is not None and (
            (order.side == "buy" and fill.price > order.limit_price)
            or (order.side != "buy" and fill.price < order.limit_price)
        ):
            refuse("fill-outside-limit",
                   f"fill '{fill.id}' at {fill.price} is outside the order's limit {order.limit_price}",
                   "fills", index, "price")
    filled = exact_sum(fill.quantity for fill in trade.fills)
    if filled > order.quantity:
        refuse("overfill", f"fills total {filled}, more than the order quantity {order.quantity}", "fills",
               hint="an overfill must be resolved with the broker before allocation")
    return problems


def refuse_if(problems: list[Diagnostic]) -> None:
    if problems:
        raise RefusedError(problems)
