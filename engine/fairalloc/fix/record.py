"""FIX messages through the ledger's recorded workflow — the one module that calls the ledger.

``record_messages`` first reads and checks the whole file (framing, references, conservation)
against what the ledger already holds, so a malformed message never reaches the ledger; then, in
file order, a 35=D records the pre-trade statement and enters the order (the hard stop: refused
unless the statement covers the order), a 35=8 trade records its fill, and a 35=P or 35=AS
records the broker's acknowledgement against the instruction it names (a reject raises an alert
for the CCO). Last, every order of the file with fills is allocated and its 35=J recorded as sent;
an order whose allocation changed since its last instruction gets AllocTransType 1 (replace) with
RefAllocID naming that instruction. Running the same file again answers as the first time did.

The steps are the ones :mod:`fairalloc.fix.session` takes message by message. The actor is the
identity the ledger authenticates, never a name from the messages.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fairalloc.errors import Diagnostic, FairallocError, InputError, Location, RefusedError
from fairalloc.fix.codec import Message
from fairalloc.fix.mapping import (
    INSTRUMENT,
    Ack,
    Book,
    Execution,
    FillEvent,
    Instruction,
    OrderInput,
    alloc_id,
    allocation_instruction,
)
from fairalloc.ledger import workflow
from fairalloc.ledger.identity import Actor
from fairalloc.ledger.store import Ledger, NewEvent
from fairalloc.trade import load_trade

RECORDS_FIX = workflow.MAY["allocate"]
"""Roles that may record a sent instruction or a broker's acknowledgement: those that allocate."""

_SIDE_CODES = {"buy": "1", "sell": "2", "sell_short": "5"}
T = TypeVar("T")


def actor(ledger: Ledger) -> Actor:
    """Who acts: the identity the ledger authenticates (the operating-system user on the embedded
    ledger, the connected database role on PostgreSQL), never a name from the messages."""
    return ledger.actor()


@dataclass(frozen=True, slots=True)
class Recorded:
    instructions: list[Instruction]
    acks: list[Ack]


def record_messages(ledger: Ledger, messages: list[Message], *, accounts: dict[str, dict[str, Any]] | None,
                    policy_id: str | None = None, sending_time: dt.datetime | None = None) -> Recorded:
    """Record ``messages`` in the ledger and return the 35=J messages sent (see the module)."""
    who = actor(ledger)
    book = Book(accounts)
    _seed(ledger, book, messages)
    book.read(messages)
    check_acks(ledger, book.acks)
    orders: dict[str, OrderInput] = {}
    for message in messages:
        if message.msg_type in ("D", "8"):
            order = book.orders[message.get(11) or ""]
            record_order_message(ledger, who, order, message, policy_id)
            orders[order.cl_ord_id] = order
    for ack in book.acks:
        _located(ack.message, lambda: _ack(ledger, who, ack))
    sent = (send(ledger, who, order, sending_time) for order in orders.values())
    return Recorded([outcome[0] for outcome in sent if outcome is not None], book.acks)


def record_order_message(ledger: Ledger, who: Actor, order: OrderInput, message: Message,
                         policy_id: str | None) -> None:
    """Record what one 35=D or 35=8 of ``order`` (already read into the book) says: the statement
    and entry of a 35=D in one transaction, each fill event of a 35=8 by the ledger's lifecycle."""
    if message.msg_type == "D":
        _located(message, lambda: _enter(ledger, who, order, policy_id))
        return
    for event in order.events:
        if event.message is message:
            _located(message, lambda: _fill(ledger, who, order.cl_ord_id, event))


def record_ack(ledger: Ledger, who: Actor, ack: Ack) -> None:
    """Record one broker acknowledgement (checked first: it must name an instruction sent)."""
    check_acks(ledger, [ack])
    _located(ack.message, lambda: _ack(ledger, who, ack))


def _located(message: Message, step: Callable[[], T]) -> T:
    """Run a ledger step; a refusal names the message it was for (line and type)."""
    try:
        return step()
    except FairallocError as error:
        error.diagnostics = [
            d if d.location.file is not None else
            Diagnostic(d.code, f"35={message.msg_type}: {d.message}",
                       Location(message.file, message.line, pointer=d.location.pointer, tag=35), d.hint)
            for d in error.diagnostics]
        raise


