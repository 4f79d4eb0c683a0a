"""``fairalloc fix serve`` over loopback with a real QuickFIX initiator: logon, heartbeats,
sequence numbers, a resend, the worked example's 35=J and a bust's replacement, all recorded in
a real ledger (SQLite) under the authenticated identity, and refusals that record nothing."""

from __future__ import annotations

import datetime as dt
import json
import queue
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import quickfix
from sqlalchemy.engine import make_url

from fairalloc.cli import main
from fairalloc.fix.session import Recorder
from fairalloc.ledger import workflow
from fairalloc.ledger.chain import Event
from fairalloc.ledger.identity import os_user
from fairalloc.ledger.store import Ledger

from ..conftest import POLICIES
from ..ledger import pgcluster
from ..ledger.conftest import pg_server  # noqa: F401 (the PostgreSQL server fixture)
from .conftest import DICTIONARY, assert_valid, simplefix_pairs
from .messages import ACCOUNTS, EXAMPLES, build, day, execution, new_order, retrade, stamp

TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def settings(path: Path, kind: str, port: int, sender: str, target: str) -> Path:
    lines = [
        "[DEFAULT]", f"ConnectionType={kind}", f"FileStorePath={path / kind / 'store'}",
        f"FileLogPath={path / kind / 'log'}", "StartTime=00:00:00", "EndTime=00:00:00", "HeartBtInt=1",
        "ReconnectInterval=1", "UseDataDictionary=Y", f"DataDictionary={DICTIONARY}",
        "[SESSION]", "BeginString=FIX.4.4", f"SenderCompID={sender}", f"TargetCompID={target}",
        f"SocketAcceptPort={port}" if kind == "acceptor" else f"SocketConnectPort={port}",
    ]
    if kind == "initiator":
        lines.append("SocketConnectHost=127.0.0.1")
    file = path / f"{kind}.cfg"
    file.write_text("\n".join(lines) + "\n")
    return file


class Oms(quickfix.Application):  # type: ignore[misc]
    """The initiator's side: every message received, admin and application, in a queue."""

    def __init__(self) -> None:
        super().__init__()
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.session: quickfix.SessionID | None = None
        self.acceptor_log: Path | None = None

    def onCreate(self, session: quickfix.SessionID) -> None:
        self.session = session

    def onLogon(self, session: quickfix.SessionID) -> None:
        self.received.put(("logon", b""))

    def onLogout(self, session: quickfix.SessionID) -> None:
        return None

    def toAdmin(self, message: quickfix.Message, session: quickfix.SessionID) -> None:
        return None

    def fromAdmin(self, message: quickfix.Message, session: quickfix.SessionID) -> None:
        self.received.put(("admin", message.toString().encode()))

    def toApp(self, message: quickfix.Message, session: quickfix.SessionID) -> None:
        return None

    def fromApp(self, message: quickfix.Message, session: quickfix.SessionID) -> None:
        self.received.put(("app", message.toString().encode()))

    def wait(self, want: str, msg_type: str | None = None) -> bytes:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                kind, raw = self.received.get(timeout=0.5)
            except queue.Empty:
                continue
            if kind == want and (msg_type is None or dict(simplefix_pairs(raw))[35] == msg_type):
                return raw
        logs = sorted(self.acceptor_log.glob("*.log")) if self.acceptor_log else []
        seen = "\n".join(f"{log.name}:\n{log.read_text(errors='replace')[-3000:]}" for log in logs)
        raise AssertionError(f"no {want} {msg_type or ''} within {TIMEOUT} s; the acceptor's logs:\n{seen}")

    def send(self, message: bytes) -> None:
        dictionary = quickfix.DataDictionary(str(DICTIONARY))
        assert quickfix.Session.sendToTarget(quickfix.Message(message.decode(), dictionary, False), self.session)


