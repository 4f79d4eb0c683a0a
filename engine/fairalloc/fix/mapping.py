"""FIX 4.4 messages to the trade contract, and an allocation back to an AllocationInstruction.

A NewOrderSingle (35=D) carries the order and, in its NoAllocs group, the pre-trade allocation
statement; ExecutionReports (35=8) carry its executions — trades (ExecType 150=F), corrections
(150=G) and busts (150=H) of an earlier execution named by ExecRefID 19. :class:`Book` reads them
in file order and keeps each order's executions with their lifecycle; :meth:`Book.trade_document`
gives the trade as ``trade.schema.json`` describes it, and :func:`allocation_instruction` writes
the engine's allocation as a 35=J. ``docs/fix.md`` lists every field.

Nothing here reads a clock: SendingTime is taken from the inputs (the latest TransactTime of the
order's messages) unless the caller names one, and AllocID is derived from the order and the
allocation's digest, so the output is a pure function of the input.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from fairalloc.errors import Diagnostic, InputError, Location, RefusedError
from fairalloc.fix.codec import Entry, Message, encode

SIDES = {"1": "buy", "2": "sell", "5": "sell_short", "6": "sell_short"}
"""Side 54 to the contract's side (6, sell short exempt, is a short sale)."""

ASSET_CLASSES = {
    **dict.fromkeys(("CS", "PS"), "equity"),
    **dict.fromkeys(("CORP", "CPP", "CB", "EUCORP", "YANK", "TBOND", "TNOTE", "TBILL", "TIPS", "EUSOV",
                     "FAC", "FADN", "MTN"), "fixed_income"),
}
"""SecurityType 167 values that name a policy's ``security.asset_class``."""

INSTRUMENT = ((55, "symbol"), (65, "symbol_suffix"), (48, "security_id"), (22, "security_id_source"),
              (167, "security_type"), (207, "exchange"))
"""Instrument fields copied from a 35=D into the order's ``security`` and echoed in its 35=J."""

REQUIRED = {
    "D": (11, 55, 54, 60, 38, 40),
    "8": (37, 11, 17, 150, 39, 55, 54, 151, 14, 6),
    "P": (70, 60, 87),
    "AS": (755, 70, 71, 794, 87, 857, 54, 55, 53, 6, 75),
}
"""Fields each message type must carry: the dictionary's required fields and those the mapping
needs (ClOrdID 11 in a 35=8, AllocID 70 in a 35=AS)."""
REQUIRED_SETS = {kind: frozenset(tags) for kind, tags in REQUIRED.items()}

SESSION_TYPES = frozenset({"0", "1", "2", "3", "4", "5", "A"})
"""Session-level messages (heartbeat, test request, resend, reject, sequence reset, logout,
logon): a session log carries them; they are skipped."""

ALLOC_TYPE = "2"  # Preliminary: without MiscFees and NetMoney, which the engine does not compute
ALLOC_NO_ORDERS_TYPE = "1"  # explicit list provided

_QTY = re.compile(r"(0|[1-9][0-9]{0,14})(\.[0-9]{1,8})?")
_TIMESTAMP = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})-([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{3})?")
_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")


class MessageProblem(Exception):
    """One message cannot be taken in; the reader records it and goes on with the next."""

    def __init__(self, diagnostic: Diagnostic, refused: bool = False) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic
        self.refused = refused


def problem(code: str, text: str, where: Location, hint: str | None = None, refused: bool = False) -> MessageProblem:
    return MessageProblem(Diagnostic(code, text, where, hint), refused)


def _required(message: Message, tag: int, entry: Entry | None = None) -> str:
    value = (entry or message.body).fields.get(tag)
    if value is None:
        raise problem("fix-missing-tag", f"35={message.msg_type} lacks required tag {tag}", message.where(tag))
    return value


def quantity(message: Message, tag: int, entry: Entry | None = None, *, positive: bool = False) -> int | str:
    """A Qty field as the contract writes quantities: an int when whole, else a decimal string."""
    text = _required(message, tag, entry)
    if text.isdecimal() and text.isascii() and len(text) <= 15 and (text[0] != "0" or text == "0"):
        whole = int(text)  # the common case, plain digits, without a Decimal
        if positive and whole == 0:
            raise problem("fix-bad-value", f"tag {tag} must be above zero", message.where(tag, entry))
        return whole
    if not _QTY.fullmatch(text):
        raise problem("fix-bad-value", f"tag {tag}={text!r} is not a quantity (digits, an optional fraction)",
                       message.where(tag, entry))
    value = Decimal(text)
    if positive and value == 0:
        raise problem("fix-bad-value", f"tag {tag} must be above zero", message.where(tag, entry))
    return int(value) if value == value.to_integral_value() else format(value.normalize(), "f")


def price(message: Message, tag: int) -> str:
    """A Price field as the contract's decimal string (positive)."""
    text = _required(message, tag)
    if not _QTY.fullmatch(text) or Decimal(text) == 0:
        raise problem("fix-bad-value", f"tag {tag}={text!r} is not a positive price", message.where(tag))
    return format(Decimal(text), "f")


def timestamp(message: Message, tag: int) -> dt.datetime:
    """A UTCTimestamp (``YYYYMMDD-HH:MM:SS[.sss]``) as an aware datetime."""
    text = _required(message, tag)
    match = _TIMESTAMP.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        year, month, day, hour, minute, second, fraction = match.groups()
        micro = int(fraction[1:]) * 1000 if fraction else 0
        return dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro,
                           tzinfo=dt.timezone.utc)
    except ValueError:
        raise problem("fix-bad-value", f"tag {tag}={text!r} is not a UTCTimestamp (YYYYMMDD-HH:MM:SS[.sss])",
                       message.where(tag)) from None