def _seed(ledger: Ledger, book: Book, messages: list[Message]) -> None:
    """Orders the file reports on but entered in an earlier run: taken from the ledger."""
    entered = {m.get(11) for m in messages if m.msg_type == "D"}
    wanted = {m.get(11) for m in messages if m.msg_type == "8"} - entered
    for cl_ord_id in sorted(filter(None, wanted)):
        report = next(m for m in messages if m.msg_type == "8" and m.get(11) == cl_ord_id)
        seed_order(ledger, book, cl_ord_id, report)


def seed_order(ledger: Ledger, book: Book, cl_ord_id: str, report: Message) -> None:
    """Put an order entered earlier (another run, or before the acceptor restarted) in the book
    with its fills in force, so that ``report`` and later ones can refer to it. An order the
    ledger has not entered is left out: the book refuses its reports (``fix-unknown-order``)."""
    with ledger.read() as session:
        record = workflow.order_record(session, cl_ord_id)
    if record.entered is None or record.statement is None:
        return
    document = record.trade_document()
    book.orders[cl_ord_id] = _order_from(document, report)
    for fill in document["fills"]:
        execution = Execution(fill["id"], fill["id"], fill["quantity"], fill["price"],
                              dt.datetime.fromisoformat(fill["executed_at"].replace("Z", "+00:00")),
                              fill.get("venue"))
        book.orders[cl_ord_id].executions[fill["id"]] = execution
        book.known(cl_ord_id, fill["id"])


def _order_from(document: dict[str, Any], report: Message) -> OrderInput:
    """An order entered earlier, as the J writer needs it; the adviser's side of the session is
    the report's target."""
    order = document["order"]
    security = order.get("security", {})
    instrument = [(tag, order["symbol"] if tag == 55 else security[name]) for tag, name in INSTRUMENT
                  if tag == 55 or name in security]
    entered = dt.datetime.fromisoformat(order["entered_at"].replace("Z", "+00:00"))
    return OrderInput(report, order["id"], order, document["statement"], instrument, _SIDE_CODES[order["side"]],
                      security.get("currency"), report.get(56) or "", report.get(49) or "", entered)


def check_acks(ledger: Ledger, acks: list[Ack]) -> None:
    """Refuse acknowledgements of an AllocID this ledger never sent, before anything is written."""
    problems = []
    with ledger.read() as session:
        for ack in acks:
            if session.by_key(f"fix-alloc:{ack.alloc_id}") is None:
                problems.append(Diagnostic("fix-unknown-alloc-id", f"AllocID {ack.alloc_id} names no instruction "
                                           "this ledger sent", ack.message.where(70)))
    if problems:
        raise InputError(problems)


def _enter(ledger: Ledger, who: Actor, order: OrderInput, policy_id: str | None) -> None:
    trade = load_trade({"order": order.order, "statement": order.statement, "fills": []},
                       file=f"{order.message.file}:{order.message.line}")
    with ledger.read() as session:
        record = workflow.order_record(session, order.cl_ord_id)
    if record.entered is not None and record.entered.data()["order"] == trade.to_json()["order"]:
        return  # recorded by an earlier run of the same message
    if record.statement is None:
        workflow.record_statement_and_enter(ledger, who, trade, policy_id)  # both, or neither
    else:
        workflow.enter_order(ledger, who, trade, policy_id)  # a statement recorded on its own before


def _fill(ledger: Ledger, who: Actor, order_id: str, event: FillEvent) -> None:
    if event.kind == "trade":
        assert event.fill is not None
        workflow.record_fills(ledger, who, order_id, [event.fill])  # idempotent by fill id
    elif event.kind == "correct":
        assert event.fill is not None
        workflow.correct_fill(ledger, who, order_id, event.refers, event.fill)
    else:
        workflow.bust_fill(ledger, who, order_id, event.refers, event.exec_id)