@dataclass
class Running:
    """An acceptor process and the QuickFIX initiator logged on to it."""

    acceptor: subprocess.Popen[str]
    initiator: quickfix.SocketInitiator
    application: Oms

    def stop(self) -> None:
        """Log the initiator out and stop the acceptor, which must exit 0."""
        self.initiator.stop()
        self.acceptor.send_signal(signal.SIGTERM)
        status = self.acceptor.wait(timeout=TIMEOUT)
        assert status == 0, self.acceptor.stderr.read() if self.acceptor.stderr else ""


def _serve_on(tmp_path: Path, ledger_url: str, *options: str) -> Running:
    """Start ``fix serve`` on ``ledger_url`` (extra options allowed) and log a QuickFIX initiator on."""
    port = free_port()
    acceptor = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "fairalloc", "fix", "serve", "--ledger", ledger_url,
         "--accounts", str(EXAMPLES / "accounts.json"), *options,
         "--settings", str(settings(tmp_path, "acceptor", port, "FAIRALLOC", "ALPHA-OMS"))],
        stderr=subprocess.PIPE, text=True)
    assert acceptor.stderr is not None
    line = acceptor.stderr.readline()
    assert "accepting sessions" in line, line + acceptor.stderr.read()
    application = Oms()
    application.acceptor_log = tmp_path / "acceptor" / "log"
    config = quickfix.SessionSettings(str(settings(tmp_path, "initiator", port, "ALPHA-OMS", "FAIRALLOC")))
    initiator = quickfix.SocketInitiator(application, quickfix.MemoryStoreFactory(), config,
                                         quickfix.ScreenLogFactory(False, False, False))
    running = Running(acceptor, initiator, application)
    initiator.start()
    try:
        application.wait("logon")
    except BaseException:
        running.stop()
        raise
    return running


Serve = Callable[..., Oms]


@pytest.fixture
def serve(tmp_path: Path, ledger_url: str) -> Iterator[Serve]:
    """Start ``fix serve`` on the test ledger (extra options allowed) and a QuickFIX initiator
    logged on to it; both are stopped at the end, and the acceptor must exit 0."""
    started: list[Running] = []

    def start(*options: str) -> Oms:
        started.append(_serve_on(tmp_path, ledger_url, *options))
        return started[-1].application

    try:
        yield start
    finally:
        for running in started:
            running.stop()


def fields(raw: bytes) -> dict[int, str]:
    return dict(simplefix_pairs(raw))


def allocated(raw: bytes) -> list[tuple[str, str]]:
    """(AllocAccount, AllocQty) of each NoAllocs entry of a 35=J."""
    pairs = simplefix_pairs(raw)
    accounts = [value for tag, value in pairs if tag == 79]
    quantities = [value for tag, value in pairs if tag == 80]
    return list(zip(accounts, quantities, strict=True))


def events(url: str, *kinds: str) -> list[Event]:
    with Ledger(url) as ledger, ledger.read() as session:
        return session.query(kinds=list(kinds)) if kinds else session.query()