def local_date(message: Message, tag: int) -> dt.date:
    text = _required(message, tag)
    match = _DATE.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        return dt.date(*map(int, match.groups()))
    except ValueError:
        raise problem("fix-bad-value", f"tag {tag}={text!r} is not a date (YYYYMMDD)", message.where(tag)) from None


def iso(moment: dt.datetime) -> str:
    """The contract's timestamp text (UTC, ``Z``)."""
    return moment.isoformat().replace("+00:00", "Z")


def fix_time(moment: dt.datetime) -> str:
    """A UTCTimestamp, with milliseconds when the moment has a fraction of a second."""
    text = moment.astimezone(dt.timezone.utc).strftime("%Y%m%d-%H:%M:%S")
    return text + f".{moment.microsecond // 1000:03d}" if moment.microsecond else text


@dataclass(slots=True)
class Execution:
    """An execution of an order as it stands: its trade, as corrected, or busted."""

    exec_id: str  # the trade's own ExecID (150=F): its key in the order's executions
    current_id: str  # the ExecID of its latest version (the trade, or its last correction): the fill's id
    quantity: int | str
    price: str
    executed_at: dt.datetime
    venue: str | None
    busted: bool = False

    def fill(self) -> dict[str, Any]:
        document: dict[str, Any] = {"id": self.current_id, "quantity": self.quantity, "price": self.price,
                                    "executed_at": iso(self.executed_at)}
        if self.venue is not None:
            document["venue"] = self.venue
        return document


@dataclass(frozen=True, slots=True)
class FillEvent:
    """One step of an execution's lifecycle, in arrival order (what the ledger records)."""

    kind: Literal["trade", "correct", "bust"]
    exec_id: str  # the ExecID of this report
    original: str  # the trade's ExecID it concerns
    refers: str  # the fill id in force that it changes (a correction's or bust's target as it stood)
    fill: dict[str, Any] | None  # the fill as it now stands, under its new id (trade and correct)
    message: Message


@dataclass(slots=True)
class OrderInput:
    """One 35=D with what has arrived for it since."""

    message: Message
    cl_ord_id: str
    order: dict[str, Any]
    statement: dict[str, Any]
    instrument: list[tuple[int, str]]
    side_code: str
    currency: str | None
    sender: str
    target: str
    latest: dt.datetime  # the latest TransactTime of the order and its reports
    broker_order_id: str | None = None
    executions: dict[str, Execution] = field(default_factory=dict)  # by the trade's ExecID
    events: list[FillEvent] = field(default_factory=list)

    def live(self) -> list[Execution]:
        return [execution for execution in self.executions.values() if not execution.busted]


@dataclass(frozen=True, slots=True)
class Ack:
    """A broker's answer to an AllocationInstruction (35=P, or an AllocationReport 35=AS)."""

    alloc_id: str
    status: str  # AllocStatus 87
    reject_code: str | None  # AllocRejCode 88
    text: str | None  # Text 58
    accounts: tuple[tuple[str, str | None, str | None], ...]  # (AllocAccount, IndividualAllocRejCode, AllocText)
    message: Message

    STATUS = {"0": "accepted", "1": "block-level-reject", "2": "account-level-reject", "3": "received",
              "4": "incomplete", "5": "rejected-by-intermediary"}

    @property
    def outcome(self) -> str:
        return self.STATUS.get(self.status, f"status-{self.status}")

    @property
    def rejected(self) -> bool:
        return self.status in ("1", "2", "5")


