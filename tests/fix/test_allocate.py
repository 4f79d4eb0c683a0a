"""``fairalloc fix allocate``: the worked example, the fill lifecycle and every refusal."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairalloc import allocate as engine_allocate
from fairalloc import load_policy, load_trade
from fairalloc.cli import main
from fairalloc.fix import Book, allocate_messages, read_messages
from fairalloc.fix.mapping import allocation_instruction
from fairalloc.fix.codec import parse_message

from ..conftest import POLICIES, ROOT
from .conftest import assert_valid, simplefix_pairs
from .messages import (
    ACCOUNTS,
    EXAMPLE_FILES,
    EXAMPLES,
    build,
    bust_of_second_fill,
    execution,
    lines,
    new_order,
    worked_example,
)

EQUITY = str(POLICIES / "us-equity-pro-rata.yaml")
ACCOUNTS_FILE = str(EXAMPLES / "accounts.json")


def allocate(tmp_path: Path, capsys: pytest.CaptureFixture[str], messages: list[bytes], *options: str,
             accounts: str | None = ACCOUNTS_FILE) -> tuple[int, list[bytes], str]:
    """Run the command on ``messages``; (exit status, 35=J lines, stderr)."""
    path = tmp_path / "in.fix"
    path.write_bytes(lines(messages))
    extra = ["--accounts", accounts] if accounts else []
    status = main(["fix", "allocate", "--policy", EQUITY, "--messages", str(path), *extra, *options])
    captured = capsys.readouterr()
    return status, [line.encode() for line in captured.out.splitlines()], captured.err


def allocs(message: bytes) -> list[tuple[str, str, str]]:
    """(AllocAccount, AllocQty, AllocAvgPx) of each NoAllocs entry, as simplefix reads the text
    (the dictionary decoder, which validated the message, turns quantities into binary floats)."""
    decoded = assert_valid(message)
    pairs = simplefix_pairs(message)
    start = pairs.index((78, str(len(decoded["NoAllocs"]))))
    entries = [value for tag, value in pairs[start + 1:] if tag in (79, 80, 153)]
    return [(entries[i], entries[i + 1], entries[i + 2]) for i in range(0, len(entries), 3)]


def field(message: bytes, tag: int) -> str:
    return dict(simplefix_pairs(message))[tag]


def test_worked_example_gives_one_well_formed_instruction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = allocate(tmp_path, capsys, worked_example())
    assert status == 0 and len(out) == 1
    (message,) = out
    decoded = assert_valid(message)
    assert decoded["MsgType"] == "ALLOCATION_INSTRUCTION"
    assert (field(message, 71), field(message, 53), field(message, 6), field(message, 75)) == (
        "0", "30000", "100", "20260302")
    assert [entry["ClOrdID"] for entry in decoded["NoOrders"]] == ["XYZ-BLOCK-1"]
    assert allocs(message) == [("CLIENT-A", "15000", "100"), ("CLIENT-B", "6000", "100"),
                               ("CLIENT-C", "3000", "100"), ("PROPRIETARY", "6000", "100")]
    assert field(message, 52) == "20260302-14:40:44"  # the latest TransactTime of the inputs


def test_a_bust_of_the_second_fill_leaves_the_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, (message,), _ = allocate(tmp_path, capsys, [*worked_example(), bust_of_second_fill()])
    assert status == 0
    assert (field(message, 53), field(message, 6)) == ("18000", "99.95")
    assert allocs(message) == [("CLIENT-A", "9000", "99.95"), ("CLIENT-B", "3600", "99.95"),
                               ("CLIENT-C", "1800", "99.95"), ("PROPRIETARY", "3600", "99.95")]
    assert [e["ExecID"] for e in assert_valid(message)["NoExecs"]] == ["F-1"]


def test_a_correction_replaces_quantity_and_price(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    correction = execution("F-2-C", "G", ref="F-2", last_qty="2000", last_px="100.00", cum_qty="20000",
                           avg_px="99.96", leaves_qty="30000", transact_time="20260302-15:00:00", seq=4)
    status, (message,), _ = allocate(tmp_path, capsys, [*worked_example(), correction])
    assert status == 0 and field(message, 53) == "20000"
    assert [e["ExecID"] for e in assert_valid(message)["NoExecs"]] == ["F-1", "F-2-C"]
    assert [value for tag, value in simplefix_pairs(message) if tag == 32] == ["18000", "2000"]
    assert field(message, 52) == "20260302-15:00:00"


def test_output_is_a_pure_function_of_the_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = allocate(tmp_path, capsys, worked_example())[1]
    again = allocate(tmp_path, capsys, worked_example())[1]
    assert first == again
    bust = allocate(tmp_path, capsys, [*worked_example(), bust_of_second_fill()])[1]
    assert field(bust[0], 70) != field(first[0], 70)  # a different allocation, a different AllocID
    chosen = allocate(tmp_path, capsys, worked_example(), "--sending-time", "20260302-21:00:00")[1]
    assert field(chosen[0], 52) == "20260302-21:00:00" and field(chosen[0], 70) == field(first[0], 70)


def test_examples_are_what_the_tests_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, make in EXAMPLE_FILES.items():
        assert (EXAMPLES / name).read_bytes() == make(), f"examples/fix/{name} is stale: python -m tests.fix.messages"
    status = main(["fix", "allocate", "--policy", EQUITY, "--messages", str(EXAMPLES / "bad-checksum.fix")])
    assert status == 4
    assert "bad-checksum.fix:2:" in capsys.readouterr().err


def test_two_orders_give_two_instructions_in_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    second = [new_order("XYZ-BLOCK-2", seq=5),
              execution("G-1", "F", cl_ord_id="XYZ-BLOCK-2", last_qty="5000", last_px="101", cum_qty="5000",
                        avg_px="101", leaves_qty="45000", seq=6)]
    status, out, _ = allocate(tmp_path, capsys, [*worked_example(), *second])
    assert status == 0
    assert [field(m, 11) for m in out] == ["XYZ-BLOCK-1", "XYZ-BLOCK-2"]
    assert [field(m, 34) for m in out] == ["1", "2"]


def test_an_order_without_fills_gets_no_instruction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = allocate(tmp_path, capsys, [new_order()])
    assert status == 0 and out == []


def refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], messages: list[bytes],
            accounts: str | None = ACCOUNTS_FILE) -> tuple[int, dict[str, object]]:
    path = tmp_path / "in.fix"
    path.write_bytes(lines(messages))
    output = tmp_path / "out.fix"
    extra = ["--accounts", accounts] if accounts else []
    status = main(["--error-format", "json", "fix", "allocate", "--policy", EQUITY, "--messages", str(path),
                   *extra, "-o", str(output)])
    captured = capsys.readouterr()
    assert not output.exists(), "nothing is written when a message is refused"
    assert captured.out == ""
    error: dict[str, object] = json.loads(captured.err)["errors"][0]
    return status, error


def located(error: dict[str, object]) -> tuple[object, object, object]:
    return error["code"], error["line"], error["tag"]


def test_unknown_order_duplicate_exec_id_and_unknown_reference(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    orphan = execution("X-1", "F", cl_ord_id="NOPE", last_qty="1", last_px="1", cum_qty="1", avg_px="1")
    assert located(refused(tmp_path, capsys, [*worked_example(), orphan])[1]) == ("fix-unknown-order", 5, 11)
    again = worked_example()[2]
    assert located(refused(tmp_path, capsys, [*worked_example(), again])[1]) == ("fix-duplicate-exec-id", 5, 17)
    dangling = execution("F-9", "H", ref="F-404", seq=4)
    status, error = refused(tmp_path, capsys, [*worked_example(), dangling])
    assert (status, *located(error)) == (4, "fix-unknown-exec-ref", 5, 19)
    not_a_trade = execution("F-8", "H", ref="EX-0", seq=4)  # EX-0 is the order's acknowledgement
    assert located(refused(tmp_path, capsys, [*worked_example(), not_a_trade])[1])[0] == "fix-unknown-exec-ref"
    twice = execution("F-2-BUST-2", "H", ref="F-2", seq=5)
    status, error = refused(tmp_path, capsys, [*worked_example(), bust_of_second_fill(), twice])
    assert located(error) == ("fix-exec-ref-busted", 6, 19)


def test_a_malformed_leaves_qty_is_refused_at_its_tag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    *rest, _ = worked_example()
    bad = execution("F-2", "F", last_qty="12000", last_px="100.075", cum_qty="30000", avg_px="100",
                    leaves_qty="2O000", transact_time="20260302-14:40:44", seq=3)
    status, error = refused(tmp_path, capsys, [*rest, bad])
    assert (status, *located(error)) == (4, "fix-bad-value", 4, 151)


def test_unknown_account_and_missing_required_tag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stranger = new_order(accounts=[*ACCOUNTS, ("CLIENT-Z", "100")])
    status, error = refused(tmp_path, capsys, [stranger])
    assert (status, *located(error)) == (4, "fix-unknown-account", 1, 79)
    no_time = build("8", [(37, "BRK-1"), (11, "XYZ-BLOCK-1"), (17, "F-1"), (150, "F"), (39, "1"), (55, "XYZ"),
                          (54, "1"), (32, "18000"), (31, "99.95"), (151, "32000"), (14, "18000"), (6, "99.95")])
    status, error = refused(tmp_path, capsys, [new_order(), no_time])
    assert located(error) == ("fix-missing-tag", 2, 60)
    no_allocs = build("D", [(11, "O-2"), (55, "XYZ"), (54, "1"), (60, "20260302-14:30:00"), (38, "100"),
                            (40, "1")])
    assert located(refused(tmp_path, capsys, [no_allocs])[1]) == ("fix-missing-tag", 1, 78)


def test_conservation_stays_in_the_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the dictionary accepts AllocQty summing above OrderQty; the engine refuses it (exit 5)
    greedy = new_order(quantity="40000")
    assert_valid(greedy)
    status, error = refused(tmp_path, capsys, [greedy])
    assert (status, *located(error)) == (5, "fix-allocation-exceeds-order", 1, 78)


_ACCOUNT = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=10)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(accounts=st.lists(st.tuples(_ACCOUNT, st.integers(1, 500).map(lambda lots: str(lots * 100))),
                         min_size=1, max_size=20, unique_by=lambda pair: pair[0]),
       fills=st.lists(st.tuples(st.integers(1, 200), st.integers(9000, 11000)), min_size=1, max_size=4),
       bust=st.booleans())
def test_every_instruction_written_is_valid_and_reads_back(accounts: list[tuple[str, str]],
                                                           fills: list[tuple[int, int]], bust: bool) -> None:
    total = sum(int(q) for _, q in accounts)
    messages = [new_order(accounts=accounts)]
    cum = 0
    for index, (lots, cents) in enumerate(fills):
        quantity = min(lots * 100, total - cum)
        if quantity <= 0:
            break
        cum += quantity
        messages.append(execution(f"F-{index}", "F", last_qty=str(quantity), last_px=f"{cents / 100:.2f}",
                                  cum_qty=str(cum), avg_px="100", leaves_qty=str(total - cum), seq=index + 2))
    if bust and len(messages) > 2:
        messages.append(execution("B-1", "H", ref="F-0", seq=99))
    policy = load_policy(EQUITY)
    read = read_messages(lines(messages), "in.fix")
    (instruction,) = allocate_messages(policy, read, file="in.fix")
    assert_valid(instruction.message)
    again = parse_message(instruction.message)
    assert again.msg_type == "J" and again.get(70) == instruction.alloc_id
    entries = again.body.group(78)
    assert sum(Decimal(e.get(80) or "0") for e in entries) == Decimal(again.get(53) or "")
    assert {e.get(79) for e in entries} <= {account for account, _ in accounts}


def test_the_docs_show_what_the_command_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    docs = (ROOT / "docs" / "fix.md").read_text()
    status, (message,), _ = allocate(tmp_path, capsys, worked_example())
    assert status == 0 and message.replace(b"\x01", b"|").decode() in docs
    monkeypatch.chdir(ROOT)
    main(["fix", "allocate", "--policy", EQUITY, "--messages", "examples/fix/bad-checksum.fix"])
    assert capsys.readouterr().err.strip() in docs


def test_a_replacement_names_the_instruction_it_replaces() -> None:
    policy = load_policy(EQUITY)
    first_book = Book()
    first_book.read(read_messages(lines(worked_example()), "in.fix"))
    order = first_book.orders["XYZ-BLOCK-1"]
    first = engine_allocate(policy, load_trade(first_book.trade_document("XYZ-BLOCK-1"))).document()
    sent = allocation_instruction(order, first, seq=1)
    book = Book()
    book.read(read_messages(lines([*worked_example(), bust_of_second_fill()]), "in.fix"))
    after = engine_allocate(policy, load_trade(book.trade_document("XYZ-BLOCK-1"))).document()
    replace = allocation_instruction(book.orders["XYZ-BLOCK-1"], after, seq=2, trans_type="1",
                                     ref_alloc_id=sent.alloc_id)
    assert_valid(replace.message)
    assert (field(replace.message, 71), field(replace.message, 72)) == ("1", sent.alloc_id)
    assert replace.alloc_id != sent.alloc_id and field(replace.message, 53) == "18000"


def test_a_correction_can_itself_be_corrected_or_busted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = execution("F-2-C", "G", ref="F-2", last_qty="2000", last_px="100", cum_qty="20000", avg_px="99.96",
                      leaves_qty="30000", seq=4)
    second = execution("F-2-C2", "G", ref="F-2-C", last_qty="6000", last_px="100", cum_qty="24000",
                       avg_px="99.96", leaves_qty="26000", seq=5)
    status, (message,), _ = allocate(tmp_path, capsys, [*worked_example(), first, second])
    assert status == 0 and field(message, 53) == "24000"
    assert [e["ExecID"] for e in assert_valid(message)["NoExecs"]] == ["F-1", "F-2-C2"]
    bust = execution("F-2-B", "H", ref="F-2-C", seq=5)
    status, (message,), _ = allocate(tmp_path, capsys, [*worked_example(), first, bust])
    assert status == 0 and field(message, 53) == "18000"


def test_a_step_out_travels_as_process_code_81_and_the_clearing_firm() -> None:
    """A statement account's clearing instruction (FIX ProcessCode 81) reaches the 35=J."""
    book = Book()
    book.read(read_messages(lines(worked_example()), "in.fix"))
    trade = book.trade_document("XYZ-BLOCK-1")
    stepped = trade["statement"]["accounts"][0]
    stepped["clearing"] = {"process": "step_out", "broker": "PRIME-1"}
    document = engine_allocate(load_policy(EQUITY), load_trade(trade)).document()
    message = allocation_instruction(book.orders["XYZ-BLOCK-1"], document, seq=1).message
    assert_valid(message)
    pairs = simplefix_pairs(message)
    start = pairs.index((79, stepped["account"]))
    entry = pairs[start:start + 8]
    assert entry[2:7] == [(81, "3"), (539, "1"), (524, "PRIME-1"), (525, "D"), (538, "4")]
    assert sum(1 for tag, _ in pairs if tag == 81) == 1