def until(condition: Callable[[], bool]) -> None:
    """Wait (bounded) for the acceptor to have recorded something."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "the acceptor did not record it in time"
        time.sleep(0.2)


def test_a_session_records_the_order_allocates_it_replaces_it_after_a_bust_and_cancels_it_after_the_last(
        serve: Serve, ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    oms = serve()
    order, first, second = day(leaves_qty="0")  # the second trade fills what is filled: LeavesQty 0
    for message in (order, first):
        oms.send(message)
    heartbeat = oms.wait("admin", "0")  # the acceptor heartbeats every second
    assert fields(heartbeat)[49] == "FAIRALLOC"
    until(lambda: len(events(ledger_url, "fill.recorded")) == 1)
    assert [e.kind for e in events(ledger_url, "statement.recorded", "order.entered", "fill.recorded")] == [
        "statement.recorded", "order.entered", "fill.recorded"]
    oms.send(second)
    sent = oms.wait("app", "J")
    assert_valid(sent)
    j = fields(sent)
    assert (j[49], j[56], j[71], j[53], j[6]) == ("FAIRALLOC", "ALPHA-OMS", "0", "30000", "100")
    assert allocated(sent) == [("CLIENT-A", "15000"), ("CLIENT-B", "6000"), ("CLIENT-C", "3000"),
                               ("PROPRIETARY", "6000")]
    assert int(j[34]) >= 2  # after the logon and any heartbeats: the session's own sequence numbers
    bust = execution("XYZ-BLOCK-1-F-2-BUST", "H", ref="XYZ-BLOCK-1-F-2", cum_qty="18000", avg_px="99.95",
                     leaves_qty="0", transact_time=fields(second)[60], seq=4)
    oms.send(bust)
    replacement = oms.wait("app", "J")
    assert_valid(replacement)
    r = fields(replacement)
    assert (r[71], r[72], r[53], r[6]) == ("1", j[70], "18000", "99.95")
    assert [q for _, q in allocated(replacement)] == ["9000", "3600", "1800", "3600"]
    # the broker's acknowledgement of the replacement, over the session, is recorded against it
    now = stamp(dt.datetime.now(dt.timezone.utc))
    oms.send(build("P", [(70, r[70]), (60, now), (87, "0")]))
    until(lambda: bool(events(ledger_url, "fix.ack_received")))
    # the other fill busted too: nothing is left to allocate, so the instruction in force is cancelled
    oms.send(execution("XYZ-BLOCK-1-F-1-BUST", "H", ref="XYZ-BLOCK-1-F-1", leaves_qty="0",
                       transact_time=fields(second)[60], seq=5))
    cancel = oms.wait("app", "J")
    assert_valid(cancel)
    c = fields(cancel)
    assert (c[71], c[72], c[53]) == ("2", r[70], "0") and allocated(cancel) == []
    # every step is in the ledger, as the acceptor's authenticated identity (the OS user)
    recorded = events(ledger_url)
    order_events = [e for e in recorded if e.order_id == "XYZ-BLOCK-1"]
    assert [e.kind for e in order_events if e.kind != "alert.raised"] == [
        "statement.recorded", "order.entered", "fill.recorded", "fill.recorded", "order.allocated",
        "fix.instruction_sent", "fill.busted", "order.reallocated", "fix.instruction_sent", "fix.ack_received",
        "fill.busted", "order.reallocated", "fix.instruction_sent"]
    assert {(e.actor, e.source) for e in order_events} == {(os_user(), "os-user")}
    sent_events = [e.data() for e in order_events if e.kind == "fix.instruction_sent"]
    assert [(s["alloc_id"], s["trans_type"], s["ref_alloc_id"]) for s in sent_events] == [
        (j[70], "0", None), (r[70], "1", j[70]), (c[70], "2", r[70])]
    (ack,) = [e.data() for e in order_events if e.kind == "fix.ack_received"]
    assert (ack["alloc_id"], ack["outcome"]) == (r[70], "accepted")
    with Ledger(ledger_url) as ledger:
        record = workflow.read_order(ledger, "XYZ-BLOCK-1")
        assert record.current_allocation is not None
        assert record.current_allocation.data()["document"]["allocations"] == []
        (replaced,) = [e for e in record.reallocations if e.seq < record.current_allocation.seq]
        kept = {a["account"]: a["quantity"] for a in replaced.data()["document"]["allocations"]}
        assert kept == {"CLIENT-A": 9000, "CLIENT-B": 3600, "CLIENT-C": 1800, "PROPRIETARY": 3600}
    assert main(["ledger", "verify", "--ledger", ledger_url]) == 0
    capsys.readouterr()
    # a resend request: the acceptor resends its application messages, marked as possible duplicates
    resend = quickfix.Message()
    resend.getHeader().setField(quickfix.MsgType("2"))
    resend.setField(quickfix.BeginSeqNo(1))
    resend.setField(quickfix.EndSeqNo(0))
    assert quickfix.Session.sendToTarget(resend, oms.session)
    # (the initiator has seen them and discards them; the acceptor's message log shows them sent)
    assert oms.acceptor_log is not None
    deadline = time.monotonic() + TIMEOUT
    resent: list[dict[int, str]] = []
    while not resent and time.monotonic() < deadline:
        time.sleep(0.5)
        for log in oms.acceptor_log.glob("*.messages.current.log"):
            for line in log.read_bytes().splitlines():
                raw = line[line.index(b"8=FIX"):]
                if b"\x0135=J\x01" in raw and b"\x0143=Y\x01" in raw:
                    resent.append(fields(raw))
    assert [(m[70], m[34]) for m in resent][:1] == [(j[70], j[34])]
    # the resend recorded nothing: a resent instruction is the one already recorded as sent
    assert len(events(ledger_url, "fix.instruction_sent")) == 3


def test_refused_messages_are_answered_with_a_business_reject_and_record_nothing(
        serve: Serve, ledger_url: str) -> None:
    oms = serve()
    head = events(ledger_url)[-1].seq
    orphan = execution("X-1", "F", cl_ord_id="NOPE", last_qty="1", last_px="1", cum_qty="1", avg_px="1")
    oms.send(orphan)
    reject = fields(oms.wait("app", "j"))
    assert reject[372] == "8" and reject[58].startswith("fix-unknown-order (tag 11)")
    # a 35=D whose NoAllocs do not cover OrderQty: the hard stop refuses it, and its statement
    # is not left behind
    order, first, second = day("XYZ-BLOCK-2")
    short = fields(order)
    uncovered = retrade(new_order("XYZ-BLOCK-2", ACCOUNTS, quantity="60000", transact_time=short[60]), short[75])
    oms.send(uncovered)
    reject = fields(oms.wait("app", "j"))
    assert reject[372] == "D" and reject[58].startswith("pretrade-quantity-not-covered")
    assert events(ledger_url)[-1].seq == head
    # the book forgot the refused 35=D: the same ClOrdID, covered, is taken in and recorded
    oms.send(order)
    oms.send(first)
    until(lambda: len(events(ledger_url, "fill.recorded")) == 1)
    assert [e.kind for e in events(ledger_url) if e.seq > head] == [
        "statement.recorded", "order.entered", "fill.recorded"]
    # a correction the ledger refuses (more than the order) is refused, and forgotten by the book
    too_much = execution("XYZ-BLOCK-2-C", "G", cl_ord_id="XYZ-BLOCK-2", ref="XYZ-BLOCK-2-F-1",
                         last_qty="60000", last_px="99.95", cum_qty="60000", avg_px="99.95",
                         transact_time=fields(first)[60], seq=4)
    oms.send(too_much)
    reject = fields(oms.wait("app", "j"))
    assert reject[58].startswith("fills-exceed-order")
    oms.send(_closing(second))  # now complete
    j = fields(oms.wait("app", "J"))
    assert (j[71], j[53]) == ("0", "30000")  # the refused correction did not count


def _closing(report: bytes) -> bytes:
    """``report`` with LeavesQty 0 (done for the day), rebuilt by simplefix."""
    pairs = [(t, "0" if t == 151 else v) for t, v in simplefix_pairs(report) if t not in (8, 9, 10)]
    header = dict(pairs[:5])
    return build("8", pairs[5:], seq=int(header[34]), sender=header[49], target=header[56], sending_time=header[52])


def test_a_mapped_counterparty_acts_as_its_ledger_user_vouched_for_by_the_acceptor(
        serve: Serve, ledger_url: str, tmp_path: Path) -> None:
    me = os_user()
    with Ledger(ledger_url) as ledger:
        workflow.set_role(ledger, ledger.actor(), me, "service", grant=True)
        workflow.set_role(ledger, ledger.actor(), "pm.alpha", "pm", grant=True)
    identities = tmp_path / "identities.json"
    identities.write_text(json.dumps({"ALPHA-OMS": "pm.alpha"}))
    oms = serve("--identities", str(identities))
    order, first, _ = day("XYZ-BLOCK-3")
    oms.send(order)
    oms.send(first)
    until(lambda: bool(events(ledger_url, "fill.recorded")))
    recorded = [e for e in events(ledger_url) if e.order_id == "XYZ-BLOCK-3"]
    assert [e.kind for e in recorded] == ["statement.recorded", "order.entered", "fill.recorded"]
    assert {(e.actor, e.source, e.service) for e in recorded} == {("pm.alpha", "token", me)}
    assert main(["ledger", "verify", "--ledger", ledger_url]) == 0


def test_on_postgresql_the_actor_is_the_acceptors_database_role(
        pg_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On PostgreSQL the acceptor connects as a writer role; every event it records is that
    role's, written by the database itself."""
    owner = pgcluster.create_database(pg_server)
    writer = make_url(owner).set(username="clerk").render_as_string(hide_password=False)
    assert main(["ledger", "init", "--admin", "clerk", "--ledger", owner]) == 0
    assert main(["ledger", "roles", "--writer", "clerk", "--ledger", owner]) == 0
    for role in ("trader", "cco"):
        assert main(["ledger", "user", "grant", "clerk", role, "--ledger", writer]) == 0
    assert main(["policy", "publish", str(POLICIES / "us-equity-pro-rata.yaml"), "--ledger", writer]) == 0
    capsys.readouterr()
    oms = _serve_on(tmp_path, writer)
    try:
        order, first, second = day("XYZ-BLOCK-PG", leaves_qty="0")
        for message in (order, first, second):
            oms.application.send(message)
        sent = oms.application.wait("app", "J")
    finally:
        oms.stop()
    assert_valid(sent)
    assert allocated(sent) == [("CLIENT-A", "15000"), ("CLIENT-B", "6000"), ("CLIENT-C", "3000"),
                               ("PROPRIETARY", "6000")]
    recorded = [e for e in events(writer) if e.order_id == "XYZ-BLOCK-PG"]
    assert [e.kind for e in recorded if e.kind != "alert.raised"] == [
        "statement.recorded", "order.entered", "fill.recorded", "fill.recorded", "order.allocated",
        "fix.instruction_sent"]
    assert {(e.actor, e.source) for e in recorded} == {("clerk", "database-role")}
    assert main(["ledger", "verify", "--ledger", writer]) == 0


def test_a_counterparty_missing_from_the_identities_is_refused(ledger_url: str) -> None:
    with Ledger(ledger_url) as ledger:
        recorder = Recorder(ledger, None, identities={"OTHER-OMS": "pm.other"})
        order, *_ = day("XYZ-BLOCK-4")
        head = events(ledger_url)[-1].seq
        replies, refusal = recorder.take(order, "ALPHA-OMS")
    assert replies == [] and refusal is not None and refusal.code == "fix-counterparty-unmapped"
    assert events(ledger_url)[-1].seq == head


def test_an_acceptor_started_again_allocates_orders_entered_before(ledger_url: str) -> None:
    order, first, second = day("XYZ-BLOCK-5", leaves_qty="0")
    with Ledger(ledger_url) as ledger:
        before = Recorder(ledger, None)
        assert before.take(order, "ALPHA-OMS") == ([], None)
        assert before.take(first, "ALPHA-OMS") == ([], None)
    with Ledger(ledger_url) as ledger:  # a new process: an empty book, the same ledger
        (sent,), refusal = Recorder(ledger, None).take(second, "ALPHA-OMS")
    assert refusal is None
    assert_valid(sent)
    assert (fields(sent)[71], fields(sent)[53]) == ("0", "30000")
