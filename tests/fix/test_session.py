"""``fairalloc fix serve`` over loopback with a real QuickFIX initiator: logon, heartbeats,
sequence numbers, a resend, the worked example's 35=J, a bust's replacement and a reject."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import quickfix

from ..conftest import POLICIES
from .conftest import DICTIONARY, assert_valid, simplefix_pairs
from .messages import EXAMPLES, bust_of_second_fill, execution, worked_example

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


@pytest.fixture
def oms(tmp_path: Path) -> Iterator[Oms]:
    port = free_port()
    acceptor = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "fairalloc", "fix", "serve", "--policy", str(POLICIES / "us-equity-pro-rata.yaml"),
         "--accounts", str(EXAMPLES / "accounts.json"),
         "--settings", str(settings(tmp_path, "acceptor", port, "FAIRALLOC", "ALPHA-OMS"))],
        stderr=subprocess.PIPE, text=True)
    try:
        assert acceptor.stderr is not None
        assert "accepting sessions" in acceptor.stderr.readline()
        application = Oms()
        application.acceptor_log = tmp_path / "acceptor" / "log"
        config = quickfix.SessionSettings(str(settings(tmp_path, "initiator", port, "ALPHA-OMS", "FAIRALLOC")))
        initiator = quickfix.SocketInitiator(application, quickfix.MemoryStoreFactory(), config,
                                             quickfix.ScreenLogFactory(False, False, False))
        initiator.start()
        try:
            application.wait("logon")
            yield application
        finally:
            initiator.stop()
    finally:
        acceptor.send_signal(signal.SIGTERM)
        status = acceptor.wait(timeout=TIMEOUT)
        assert status == 0, acceptor.stderr.read() if acceptor.stderr else ""


def fields(raw: bytes) -> dict[int, str]:
    return dict(simplefix_pairs(raw))


def completed(messages: list[bytes]) -> list[bytes]:
    """The worked example, with the last report closing the order (LeavesQty 0: done for day)."""
    *rest, last = messages
    return [*rest, last.replace(b"\x01151=20000\x01", b"\x01151=0\x01")]


def test_a_session_allocates_a_completed_order_and_replaces_it_after_a_bust(oms: Oms) -> None:
    order, ack, first, second = worked_example()
    for message in (order, ack, first):
        oms.send(message)
    heartbeat = oms.wait("admin", "0")  # the acceptor heartbeats every second
    assert fields(heartbeat)[49] == "FAIRALLOC"
    oms.send(completed([second])[0])
    sent = oms.wait("app", "J")
    assert_valid(sent)
    j = fields(sent)
    assert (j[49], j[56], j[71], j[53], j[6], j[75]) == ("FAIRALLOC", "ALPHA-OMS", "0", "30000", "100", "20260302")
    assert int(j[34]) >= 2  # after the logon and any heartbeats: the session's own sequence numbers
    oms.send(bust_of_second_fill())
    replacement = fields(oms.wait("app", "J"))
    assert (replacement[71], replacement[72], replacement[53]) == ("1", j[70], "18000")
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
    assert [(r[70], r[34]) for r in resent][:1] == [(j[70], j[34])]


def test_a_refused_message_is_answered_with_a_business_reject(oms: Oms) -> None:
    orphan = execution("X-1", "F", cl_ord_id="NOPE", last_qty="1", last_px="1", cum_qty="1", avg_px="1")
    oms.send(orphan)
    reject = fields(oms.wait("app", "j"))
    assert reject[372] == "8" and reject[58].startswith("fix-unknown-order (tag 11)")
