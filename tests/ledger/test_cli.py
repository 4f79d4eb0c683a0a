"""The full workflow through the ``fairalloc`` command, on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fairalloc.cli import main
from fairalloc.errors import ExitCode

from .conftest import tamper
from .helpers import EQUITY_POLICY, EQUITY_TRADE, ROOT, ROTATION_POLICY

DAY = ROOT / "examples" / "ledger-day"


def run(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main([*argv, "--ledger", url])
    out, err = capsys.readouterr()
    return status, out, err


def _staffed(capsys: pytest.CaptureFixture[str], url: str) -> None:
    assert run(capsys, url, "ledger", "init", "--admin", "ada")[0] == 0
    for user, role in (("pam", "pm"), ("tom", "trader"), ("cole", "cco")):
        assert run(capsys, url, "ledger", "user", "grant", user, role, "--user", "ada")[0] == 0
    for policy in (EQUITY_POLICY, ROTATION_POLICY):
        assert run(capsys, url, "policy", "publish", str(policy), "--user", "cole")[0] == 0


def _record_day(capsys: pytest.CaptureFixture[str], url: str) -> list[str]:
    day = json.loads((DAY / "day.json").read_text())
    for state in day["rotation_states"]:
        status, _out, err = run(capsys, url, "ledger", "rotation-seed", str(DAY / state), "--user", "cole")
        assert status == 0, err
    ids = []
    for entry in day["orders"]:
        trade = str(DAY / entry["trade"])
        order_id = json.loads(Path(trade).read_text())["order"]["id"]
        ids.append(order_id)
        for argv in (("order", "statement", trade, "--user", "pam"),
                     ("order", "enter", trade, "--policy", entry["policy"], "--user", "tom"),
                     ("order", "fills", trade, "--user", "tom"),
                     ("order", "allocate", order_id, "--user", "tom")):
            status, _out, err = run(capsys, url, *argv)
            assert status == 0, err
        if "override" in entry:
            sets = [f"--set={a}={q}" for a, q in entry["override"]["set"].items()]
            status, _out, err = run(capsys, url, "order", "override", order_id, *sets, "--reason",
                                    entry["override"]["reason"], "--memo", "memo", "--user", "tom")
            assert status == 0, err
            status, _out, err = run(capsys, url, "order", "review", order_id, "--approve",
                                    "--user", "cole")
            assert status == 0, err
    return ids


def test_full_workflow_verify_replay_export(ledger_url: str, capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    _staffed(capsys, ledger_url)
    ids = _record_day(capsys, ledger_url)
    status, out, _ = run(capsys, ledger_url, "ledger", "verify")
    assert status == 0 and "ledger intact" in out
    status, out, _ = run(capsys, ledger_url, "replay", "--date", "2026-03-02", "--format", "json")
    assert status == 0
    assert [(r["order_id"], r["identical"]) for r in json.loads(out)] == [(i, True) for i in ids]
    status, out, _ = run(capsys, ledger_url, "ledger", "export", "--out", str(tmp_path / "export"),
                         "--date", "2026-03-02")
    assert status == 0
    with (tmp_path / "export" / "allocations.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    required = ["order_id", "trade_date", "symbol", "side", "account", "quantity", "price",
                "allocated_at"]
    assert all(row[column] for row in rows for column in required)
    import datetime as dt
    import re

    for row in rows:  # the allocation-history format: decimal text, ISO 8601 times with offset
        assert re.fullmatch(r"[0-9]+(\.[0-9]+)?", row["quantity"]) and re.fullmatch(
            r"[0-9]+(\.[0-9]+)?", row["price"])
        for column in ("allocated_at", "executed_at"):
            assert dt.datetime.fromisoformat(row[column]).tzinfo is not None
    by_account = {(r["order_id"], r["account"]): r for r in rows}
    assert by_account[("XYZ-BLOCK-1", "CLIENT-A")]["quantity"] == "15000"
    assert by_account[("XYZ-BLOCK-1", "PROPRIETARY")]["attr.proprietary"] == "true"
    assert by_account[("ABC-BLOCK-7", "SMALL-3")]["quantity"] == "700"  # the approved override
    with (tmp_path / "export" / "overrides.csv").open() as handle:
        moved = {r["account"]: r for r in csv.DictReader(handle)}
    assert set(moved) == {"INCOME-2", "SMALL-3"} and moved["SMALL-3"]["status"] == "approved"
    with (tmp_path / "export" / "fills.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 7  # every confirmation of the day
    from fairalloc.forensics.history import read_allocations, read_overrides

    # The forensic review reads the export as it is, refusing no row even in strict mode.
    assert read_allocations(tmp_path / "export" / "allocations.csv", True)[1].refused == 0
    assert read_overrides(tmp_path / "export" / "overrides.csv", True)[1].refused == 0
    head = json.loads((tmp_path / "export" / "head.json").read_text())["head"]
    status, out, _ = run(capsys, ledger_url, "ledger", "verify", "--anchor",
                         f"{head['seq']}:{head['hash']}")
    assert status == 0


def test_hard_stop_and_self_review_through_the_cli(ledger_url: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _staffed(capsys, ledger_url)
    trade = str(EQUITY_TRADE)
    status, _out, err = run(capsys, ledger_url, "order", "enter", trade, "--policy",
                            "us-equity-pro-rata", "--user", "tom")
    assert status == ExitCode.REFUSED and "pretrade-statement-missing" in err
    assert "Traceback" not in err
    for argv in (("order", "statement", trade, "--user", "pam"),
                 ("order", "enter", trade, "--policy", "us-equity-pro-rata", "--user", "tom"),
                 ("order", "fills", trade, "--user", "tom"),
                 ("order", "fills", trade, "--user", "tom"),
                 ("order", "allocate", "XYZ-BLOCK-1", "--user", "tom"),
                 ("ledger", "user", "grant", "tom", "cco", "--user", "ada"),
                 ("order", "override", "XYZ-BLOCK-1", "--set", "CLIENT-A=14900", "--set",
                  "CLIENT-B=6000", "--set", "CLIENT-C=3100", "--set", "PROPRIETARY=6000",
                  "--reason", "ODD-LOT-CLEANUP", "--memo", "odd lot", "--user", "tom")):
        status, _out, err = run(capsys, ledger_url, *argv)
        assert status == 0, err
    status, _out, err = run(capsys, ledger_url, "order", "review", "XYZ-BLOCK-1", "--approve",
                            "--user", "tom")
    assert status == ExitCode.REFUSED and "review-by-requester" in err
    status, out, _ = run(capsys, ledger_url, "order", "show", "XYZ-BLOCK-1", "--format", "json")
    kinds = [e["kind"] for e in json.loads(out)]
    assert kinds.count("fill.recorded") == 2 and "override.reviewed" not in kinds


def test_policy_commands(ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _staffed(capsys, ledger_url)
    status, out, _ = run(capsys, ledger_url, "policy", "history", "--format", "json")
    history = json.loads(out)
    assert [(h["id"], h["version"], h["published_by"]) for h in history] == [
        ("us-equity-pro-rata", 1, "cole"), ("fixed-income-rotation", 1, "cole")]
    status, out, _ = run(capsys, ledger_url, "policy", "show", "us-equity-pro-rata@1")
    assert status == 0 and "method: pro_rata" in out and history[0]["digest"] in out
    status, out, _ = run(capsys, ledger_url, "policy", "show", "us-equity-pro-rata", "--canonical")
    import hashlib

    assert "sha256:" + hashlib.sha256(out.rstrip("\n").encode()).hexdigest() == history[0]["digest"]
    status, _out, err = run(capsys, ledger_url, "policy", "show", "nope@3")
    assert status == ExitCode.LEDGER and "policy-not-published" in err


def test_commands_other_than_init_do_not_create_a_ledger(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "typo.db")
    status, _out, err = run(capsys, url, "ledger", "verify")
    assert status == ExitCode.LEDGER and "ledger-not-initialised" in err
    assert not (tmp_path / "typo.db").exists()
    assert run(capsys, url, "ledger", "init", "--admin", "ada")[0] == 0
    assert run(capsys, url, "ledger", "verify")[0] == 0


def test_verify_exit_status_on_tampering(ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from fairalloc.ledger.store import Ledger

    _staffed(capsys, ledger_url)
    with Ledger(ledger_url) as ledger:
        tamper(ledger, "UPDATE events SET actor = 'mallory' WHERE seq = 2")
    status, out, _ = run(capsys, ledger_url, "ledger", "verify", "--format", "json")
    report = json.loads(out)
    assert status == ExitCode.CHECK_FAILED and not report["ok"]
    assert report["findings"][0]["code"] == "ledger-event-edited"


def test_replay_reports_what_differs(ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from fairalloc.ledger.store import Ledger

    _staffed(capsys, ledger_url)
    _record_day(capsys, ledger_url)
    with Ledger(ledger_url) as ledger:
        with ledger.read() as session:
            fill = session.by_key("fill:XYZ-BLOCK-1:F-2")
        assert fill is not None
        edited = fill.payload.replace('"quantity":12000', '"quantity":2000')
        tamper(ledger, f"UPDATE events SET payload = '{edited}' WHERE seq = {fill.seq}")
    status, out, _ = run(capsys, ledger_url, "replay", "XYZ-BLOCK-1", "--format", "json")
    result = json.loads(out)[0]
    assert status == ExitCode.CHECK_FAILED and not result["identical"]
    pointers = {d["pointer"] for d in result["differences"]}
    assert "/document/filled" in pointers
    assert any(p.startswith("/document/allocations/") for p in pointers)


def test_the_day_matches_the_stateless_engine_byte_for_byte(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """What the ledger recorded for each order of the example day is exactly what
    ``fairalloc allocate`` computes from the same trade file, policy and rotation state."""
    from fairalloc.ledger.chain import canonical_json
    from fairalloc.ledger.store import Ledger

    url = f"sqlite:///{tmp_path / 'day.db'}"
    _staffed(capsys, url)
    _record_day(capsys, url)
    state = ROOT / "examples" / "fixed-income-rotation.state.json"
    cases = [("XYZ-BLOCK-1", EQUITY_POLICY, EQUITY_TRADE, None),
             ("FI-2026-03-02-001", ROTATION_POLICY, ROOT / "examples" / "fixed-income-rotation.trade.json",
              state)]
    with Ledger(url) as ledger, ledger.read() as session:
        for order_id, policy, trade, rotation in cases:
            recorded = session.by_key(f"allocation:{order_id}")
            assert recorded is not None
            argv = ["allocate", "--policy", str(policy), "--trade", str(trade)]
            if rotation is not None:
                argv += ["--rotation", str(rotation)]
            capsys.readouterr()
            assert main(argv) == 0
            computed = json.loads(capsys.readouterr().out)
            assert canonical_json(recorded.data()["document"]) == canonical_json(computed)