class Book:
    """The orders and executions of a messages file, read in order with the fill lifecycle.

    ``accounts`` maps each account id to its attributes (the accounts file); when given, every
    AllocAccount must be in it. Problems are collected (up to a bound) and raised together by
    :meth:`read`; a refused message changes nothing.
    """

    def __init__(self, accounts: dict[str, dict[str, Any]] | None = None) -> None:
        self.accounts = accounts
        self.orders: dict[str, OrderInput] = {}
        self.acks: list[Ack] = []
        self._owner: dict[str, tuple[str, str]] = {}  # any ExecID seen -> (ClOrdID, trade's ExecID or "")

    def saved(self, cl_ord_id: str) -> Callable[[], None]:
        """A way back to the book as it is now, for a message about ``cl_ord_id`` that the
        book takes in but a later step (the ledger) refuses: calling it undoes that message."""
        order = copy.deepcopy(self.orders.get(cl_ord_id))
        owners, acks = len(self._owner), len(self.acks)

        def restore() -> None:
            for exec_id in list(itertools.islice(reversed(self._owner), len(self._owner) - owners)):
                del self._owner[exec_id]
            del self.acks[acks:]
            if order is None:
                self.orders.pop(cl_ord_id, None)
            else:
                self.orders[cl_ord_id] = order

        return restore

    def known(self, cl_ord_id: str, exec_id: str) -> None:
        """Register a trade of ``cl_ord_id`` reported before these messages (a recorded fill)."""
        self._owner[exec_id] = (cl_ord_id, exec_id)

    def read(self, messages: Iterable[Message], limit: int = 50) -> None:
        problems: list[MessageProblem] = []
        for message in messages:
            try:
                self.add(message)
            except MessageProblem as problem:
                problems.append(problem)
                if len(problems) >= limit:
                    break
        if problems:
            diagnostics = [p.diagnostic for p in problems]
            if all(p.refused for p in problems):
                raise RefusedError(diagnostics)
            raise InputError(diagnostics)

    def add(self, message: Message) -> None:
        kind = message.msg_type
        if kind in SESSION_TYPES:
            return
        handler = {"D": self._order, "8": self._report, "P": self._ack, "AS": self._ack}.get(kind)
        if handler is None:
            raise problem("fix-unsupported-message", f"35={kind} is not a message this adapter maps",
                           message.where(35), "mapped: 35=D, 35=8, 35=P, 35=AS (session messages are skipped)")
        fields = message.body.fields
        if not fields.keys() >= REQUIRED_SETS[kind]:
            for tag in REQUIRED[kind]:  # the first missing, in the dictionary's order
                _required(message, tag)
        handler(message)

    def _order(self, message: Message) -> None:
        cl_ord_id = _required(message, 11)
        if cl_ord_id in self.orders:
            raise problem("fix-duplicate-order", f"ClOrdID {cl_ord_id} was already used by the 35=D on line "
                           f"{self.orders[cl_ord_id].message.line}", message.where(11))
        side_code = _required(message, 54)
        side = SIDES.get(side_code)
        if side is None:
            raise problem("fix-unsupported-value", f"Side 54={side_code} is not mapped",
                           message.where(54), "mapped: 1 buy, 2 sell, 5 sell short, 6 sell short exempt")
        ordered = quantity(message, 38, positive=True)
        entered = timestamp(message, 60)
        trade_date = local_date(message, 75) if message.get(75) is not None else entered.date()
        security: dict[str, Any] = {}
        instrument = []
        for tag, name in INSTRUMENT:
            value = message.get(tag)
            if value is not None:
                instrument.append((tag, value))
                if tag != 55:
                    security[name] = value
        asset_class = ASSET_CLASSES.get(message.get(167) or "")
        if asset_class is not None:
            security["asset_class"] = asset_class
        currency = message.get(15)
        if currency is not None:
            security["currency"] = currency
        order: dict[str, Any] = {"id": cl_ord_id, "symbol": _required(message, 55), "side": side,
                                 "quantity": ordered, "trade_date": trade_date.isoformat(),
                                 "entered_at": iso(entered), "security": security}
        if message.get(40) == "2":
            order["limit_price"] = price(message, 44)
        statement = {"recorded_at": iso(entered), "recorded_by": message.get(50) or _required(message, 49),
                     "accounts": self._statement_accounts(message, ordered)}
        self.orders[cl_ord_id] = OrderInput(
            message, cl_ord_id, order, statement, instrument, side_code, currency,
            _required(message, 49), _required(message, 56), entered)

    def _statement_accounts(self, message: Message, ordered: int | str) -> list[dict[str, Any]]:
        entries = message.body.group(78)
        if not entries:
            raise problem("fix-missing-tag", "a 35=D carries its pre-trade allocation in NoAllocs 78 (at least "
                           "one AllocAccount 79 with AllocQty 80)", message.where(78))
        accounts: list[dict[str, Any]] = []
        seen: set[str] = set()
        known = self.accounts
        whole, fractional = 0, Decimal(0)  # the intended total: whole quantities summed as ints
        for entry in entries:
            account = entry.fields.get(79) or _required(message, 79, entry)
            if account in seen:
                raise problem("fix-duplicate-account", f"AllocAccount {account} appears twice in NoAllocs",
                               message.where(79, entry))
            seen.add(account)
            if known is not None and account not in known:
                raise problem("fix-unknown-account", f"AllocAccount {account} is not in the accounts file",
                               message.where(79, entry), "every account of a 35=D must be in the accounts file")
            intended = quantity(message, 80, entry)
            accounts.append({"account": account, "intended": intended} if known is None else
                            {"account": account, "intended": intended, "attributes": known[account]})
            if isinstance(intended, int):
                whole += intended
            else:
                fractional += Decimal(intended)
        total = fractional + whole
        if total > Decimal(ordered):
            raise problem("fix-allocation-exceeds-order",
                           f"the NoAllocs entries intend {format(total.normalize(), 'f')} in all, more than "
                           f"OrderQty 38={ordered}", message.where(78),
                           "the pre-trade allocation cannot intend more than the order", refused=True)
        return accounts

    def _report(self, message: Message) -> None:
        cl_ord_id = _required(message, 11)
        order = self.orders.get(cl_ord_id)
        if order is None:
            raise problem("fix-unknown-order", f"35=8 for ClOrdID {cl_ord_id}, which no earlier 35=D entered",
                           message.where(11))
        exec_id = _required(message, 17)
        quantity(message, 151)  # LeavesQty and CumQty are quantities (the acceptor reads LeavesQty)
        quantity(message, 14)
        if exec_id in self._owner:
            raise problem("fix-duplicate-exec-id", f"ExecID {exec_id} was already reported", message.where(17),
                           "each execution report has its own ExecID")
        if message.get(55) != order.order["symbol"] or message.get(54) != order.side_code:
            tag = 55 if message.get(55) != order.order["symbol"] else 54
            raise problem("fix-order-mismatch", f"tag {tag} of this 35=8 differs from order {cl_ord_id}'s 35=D",
                           message.where(tag))
        exec_type = _required(message, 150)
        moment = timestamp(message, 60) if message.get(60) is not None else None
        if exec_type == "F":
            fill = self._trade(message, exec_id)
            order.executions[exec_id] = fill
            self._owner[exec_id] = (cl_ord_id, exec_id)
            order.events.append(FillEvent("trade", exec_id, exec_id, exec_id, fill.fill(), message))
        elif exec_type in ("G", "H"):
            target = self._referenced(message, order)
            in_force = target.current_id
            if exec_type == "G":
                corrected = self._trade(message, exec_id)
                target.quantity, target.price = corrected.quantity, corrected.price
                if corrected.venue is not None:
                    target.venue = corrected.venue
                target.current_id = exec_id
                order.events.append(FillEvent("correct", exec_id, target.exec_id, in_force, target.fill(),
                                              message))
            else:
                target.busted = True
                order.events.append(FillEvent("bust", exec_id, target.exec_id, in_force, None, message))
            self._owner[exec_id] = (cl_ord_id, target.exec_id)
        else:
            self._owner[exec_id] = (cl_ord_id, "")
        order.broker_order_id = message.get(37)
        if moment is not None:
            order.latest = max(order.latest, moment)

    def _trade(self, message: Message, exec_id: str) -> Execution:
        return Execution(exec_id, exec_id, quantity(message, 32, positive=True), price(message, 31),
                         timestamp(message, 60), message.get(30))

    def _referenced(self, message: Message, order: OrderInput) -> Execution:
        reference = _required(message, 19)
        owner = self._owner.get(reference)
        if owner is None or owner[0] != order.cl_ord_id or not owner[1]:
            raise problem("fix-unknown-exec-ref", f"ExecRefID 19={reference} names no trade of order "
                           f"{order.cl_ord_id}", message.where(19),
                           "a correction (150=G) or bust (150=H) names an earlier execution's ExecID")
        target = order.executions[owner[1]]
        if target.busted:
            raise problem("fix-exec-ref-busted", f"execution {target.exec_id} is already busted",
                           message.where(19))
        return target

    def _ack(self, message: Message) -> None:
        accounts = tuple((_required(message, 79, e), e.get(776), e.get(161)) for e in message.body.group(78))
        self.acks.append(Ack(_required(message, 70), _required(message, 87), message.get(88), message.get(58),
                             accounts, message))

    def trade_document(self, cl_ord_id: str) -> dict[str, Any]:
        """The order's trade as the contract describes it: live executions only, as corrected."""
        order = self.orders[cl_ord_id]
        return {"order": order.order, "statement": order.statement,
                "fills": [execution.fill() for execution in order.live()]}


