"""``fairalloc fix record``: FIX messages through the ledger's recorded workflow, on SQLite."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from fairalloc.cli import main
from fairalloc.ledger import workflow
from fairalloc.ledger.identity import os_user
from fairalloc.ledger.store import Ledger

from .conftest import assert_valid, simplefix_pairs
from .messages import ACCOUNTS, EXAMPLES, build, day, execution, lines, new_order, retrade, stamp


def record(tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, messages: list[bytes],
           name: str = "in.fix") -> tuple[int, list[bytes], str]:
    path = tmp_path / name
    path.write_bytes(lines(messages))
    status = main(["fix", "record", "--ledger", url, "--messages", str(path),
                   "--accounts", str(EXAMPLES / "accounts.json")])
    captured = capsys.readouterr()
    return status, [line.encode() for line in captured.out.splitlines()], captured.err


def field(message: bytes, tag: int) -> str:
    return dict(simplefix_pairs(message))[tag]


def test_a_day_recorded_allocated_and_sent(tmp_path: Path, capsys: pytest.CaptureFixture[str], ledger_url: str) -> None:
    messages = day()
    status, out, err = record(tmp_path, capsys, ledger_url, messages)
    assert status == 0, err
    (message,) = out
    assert_valid(message)
    assert (field(message, 71), field(message, 53), field(message, 6)) == ("0", "30000", "100")
    with Ledger(ledger_url) as ledger:
        order = workflow.read_order(ledger, "XYZ-BLOCK-1")
        assert order.statement is not None and order.entered is not None and len(order.fills) == 2
        me = os_user()
        assert order.statement.actor == me and order.entered.actor == me
        assert order.allocation is not None
        quantities = {a["account"]: a["quantity"] for a in order.allocation.data()["document"]["allocations"]}
        assert quantities == {"CLIENT-A": 15000, "CLIENT-B": 6000, "CLIENT-C": 3000, "PROPRIETARY": 6000}
    # the same file again answers as the first time did, and records nothing new
    with Ledger(ledger_url) as ledger, ledger.read() as session:
        before = session.head()
    status, repeat, err = record(tmp_path, capsys, ledger_url, messages)
    assert status == 0 and repeat == out, err
    with Ledger(ledger_url) as ledger, ledger.read() as session:
        assert session.head() == before
    # a different 35=D under the same ClOrdID is a conflict with the record (exit 6)
    status, _, err = record(tmp_path, capsys, ledger_url, day()[:1], name="other.fix")
    assert status == 6 and "other.fix:1" in err


def test_acknowledgements_recorded_and_a_reject_alerts_the_cco(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                ledger_url: str) -> None:
    status, (sent,), _ = record(tmp_path, capsys, ledger_url, day())
    assert status == 0
    identifier = field(sent, 70)
    now = stamp(dt.datetime.now(dt.timezone.utc))
    accepted = build("P", [(70, identifier), (60, now), (87, "0")], sender="BROKER", target="ALPHA-OMS",
                     seq=10, sending_time=now)
    assert_valid(accepted)
    status, out, err = record(tmp_path, capsys, ledger_url, [accepted], name="acks.fix")
    assert status == 0 and out == [] and "accepted" in err
    rejected = build("P", [(70, identifier), (60, now), (87, "2"), (88, "0"), (58, "unknown account CLIENT-C"),
                           (78, "1"), (79, "CLIENT-C"), (776, "0")],
                     sender="BROKER", target="ALPHA-OMS", seq=11, sending_time=now)
    assert_valid(rejected)
    status, _, err = record(tmp_path, capsys, ledger_url, [rejected], name="reject.fix")
    assert status == 0 and "alert raised" in err
    # a sell-side AllocationReport (35=AS) carrying the status is recorded the same way
    report = build("AS", [(755, "R-1"), (70, identifier), (71, "0"), (794, "3"), (87, "0"), (857, "1"),
                          (54, "1"), (55, "XYZ"), (53, "30000"), (6, "100"), (75, field(sent, 75))],
                   sender="BROKER", target="ALPHA-OMS", seq=12, sending_time=now)
    assert_valid(report)
    status, _, err = record(tmp_path, capsys, ledger_url, [report], name="report.fix")
    assert status == 0 and "35=AS" in err and "accepted" in err
    with Ledger(ledger_url) as ledger:
        acks = [e.data() for e in ledger_events(ledger, "fix.ack_received")]
        assert [(a["outcome"], a["msg_type"]) for a in acks] == [
            ("accepted", "P"), ("account-level-reject", "P"), ("accepted", "AS")]
        assert {a["alloc_id"] for a in acks} == {identifier}
        assert acks[1]["accounts"] == [{"account": "CLIENT-C", "reject_code": "0", "text": None}]
        (alert,) = [a.data() for a in workflow.alerts(ledger) if a.data()["alert"] == "allocation-rejected"]
        assert alert["for"] == "cco" and identifier in alert["message"]
    assert main(["ledger", "verify", "--ledger", ledger_url]) == 0  # the FIX events are chained like any other
    # an acknowledgement of an instruction never sent is refused before anything is recorded
    stray = build("P", [(70, "FA-NOT-SENT"), (60, now), (87, "0")], sender="BROKER", target="ALPHA-OMS")
    status, _, err = record(tmp_path, capsys, ledger_url, [stray], name="stray.fix")
    assert status == 4 and "fix-unknown-alloc-id" in err and "stray.fix:1" in err


def ledger_events(ledger: Ledger, kind: str) -> list[workflow.Event]:
    with ledger.read() as session:
        return session.query(kinds=[kind])


def test_the_hard_stop_refuses_an_order_its_statement_does_not_cover(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], ledger_url: str) -> None:
    partial = day("XYZ-BLOCK-9")
    short = new_order("XYZ-BLOCK-9", ACCOUNTS, quantity="60000",
                      transact_time=field(partial[0], 60))
    with Ledger(ledger_url) as ledger, ledger.read() as session:
        before = session.head()
    status, out, err = record(tmp_path, capsys, ledger_url, [retrade(short, field(partial[0], 75))])
    assert status == 5 and out == []
    assert "pretrade-quantity-not-covered" in err and "in.fix:1" in err
    # the 35=D is the statement and the order at once: neither is recorded
    with Ledger(ledger_url) as ledger, ledger.read() as session:
        assert session.head() == before
        assert workflow.order_record(session, "XYZ-BLOCK-9").statement is None


def test_a_malformed_file_records_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str], ledger_url: str) -> None:
    messages = day()
    orphan = execution("X-1", "F", cl_ord_id="NOPE", last_qty="1", last_px="1", cum_qty="1", avg_px="1")
    with Ledger(ledger_url) as ledger, ledger.read() as session:
        before = session.head()
    status, out, err = record(tmp_path, capsys, ledger_url, [*messages, orphan])
    assert status == 4 and out == [] and "fix-unknown-order" in err
    with Ledger(ledger_url) as ledger, ledger.read() as session:
        assert session.head() == before


def test_reports_for_an_order_entered_in_an_earlier_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        ledger_url: str) -> None:
    messages = day()
    status, out, _ = record(tmp_path, capsys, ledger_url, messages[:1], name="orders.fix")
    assert status == 0 and out == []
    status, (sent,), err = record(tmp_path, capsys, ledger_url, messages[1:], name="fills.fix")
    assert status == 0, err
    assert_valid(sent)
    assert (field(sent, 49), field(sent, 56), field(sent, 53)) == ("ALPHA-OMS", "BROKER", "30000")


def _quantities(message: bytes) -> list[str]:
    return [value for tag, value in simplefix_pairs(message) if tag == 80]


def test_a_bust_before_allocation_changes_what_is_allocated(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], ledger_url: str) -> None:
    messages = day()
    bust = execution("XYZ-BLOCK-1-B", "H", ref="XYZ-BLOCK-1-F-2", seq=4,
                     transact_time=field(messages[2], 60))
    status, (sent,), err = record(tmp_path, capsys, ledger_url, [*messages, bust])
    assert status == 0, err
    assert_valid(sent)
    assert (field(sent, 71), field(sent, 53), field(sent, 6)) == ("0", "18000", "99.95")
    assert _quantities(sent) == ["9000", "3600", "1800", "3600"]


def test_a_bust_after_allocation_replaces_the_instruction(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], ledger_url: str) -> None:
    messages = day()
    status, (first,), err = record(tmp_path, capsys, ledger_url, messages, name="day.fix")
    assert status == 0, err
    bust = execution("XYZ-BLOCK-1-B", "H", ref="XYZ-BLOCK-1-F-2", seq=4,
                     transact_time=field(messages[2], 60))
    status, (second,), err = record(tmp_path, capsys, ledger_url, [*messages, bust], name="bust.fix")
    assert status == 0, err
    assert_valid(second)
    assert (field(second, 71), field(second, 72)) == ("1", field(first, 70))
    assert (field(first, 34), field(second, 34)) == ("1", "2")  # MsgSeqNum counts the instructions sent
    assert field(second, 53) == "18000" and _quantities(second) == ["9000", "3600", "1800", "3600"]


def test_every_fill_busted_after_allocation_cancels_the_instruction(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], ledger_url: str) -> None:
    messages = day()
    status, (first,), err = record(tmp_path, capsys, ledger_url, messages, name="day.fix")
    assert status == 0, err
    busts = [execution(f"XYZ-BLOCK-1-B{n}", "H", ref=f"XYZ-BLOCK-1-F-{n}", seq=3 + n,
                       transact_time=field(messages[2], 60)) for n in (1, 2)]
    status, out, err = record(tmp_path, capsys, ledger_url, [*messages, *busts], name="busts.fix")
    assert status == 0, err
    (cancel,) = out
    assert_valid(cancel)
    assert (field(cancel, 71), field(cancel, 72)) == ("2", field(first, 70))
    assert field(cancel, 53) == "0" and _quantities(cancel) == []
    # the same file again sends nothing new: the cancel is recorded once
    status, repeat, err = record(tmp_path, capsys, ledger_url, [*messages, *busts], name="busts.fix")
    assert status == 0 and repeat == [cancel], err
    # a fill after the cancel starts a new instruction, not a replacement of the cancelled one
    late = execution("XYZ-BLOCK-1-F-3", "F", last_qty="1000", last_px="100", cum_qty="1000", avg_px="100",
                     leaves_qty="0", seq=6, transact_time=field(messages[2], 60))
    status, out, err = record(tmp_path, capsys, ledger_url, [*messages, *busts, late], name="late.fix")
    assert status == 0, err
    (fresh,) = out
    assert_valid(fresh)
    assert field(fresh, 71) == "0" and 72 not in dict(simplefix_pairs(fresh)) and field(fresh, 53) == "1000"
