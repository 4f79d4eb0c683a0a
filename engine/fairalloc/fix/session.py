"""A FIX 4.4 session acceptor on QuickFIX: an OMS connects, sends its orders and executions, and
receives an AllocationInstruction for each order once it is complete.

QuickFIX runs the session layer — logon, heartbeats and test requests, sequence numbers, resend
requests and gap fills, the message store — as configured by a standard QuickFIX settings file.
Each application message is read by this adapter's own reader and mapped by :class:`Book`
exactly as in ``fix allocate``. When an ExecutionReport leaves nothing open (LeavesQty 151 = 0:
filled, done for the day, cancelled or expired), the order is allocated and its 35=J sent; a
later correction, bust or trade changes the allocation, which is sent again as a replacement
(AllocTransType 1, RefAllocID 72 naming the instruction it replaces). A message the adapter
refuses is answered with a BusinessMessageReject (35=j) whose Text gives the refusal's code, tag
and message; nothing of it is taken in.

The session layer stamps SendingTime and MsgSeqNum by its own clock and counter, as any FIX
session does; the allocation and its AllocID remain a pure function of the messages received.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import quickfix

from fairalloc import allocate
from fairalloc.errors import Diagnostic, FairallocError, InputError
from fairalloc.fix.codec import read_messages
from fairalloc.fix.mapping import Book, MessageProblem, allocation_instruction
from fairalloc.plan import Policy
from fairalloc.trade import load_trade

DICTIONARY = Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml"
"""QuickFIX's FIX 4.4 data dictionary, installed with the quickfix package."""


@dataclass
class Allocator:
    """The application state of the acceptor: the book, and the last instruction sent per order."""

    policy: Policy
    accounts: dict[str, dict[str, Any]] | None
    book: Book = field(init=False)
    sent: dict[str, str] = field(default_factory=dict)  # ClOrdID -> AllocID of its last 35=J
    received: int = 0

    def __post_init__(self) -> None:
        self.book = Book(self.accounts)

    def take(self, raw: bytes) -> tuple[list[bytes], Diagnostic | None]:
        """Map one application message; the 35=J messages it leads to, or the refusal."""
        self.received += 1
        try:
            (message,) = read_messages(raw + b"\n", f"session message {self.received}")
            self.book.add(message)
        except InputError as error:
            return [], error.diagnostics[0]
        except MessageProblem as problem:
            return [], problem.diagnostic
        cl_ord_id = message.get(11) or ""
        if message.msg_type != "8" or not (Decimal(message.get(151) or "1") == 0 or cl_ord_id in self.sent):
            return [], None
        order = self.book.orders[cl_ord_id]
        if not order.live():
            return [], None
        where = f"session order {cl_ord_id}"
        try:
            document = allocate(self.policy, load_trade(self.book.trade_document(cl_ord_id), file=where),
                                file=where).document()
        except FairallocError as error:
            return [], error.diagnostics[0]
        previous = self.sent.get(cl_ord_id)
        instruction = allocation_instruction(order, document, seq=1, trans_type="1" if previous else "0",
                                             ref_alloc_id=previous)
        if instruction.alloc_id == previous:
            return [], None  # the allocation did not change
        self.sent[cl_ord_id] = instruction.alloc_id
        return [instruction.message], None


class _Application(quickfix.Application):  # type: ignore[misc]
    """QuickFIX's callbacks: application messages go to the :class:`Allocator`."""

    def __init__(self, allocator: Allocator) -> None:
        super().__init__()
        self.allocator = allocator
        self.dictionary = quickfix.DataDictionary(str(DICTIONARY))
        self.lock = threading.Lock()

    def onCreate(self, session: quickfix.SessionID) -> None:
        return None

    def onLogon(self, session: quickfix.SessionID) -> None:
        return None

    def onLogout(self, session: quickfix.SessionID) -> None:
        return None

    def toAdmin(self, message: quickfix.Message, session: quickfix.SessionID) -> None:
        return None

    def fromAdmin(self, message: quickfix.Message, session: quickfix.SessionID) -> None:
        return None

    def toApp(self, message: quickfix.Message, session: quickfix.SessionID) -> None:
        return None

    def fromApp(self, message: quickfix.Message, session: quickfix.SessionID) -> None:
        raw = message.toString().encode()
        with self.lock:
            replies, refusal = self.allocator.take(raw)
        for reply in replies:
            quickfix.Session.sendToTarget(quickfix.Message(reply.decode(), self.dictionary, False), session)
        if refusal is not None:
            quickfix.Session.sendToTarget(_business_reject(message, refusal), session)


def _business_reject(message: quickfix.Message, refusal: Diagnostic) -> quickfix.Message:
    """A 35=j naming the refused message (RefSeqNum 45, RefMsgType 372) and why (Text 58)."""
    reject = quickfix.Message()
    reject.getHeader().setField(quickfix.MsgType("j"))
    header = message.getHeader()
    reject.setField(quickfix.RefSeqNum(int(header.getField(34))))
    reject.setField(quickfix.RefMsgType(header.getField(35)))
    reason = 3 if refusal.code == "fix-unsupported-message" else (5 if refusal.code == "fix-missing-tag" else 0)
    reject.setField(quickfix.BusinessRejectReason(reason))
    tag = f" (tag {refusal.location.tag})" if refusal.location.tag is not None else ""
    reject.setField(quickfix.Text(f"{refusal.code}{tag}: {refusal.message}"))
    return reject


class Acceptor:
    """A QuickFIX socket acceptor running an :class:`Allocator` with the given settings file.

    The threaded acceptor (a thread per session): the single-threaded one crashed the process
    when it was stopped while a session was still closing."""

    def __init__(self, settings: str, policy: Policy, accounts: dict[str, dict[str, Any]] | None) -> None:
        self.allocator = Allocator(policy, accounts)
        self.application = _Application(self.allocator)
        self.settings = quickfix.SessionSettings(settings)
        # QuickFIX keeps references to the factories, not ownership: they must outlive the acceptor
        self.store = quickfix.FileStoreFactory(self.settings)
        self.log = quickfix.FileLogFactory(self.settings)
        self.acceptor = quickfix.ThreadedSocketAcceptor(self.application, self.store, self.settings, self.log)

    def start(self) -> None:
        self.acceptor.start()

    def stop(self) -> None:
        """Log out and stop the session threads."""
        self.acceptor.stop()
