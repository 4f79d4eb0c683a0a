"""A FIX 4.4 session acceptor on QuickFIX: an OMS connects, sends its orders and executions, and
receives an AllocationInstruction for each order once it is complete — every step recorded in
the ledger, as ``fix record`` records a file.

QuickFIX runs the session layer — logon, heartbeats and test requests, sequence numbers, resend
requests and gap fills, the message store — as configured by a standard QuickFIX settings file.
Each application message is read by this adapter's own reader, mapped by :class:`Book` exactly
as in ``fix allocate``, and recorded by the steps of :mod:`fairalloc.fix.record`: a 35=D records
the statement and enters the order in one transaction (the hard stop); a 35=8 records its fill,
correction or bust by the ledger's fill lifecycle; a 35=P or 35=AS records the acknowledgement.
When an ExecutionReport leaves nothing open (LeavesQty 151 = 0: filled, done for the day,
cancelled or expired), the order is allocated and its 35=J recorded as sent and sent; a later
correction, bust or trade re-allocates it in the ledger, and the new allocation is sent as a
replacement (AllocTransType 1, RefAllocID 72 naming the instruction it replaces).

A message the adapter or the ledger refuses is answered with a BusinessMessageReject (35=j) whose
Text gives the refusal's code, tag and message; nothing of it is recorded, and the book forgets
it. Who acts is the identity the ledger authenticates (the acceptor's operating-system user or
database role), never a name from a message; an ``identities`` map (configuration) may name,
for each counterparty's CompID as the session layer established it, the ledger user the acceptor
vouches for.

The session layer stamps SendingTime and MsgSeqNum by its own clock and counter, as any FIX
session does; the allocation and its AllocID remain a pure function of what was recorded.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import quickfix

from fairalloc.errors import Diagnostic, FairallocError, InputError, Location
from fairalloc.fix import record
from fairalloc.fix.codec import Message, read_messages
from fairalloc.fix.mapping import Book, MessageProblem
from fairalloc.ledger import workflow
from fairalloc.ledger.identity import Actor
from fairalloc.ledger.store import Ledger

DICTIONARY = Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml"
"""QuickFIX's FIX 4.4 data dictionary, installed with the quickfix package."""


@dataclass
class Recorder:
    """The application state of the acceptor: the ledger it records in, and the book (what the
    session has said so far, and the orders it reports on that the ledger entered before)."""

    ledger: Ledger
    accounts: dict[str, dict[str, Any]] | None
    policy_id: str | None = None
    identities: dict[str, str] | None = None  # counterparty CompID -> ledger user vouched for
    book: Book = field(init=False)
    received: int = 0

    def __post_init__(self) -> None:
        self.book = Book(self.accounts)
        self.own = self.ledger.actor()

    def actor(self, counterparty: str) -> Actor:
        """Who acts for a session with ``counterparty`` (its CompID as the session layer knows
        it): the acceptor's own authenticated identity, or with an ``identities`` map the ledger
        user it names, vouched for by the acceptor's identity (which needs the service role)."""
        if self.identities is None:
            return self.own
        user = self.identities.get(counterparty)
        if user is None:
            raise InputError(Diagnostic("fix-counterparty-unmapped", f"the session's counterparty {counterparty} "
                                        "is not in the identities file", Location(tag=49),
                                        "map each counterparty CompID to the ledger user it acts as"))
        return Actor.of(user, "token", service=self.own.name)

    def take(self, raw: bytes, counterparty: str) -> tuple[list[bytes], Diagnostic | None]:
        """Read, map and record one application message: the 35=J messages it leads to, or the
        refusal (then nothing of the message is recorded and the book is as before it)."""
        self.received += 1
        try:
            who = self.actor(counterparty)
            (message,) = read_messages(raw + b"\n", f"session message {self.received}")
        except InputError as error:
            return [], error.diagnostics[0]
        cl_ord_id = message.get(11) or ""
        try:
            if message.msg_type == "8" and cl_ord_id and cl_ord_id not in self.book.orders:
                record.seed_order(self.ledger, self.book, cl_ord_id, message)
            undo = self.book.saved(cl_ord_id)
            try:
                self.book.add(message)
                if message.msg_type in ("D", "8"):
                    record.record_order_message(self.ledger, who, self.book.orders[cl_ord_id], message,
                                                self.policy_id)
                elif message.msg_type in ("P", "AS"):
                    record.record_ack(self.ledger, who, self.book.acks[-1])
            except (MessageProblem, FairallocError):
                undo()
                raise
        except MessageProblem as problem:
            return [], problem.diagnostic
        except FairallocError as error:
            return [], error.diagnostics[0]
        try:
            return self._instructions(who, message), None
        except FairallocError as error:  # the message stays recorded; its order is not allocated
            first = error.diagnostics[0]
            return [], Diagnostic(first.code, f"the 35=8 is recorded, but order {cl_ord_id} is not allocated: "
                                  f"{first.message}", first.location, first.hint)

    def _instructions(self, who: Actor, message: Message) -> list[bytes]:
        """After a 35=8: the order's 35=J if it is complete (LeavesQty 0) or was allocated before
        and its allocation changed — a cancel (71=2) once every fill of an order instructed is
        busted; none if it is the instruction already sent."""
        if message.msg_type != "8":
            return []
        cl_ord_id = message.get(11) or ""
        order = self.book.orders[cl_ord_id]
        with self.ledger.read() as session:
            allocated = workflow.order_record(session, cl_ord_id).allocation is not None
        if not allocated and Decimal(message.get(151) or "1") != 0:  # a quantity: checked by the book
            return []
        sent = record.send(self.ledger, who, order, None)
        return [sent[0].message] if sent is not None and sent[1] else []


class _Application(quickfix.Application):  # type: ignore[misc]
    """QuickFIX's callbacks: application messages go to the :class:`Recorder`, one at a time."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder
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
            replies, refusal = self.recorder.take(raw, session.getTargetCompID().getValue())
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
    """A QuickFIX socket acceptor running a :class:`Recorder` with the given settings file.

    The threaded acceptor (a thread per session): the single-threaded one crashed the process
    when it was stopped while a session was still closing."""

    def __init__(self, settings: str, recorder: Recorder) -> None:
        self.recorder = recorder
        self.settings_file = settings
        self.application = _Application(recorder)
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
