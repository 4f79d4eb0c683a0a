"""``fairalloc order``: the recorded workflow of one block order, step by step.

statement → enter (hard stop) → fills → allocate → override → review; ``fill correct`` and
``fill bust`` record a broker's corrections; ``show`` prints the record. Trade documents follow
the OMS contract (trade.schema.json); each step takes the part it records.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import msgspec.structs

from fairalloc.cli._ledger import acting, add_format_option, add_ledger_option, add_user_option, emit_json, open_ledger
from fairalloc.errors import Diagnostic, ExitCode, FairallocError, InputError
from fairalloc.ledger import workflow
from fairalloc.names import escape
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

    statement = step("statement", "record the pre-trade allocation statement (before the order)",
                     _statement, trade=True)
    statement.add_argument("--late-reason", metavar="CODE",
                           choices=sorted(workflow.LATE_STATEMENT_REASONS),
                           help="record a statement after the trade as an exception (alerts the CCO)")
    statement.add_argument("--memo", help="why the statement is late (with --late-reason)")
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
    fill = sub.add_parser("fill", help="a broker's correction or bust of a recorded fill")
    fill_sub = fill.add_subparsers(dest="fill_command", metavar="CHANGE", required=True)
    correct = fill_sub.add_parser("correct", help="record a corrected execution (FIX ExecType G)")
    bust = fill_sub.add_parser("bust", help="record a busted execution (FIX ExecType H)")
    for command in (correct, bust):
        command.add_argument("order_id", help="the block order's id")
        command.add_argument("fill_id", help="the fill being corrected or busted")
        add_user_option(command)
        add_ledger_option(command)
    correct.add_argument("--id", required=True, dest="new_id", help="the correction's own fill id")
    correct.add_argument("--quantity", required=True, help="the corrected quantity")
    correct.add_argument("--price", required=True, help="the corrected price")
    correct.add_argument("--executed-at", required=True, help="the execution time (ISO 8601)")
    correct.add_argument("--venue", help="the execution venue")
    correct.set_defaults(handler=_correct)
    bust.add_argument("--id", dest="new_id", help="the bust's own id (default bust:FILL_ID)")
    bust.set_defaults(handler=_bust)
    show = step("show", "print everything recorded about an order", _show, order_id=True, user=False)
    add_format_option(show)


def _trade(path: str) -> Trade:
    return load_trade(path)


@contextmanager
def _in_file(path: str) -> Iterator[None]:
    """Name the trade file in the location of a refusal the workflow points into the document
    (``/fills``, ``/statement/accounts/2``): the workflow sees the document, not its file."""
    try:
        yield
    except FairallocError as error:
        if not any(d.location.pointer is not None and d.location.file is None for d in error.diagnostics):
            raise
        located = [msgspec.structs.replace(d, location=msgspec.structs.replace(d.location, file=path))
                   if d.location.pointer is not None and d.location.file is None else d for d in error.diagnostics]
        raise type(error)(located) from None


def _statement(args: argparse.Namespace) -> int:
    trade = _trade(args.trade)
    if args.memo is not None and args.late_reason is None:
        raise InputError(Diagnostic("bad-late-statement", "--memo goes with --late-reason",
                                    hint="a statement on time needs no memo"))
    with _in_file(args.trade), open_ledger(args) as ledger:
        event = workflow.record_statement(ledger, acting(args, ledger), trade,
                                          late_reason=args.late_reason, late_memo=args.memo)
    late = event.data().get("late")
    print(f"statement for order {event.order_id} recorded at {event.recorded_at} (event {event.seq})"
          + (f"; LATE ({late['reason_code']}): an alert was raised for the CCO" if late else ""))
    return int(ExitCode.OK)


def _enter(args: argparse.Namespace) -> int:
    trade = _trade(args.trade)
    with _in_file(args.trade), open_ledger(args) as ledger:
        event = workflow.enter_order(ledger, acting(args, ledger), trade, args.policy)
    policy = event.data()["policy"]
    print(f"order {event.order_id} entered at {event.recorded_at} (event {event.seq}) under "
          f"{policy['id']}@{policy['version']} {policy['digest']}")
    return int(ExitCode.OK)


def _fills(args: argparse.Namespace) -> int:
    trade = _trade(args.trade)
    doc = trade.to_json()
    with _in_file(args.trade), open_ledger(args) as ledger:
        result = workflow.record_fills(ledger, acting(args, ledger), doc["order"]["id"], doc["fills"])
    for event in result.recorded:
        print(f"fill {event.data()['fill']['id']} recorded (event {event.seq})")
    for fill_id in result.already:
        print(f"fill {fill_id} already recorded; not counted again")
    _print_reallocation(result.reallocation)
    return int(ExitCode.OK)


def _print_reallocation(record: workflow.AllocationRecord | None) -> None:
    if record is None:
        return
    data = record.event.data()
    print(f"order {record.event.order_id} RE-ALLOCATED ({data['reason']}, event {record.event.seq}; "
          f"replaces event {data['replaces']}); an alert was raised for the CCO")
    for line in record.document["allocations"]:
        print(f"  {line['account']}: {line['quantity']}")


def _correct(args: argparse.Namespace) -> int:
    fill = {"id": args.new_id, "quantity": args.quantity, "price": args.price,
            "executed_at": args.executed_at}
    if args.venue:
        fill["venue"] = args.venue
    with open_ledger(args) as ledger:
        change = workflow.correct_fill(ledger, acting(args, ledger), args.order_id, args.fill_id, fill)
    print(f"fill {args.fill_id} of order {args.order_id} corrected by {args.new_id} "
          f"(event {change.event.seq})")
    _print_reallocation(change.reallocation)
    return int(ExitCode.OK)


def _bust(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        change = workflow.bust_fill(ledger, acting(args, ledger), args.order_id, args.fill_id, args.new_id)
    print(f"fill {args.fill_id} of order {args.order_id} busted (event {change.event.seq})")
    _print_reallocation(change.reallocation)
    return int(ExitCode.OK)


def _allocate(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        record = workflow.allocate_order(ledger, acting(args, ledger), args.order_id)
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
        event = workflow.request_override(ledger, acting(args, ledger), args.order_id, quantities, args.reason,
                                          args.memo)
    print(f"override of order {args.order_id} recorded (event {event.seq}); pending CCO review, "
          "alert raised")
    return int(ExitCode.OK)


def _review(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        event = workflow.review_override(ledger, acting(args, ledger), args.order_id, args.approve,
                                         args.memo)
    print(f"override of order {args.order_id} {event.data()['decision']} by {event.actor} "
          f"(event {event.seq})")
    return int(ExitCode.OK)


def _show(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        record = workflow.read_order(ledger, args.order_id)
    events = [e for e in (record.statement, record.entered, *record.fills, *record.allocations,
                          *record.overrides, *record.reviews, *record.alerts) if e is not None]
    events.sort(key=lambda e: e.seq)
    if args.format == "json":
        emit_json([{"seq": e.seq, "recorded_at": e.recorded_at, "actor": e.actor, "kind": e.kind,
                    "source": e.source, "service": e.service, "on_behalf_of": e.on_behalf_of,
                    "payload": e.data(), "hash": e.hash} for e in events])
        return int(ExitCode.OK)
    for event in events:
        behalf = f" (on behalf of {escape(event.on_behalf_of)})" if event.on_behalf_of else ""
        via = f" via {event.service}" if event.service else ""
        print(f"{event.seq:>6}  {event.recorded_at}  {event.kind:<20} {escape(event.actor)}{via}{behalf}")
    return int(ExitCode.OK)