def allocation_digest(document: dict[str, Any]) -> str:
    """SHA-256 of the allocation document's canonical JSON."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def alloc_id(cl_ord_id: str, document: dict[str, Any]) -> str:
    """AllocID 70: from the order and the allocation's digest — the same allocation, the same id."""
    seed = f"{cl_ord_id}\n{allocation_digest(document)}"
    return "FA" + hashlib.sha256(seed.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Instruction:
    alloc_id: str
    message: bytes


PARTY_ID_SOURCE = "D"  # PartyIDSource 447/525: a proprietary code, as the statement names the broker
CLEARING_FIRM = "4"  # PartyRole 452/538: where a stepped-out account's shares clear
def _nonzero(quantity: int | str) -> bool:
    """A document's quantity (an int, or a decimal string) is not zero."""
    return quantity != 0 if isinstance(quantity, int) else Decimal(quantity) != 0


def allocation_instruction(order: OrderInput, document: dict[str, Any], *, seq: int,
                           sending_time: dt.datetime | None = None, trans_type: str = "0",
                           ref_alloc_id: str | None = None) -> Instruction:
    """The 35=J of an allocation document (``Allocation.document()``) of ``order``.

    AllocTransType 71 is 0 (new), or 1 (replace) / 2 (cancel) with RefAllocID 72 naming the
    instruction it replaces. Accounts allocated nothing are left out of NoAllocs. An account with
    a clearing instruction carries its ProcessCode 81 (3: step-out) and the broker its shares
    clear at, as a NestedParties entry with role 4 (clearing firm).
    """
    identifier = alloc_id(order.cl_ord_id, document)
    header = [(49, order.sender), (56, order.target), (34, str(seq)),
              (52, fix_time(sending_time or order.latest))]
    body: list[tuple[int, str]] = [(70, identifier), (71, trans_type)]
    if ref_alloc_id is not None:
        body.append((72, ref_alloc_id))
    body += [(626, ALLOC_TYPE), (857, ALLOC_NO_ORDERS_TYPE), (73, "1"), (11, order.cl_ord_id)]
    if order.broker_order_id is not None:
        body.append((37, order.broker_order_id))
    body.append((38, str(order.order["quantity"])))
    live = order.live()
    if live:
        body.append((124, str(len(live))))
        for execution in live:
            body += [(32, str(execution.quantity)), (17, execution.current_id), (31, execution.price)]
    body.append((54, order.side_code))
    body += order.instrument
    body += [(53, str(document["filled"])), (6, document.get("average_price") or "0")]
    if order.currency is not None:
        body.append((15, order.currency))
    body.append((75, order.order["trade_date"].replace("-", "")))
    allocated = [line for line in document["allocations"] if _nonzero(line["quantity"])]
    body.append((78, str(len(allocated))))
    for line in allocated:
        body += [(79, line["account"]), (80, str(line["quantity"]))]
        clearing = line.get("clearing")
        if clearing is not None:  # ProcessCode 81, and the broker as a clearing firm (NestedParties)
            body += [(81, clearing["process_code"]), (539, "1"), (524, clearing["broker"]), (525, PARTY_ID_SOURCE),
                     (538, CLEARING_FIRM)]
        if line["average_price"] is not None:
            body.append((153, line["average_price"]))
    return Instruction(identifier, encode("J", header, body))
