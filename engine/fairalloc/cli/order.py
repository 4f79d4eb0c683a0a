"""``fairalloc order``: the recorded workflow of one block order, step by step.

statement → enter (hard stop) → fills → allocate → override → review; ``show`` prints the record.
Trade documents follow the OMS contract (trade.schema.json); each step takes the part it records.
"""

from __future__ import annotations

import argparse
import re
from decimal import Decimal

from fairalloc.cli._ledger import add_format_option, add_ledger_option, add_user_option, emit_json, open_ledger
from fairalloc.errors import Diagnostic, ExitCode, InputError
from fairalloc.ledger import workflow
from fairalloc.trade import Trade, load_trade


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("order", help="record an order's workflow in the ledger")
    sub = parser.add_subparsers(dest="order_command", metavar="STEP", required=True)

    def step(name: str, help_text: str, handler: object, *, trade: bool = False,
             order_id: bool = False, user: bool = True) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text)
        if trade:
            command.add_argument("trade", help="trade document (JSON, trade.schema.json)")
        if order_id:
            command.add_argument("order_id", help="the block order's id")
        if user:
            add_user_option(command)
        add_ledger_option(command)
        command.set_defaults(handler=handler)
        return command

    step("statement", "record the pre-trade allocation statement (before the order)", _statement,
         trade=True)
    enter = step("enter", "enter the order (refused without a covering statement)", _enter,
                 trade=True)
    enter.add_argument("--policy", metavar="ID", help="policy id (needed if several are published)")
    step("fills", "record the trade document's fills (idempotent by fill id)", _fills, trade=True)
    allocate = step("allocate", "allocate the fills under the governing policy version", _allocate,
                    order_id=True)
    add_format_option(allocate)
    override = step("override", "replace the allocation manually (pending CCO review)", _override,
                    order_id=True)
    override.add_argument("--set", dest="quantities", action="append", required=True,
                          metavar="ACCOUNT=QUANTITY", help="an account's quantity; repeat per account")
    override.add_argument("--reason", required=True, help="a reason code the policy allows")
    override.add_argument("--memo", required=True, help="the written, contemporaneous explanation")
    review = step("review", "approve or reject the pending override (CCO)", _review, order_id=True)
    decision = review.add_mutually_exclusive_group(required=True)
    decision.add_argument("--approve", action="store_true")
    decision.add_argument("--reject", action="store_true")
    review.add_argument("--memo", default="", help="the reviewer's note")
    show = step("show", "print everything recorded about an order", _show, order_id=True, user=False)
    add_format_option(show)


def _trade(path: str) -> Trade:
    return load_trade(path)


def _statement(args: argparse.Namespace) -> int:
    trade = _trade(args.trade)
    with open_ledger(args) as ledger:
        event = workflow.record_statement(ledger, args.user, trade)
    print(f"statement for order {event.order_id} recorded at {event.recorded_at} (event {event.seq})")
    return int(ExitCode.OK)


def _enter(args: argparse.Namespace) -> int:
    trade = _trade(args.trade)
    with open_ledger(args) as ledger:
        event = workflow.enter_order(ledger, args.user, trade, args.policy)
    policy = event.data()["policy"]
    print(f"order {event.order_id} entered at {event.recorded_at} (event {event.seq}) under "
          f"{policy['id']}@{policy['version']} {policy['digest']}")
    return int(ExitCode.OK)


def _fills(args: argparse.Namespace) -> int:
    trade = _trade(args.trade)
    doc = trade.to_json()
    with open_ledger(args) as ledger:
        result = workflow.record_fills(ledger, args.user, doc["order"]["id"], doc["fills"])
    for event in result.recorded:
        print(f"fill {event.data()['fill']['id']} recorded (event {event.seq})")
    for fill_id in result.already:
        print(f"fill {fill_id} already recorded; not counted again")
    return int(ExitCode.OK)


def _allocate(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        record = workflow.allocate_order(ledger, args.user, args.order_id)
    if args.format == "json":
        emit_json({"event": record.event.seq, "recorded_at": record.event.recorded_at,
                   "late": record.late, "deadline": record.deadline,
                   "rotation_before": record.rotation_before, "rotation_after": record.rotation_after,
                   "document": record.document})
        return int(ExitCode.OK)
    doc = record.document
    print(f"order {args.order_id} allocated at {record.event.recorded_at} (event {record.event.seq}): "
          f"{doc['filled']} filled at {doc['average_price']}")
    for line in doc["allocations"]:
        print(f"  {line['account']}: {line['quantity']} @ {line['average_price'] or '-'}")
    if record.late:
        print(f"LATE: after the policy's cut-off {record.deadline}; an alert was raised for the CCO")
    return int(ExitCode.OK)


def _quantities(items: list[str]) -> dict[str, Decimal]:
    chosen: dict[str, Decimal] = {}
    for item in items:
        match = re.fullmatch(r"([^=]+)=((?:0|[1-9][0-9]*)(?:\.[0-9]+)?)", item.strip())
        if not match:
            raise InputError(Diagnostic("bad-override-quantity", f"not ACCOUNT=QUANTITY: {item!r}",
                                        hint="e.g. --set CLIENT-A=15000"))
        chosen[match.group(1)] = Decimal(match.group(2))
    return chosen


def _override(args: argparse.Namespace) -> int:
    quantities = _quantities(args.quantities)
    with open_ledger(args) as ledger:
        event = workflow.request_override(ledger, args.user, args.order_id, quantities, args.reason,
                                          args.memo)
    print(f"override of order {args.order_id} recorded (event {event.seq}); pending CCO review, "
          "alert raised")
    return int(ExitCode.OK)


def _review(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        event = workflow.review_override(ledger, args.user, args.order_id, args.approve, args.memo)
    print(f"override of order {args.order_id} {event.data()['decision']} by {args.user} "
          f"(event {event.seq})")
    return int(ExitCode.OK)


def _show(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        record = workflow.read_order(ledger, args.order_id)
    events = [e for e in (record.statement, record.entered, *record.fills, record.allocation,
                          *record.overrides, *record.reviews, *record.alerts) if e is not None]
    events.sort(key=lambda e: e.seq)
    if args.format == "json":
        emit_json([{"seq": e.seq, "recorded_at": e.recorded_at, "actor": e.actor, "kind": e.kind,
                    "payload": e.data(), "hash": e.hash} for e in events])
        return int(ExitCode.OK)
    for event in events:
        print(f"{event.seq:>6}  {event.recorded_at}  {event.kind:<20} {event.actor}")
    return int(ExitCode.OK)