def _may(session: Any, who: Actor) -> None:
    """The authority the workflow's own steps require: a role that allocates, and for a subject
    vouched for by the acceptor, the ``service`` role held by the acceptor's identity."""
    if who.source == "token" and "service" not in workflow.roles_of(session, who.service or ""):
        raise RefusedError(Diagnostic("service-not-authorised", f"{who.service} may not record events for "
                                      "FIX counterparties mapped to ledger users: it needs the service role"))
    if not workflow.roles_of(session, who.name) & RECORDS_FIX:
        raise RefusedError(Diagnostic("role-required", f"user {who.name!r} may not record FIX allocation messages: "
                                      f"it needs one of the roles {', '.join(sorted(RECORDS_FIX))}"))


def send(ledger: Ledger, who: Actor, order: OrderInput,
         sending_time: dt.datetime | None) -> tuple[Instruction, bool] | None:
    """Allocate the order if it is not yet, then send (record) its 35=J unless already sent:
    the instruction, and whether it is new (False: the same allocation was sent before).

    An order whose every fill is busted has nothing to allocate: if an instruction was sent for
    it, the broker is told to cancel it (AllocTransType 2, RefAllocID naming it); if none was,
    nothing is sent (``None``). A fill after a cancel starts a new instruction (71=0)."""
    with ledger.read() as session:
        allocated = workflow.order_record(session, order.cl_ord_id).current_allocation
    live = bool(order.live())
    if allocated is None:
        if not live:
            return None
        _located(order.message, lambda: workflow.allocate_order(ledger, who, order.cl_ord_id))
    with ledger.write() as session:
        _may(session, who)
        record = workflow.order_record(session, order.cl_ord_id)
        current = record.current_allocation
        assert current is not None
        document = current.data()["document"]
        sent = session.query(order_id=order.cl_ord_id, kinds=["fix.instruction_sent"])
        identifier = alloc_id(order.cl_ord_id, document)
        for event in sent:
            if event.data()["alloc_id"] == identifier:
                return Instruction(identifier, event.data()["message"].encode()), False
        last = sent[-1].data() if sent else None
        previous = None if last is None or last["trans_type"] == "2" else last["alloc_id"]
        if not live and previous is None:
            return None  # nothing in force at the broker to cancel
        trans_type = "2" if not live else "1" if previous else "0"
        seq = session.count(kinds=["fix.instruction_sent"]) + 1  # counted, not read: a session sends many
        instruction = allocation_instruction(order, document, seq=seq, sending_time=sending_time,
                                             trans_type=trans_type, ref_alloc_id=previous)
        session.append(NewEvent("fix.instruction_sent", who, {
            "alloc_id": identifier, "trans_type": trans_type, "ref_alloc_id": previous,
            "allocation_seq": current.seq, "message": instruction.message.decode()},
            order_id=order.cl_ord_id, key=f"fix-alloc:{identifier}", topic="fix"))
        return instruction, True


def _ack(ledger: Ledger, who: Actor, ack: Ack) -> None:
    digest = hashlib.sha256(ack.message.raw).hexdigest()[:16]
    with ledger.write() as session:
        _may(session, who)
        if session.by_key(f"fix-ack:{ack.alloc_id}:{digest}") is not None:
            return  # the same acknowledgement, recorded by an earlier run
        sent = session.by_key(f"fix-alloc:{ack.alloc_id}")
        assert sent is not None and sent.order_id is not None  # checked before any write
        payload = {"alloc_id": ack.alloc_id, "outcome": ack.outcome, "status": ack.status,
                   "reject_code": ack.reject_code, "text": ack.text,
                   "accounts": [{"account": a, "reject_code": c, "text": t} for a, c, t in ack.accounts],
                   "msg_type": ack.message.msg_type}
        new = [NewEvent("fix.ack_received", who, payload, order_id=sent.order_id,
                        key=f"fix-ack:{ack.alloc_id}:{digest}", topic="fix")]
        if ack.rejected:
            new.append(NewEvent("alert.raised", who, {
                "alert": "allocation-rejected", "for": "cco",
                "message": f"the broker rejected allocation {ack.alloc_id} of order {sent.order_id} "
                           f"({ack.outcome}{', code ' + ack.reject_code if ack.reject_code else ''}"
                           f"{': ' + ack.text if ack.text else ''})"},
                order_id=sent.order_id, topic="alerts"))
        session.append(*new)
