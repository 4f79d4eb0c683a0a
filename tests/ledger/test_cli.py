"""The full workflow through the ``fairalloc`` command, on SQLite and on PostgreSQL.

The command records who runs it, not who it is told: on SQLite the OS user running the tests,
on PostgreSQL the role of the URL (``clerk``, a writer; the ledger is created by the owner). One
identity runs every step here, holding every role — so it may not review its own override.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from sqlalchemy.engine import make_url

from fairalloc.cli import main
from fairalloc.errors import ExitCode
from fairalloc.ledger.identity import os_user

from .conftest import tamper
from .helpers import EQUITY_POLICY, EQUITY_TRADE, ROOT, ROTATION_POLICY, retimed

DAY = ROOT / "examples" / "ledger-day"


@pytest.fixture
def cli_url(ledger_url: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """(the URL the writer uses, its identity) of a ledger initialised by its owner."""
    if ledger_url.startswith("sqlite"):
        identity, writer = os_user(), ledger_url
    else:
        identity = "clerk"
        writer = make_url(ledger_url).set(username=identity).render_as_string(hide_password=False)
    assert run(capsys, ledger_url, "ledger", "init", "--admin", identity)[0] == 0
    if not ledger_url.startswith("sqlite"):
        status, _out, err = run(capsys, ledger_url, "ledger", "roles", "--writer", identity)
        assert status == 0, err
    return writer, identity


def _now(path: Path, tmp: Path) -> str:
    """A copy of trade file ``path`` entered and executed now (its trade date kept)."""
    copy = tmp / path.name
    copy.write_text(json.dumps(retimed(json.loads(path.read_text()))))
    return str(copy)


def run(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main([*argv, "--ledger", url])
    out, err = capsys.readouterr()
    return status, out, err


def _staffed(capsys: pytest.CaptureFixture[str], cli: tuple[str, str]) -> None:
    url, identity = cli
    for role in ("pm", "trader", "cco"):
        status, _out, err = run(capsys, url, "ledger", "user", "grant", identity, role, "--user", "ada")
        assert status == 0, err
    for policy in (EQUITY_POLICY, ROTATION_POLICY):
        assert run(capsys, url, "policy", "publish", str(policy), "--user", "cole")[0] == 0


def _record_day(capsys: pytest.CaptureFixture[str], url: str, tmp: Path) -> list[str]:
    day = json.loads((DAY / "day.json").read_text())
    for state in day["rotation_states"]:
        status, _out, err = run(capsys, url, "ledger", "rotation-seed", str(DAY / state), "--user", "cole")
        assert status == 0, err
    ids = []
    for entry in day["orders"]:
        trade = _now((DAY / entry["trade"]).resolve(), tmp)
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
                                    "--user", "cole")  # the same identity: --user changes nothing
            assert status == ExitCode.REFUSED and "review-by-requester" in err, err
    return ids


def test_full_workflow_verify_replay_export(cli_url: tuple[str, str], capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    _staffed(capsys, cli_url)
    ledger_url = cli_url[0]
    ids = _record_day(capsys, ledger_url, tmp_path)
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
    assert by_account[("ABC-BLOCK-7", "SMALL-3")]["quantity"] == "600"  # the override is pending
    assert by_account[("XYZ-BLOCK-1", "CLIENT-A")]["allocated_by"] == cli_url[1]
    with (tmp_path / "export" / "overrides.csv").open() as handle:
        moved = {r["account"]: r for r in csv.DictReader(handle)}
    assert set(moved) == {"INCOME-2", "SMALL-3"} and moved["SMALL-3"]["status"] == "pending-review"
    with (tmp_path / "export" / "events.csv").open() as handle:
        events = list(csv.DictReader(handle))
    assert {e["actor"] for e in events} == {cli_url[1]}  # who ran each command ...
    assert {e["on_behalf_of"] for e in events} == {"pam", "tom"}  # ... and on whose behalf it said
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


def test_hard_stop_and_self_review_through_the_cli(cli_url: tuple[str, str], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _staffed(capsys, cli_url)
    ledger_url = cli_url[0]
    trade = _now(EQUITY_TRADE, tmp_path)
    status, _out, err = run(capsys, ledger_url, "order", "enter", trade, "--policy",
                            "us-equity-pro-rata", "--user", "tom")
    assert status == ExitCode.REFUSED and "pretrade-statement-missing" in err
    assert "Traceback" not in err
    for argv in (("order", "statement", trade, "--user", "pam"),
                 ("order", "enter", trade, "--policy", "us-equity-pro-rata", "--user", "tom"),
                 ("order", "fills", trade, "--user", "tom"),
                 ("order", "fills", trade, "--user", "tom"),
                 ("order", "allocate", "XYZ-BLOCK-1", "--user", "tom"),
                 ("order", "allocate", "XYZ-BLOCK-1", "--user", "tom"),  # a retry: exit 0
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
    assert kinds.count("order.allocated") == 1


def test_policy_commands(cli_url: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    _staffed(capsys, cli_url)
    ledger_url, identity = cli_url
    status, out, _ = run(capsys, ledger_url, "policy", "history", "--format", "json")
    history = json.loads(out)
    assert [(h["id"], h["version"], h["published_by"]) for h in history] == [
        ("us-equity-pro-rata", 1, identity), ("fixed-income-rotation", 1, identity)]
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
    assert run(capsys, url, "ledger", "init", "--admin", os_user())[0] == 0
    assert run(capsys, url, "ledger", "verify")[0] == 0
    status, out, _ = run(capsys, url, "ledger", "whoami")
    assert status == 0 and out.strip() == f"{os_user()} (os-user): admin"


def test_verify_exit_status_on_tampering(cli_url: tuple[str, str], ledger_url: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from fairalloc.ledger.store import Ledger

    _staffed(capsys, cli_url)
    with Ledger(ledger_url) as ledger:
        tamper(ledger, "UPDATE events SET actor = 'mallory' WHERE seq = 2")
    status, out, _ = run(capsys, cli_url[0], "ledger", "verify", "--format", "json")
    report = json.loads(out)
    assert status == ExitCode.CHECK_FAILED and not report["ok"]
    assert report["findings"][0]["code"] == "ledger-event-edited"


def test_replay_reports_what_differs(cli_url: tuple[str, str], ledger_url: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from fairalloc.ledger.store import Ledger

    _staffed(capsys, cli_url)
    _record_day(capsys, cli_url[0], tmp_path)
    with Ledger(ledger_url) as ledger:
        with ledger.read() as session:
            fill = session.by_key("fill:XYZ-BLOCK-1:F-2")
        assert fill is not None
        edited = fill.payload.replace('"quantity":12000', '"quantity":2000')
        tamper(ledger, f"UPDATE events SET payload = '{edited}' WHERE seq = {fill.seq}")
    status, out, _ = run(capsys, cli_url[0], "replay", "XYZ-BLOCK-1", "--format", "json")
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
    assert run(capsys, url, "ledger", "init", "--admin", os_user())[0] == 0
    _staffed(capsys, (url, os_user()))
    _record_day(capsys, url, tmp_path)
    state = ROOT / "examples" / "fixed-income-rotation.state.json"
    cases = [("XYZ-BLOCK-1", EQUITY_POLICY, tmp_path / EQUITY_TRADE.name, None),
             ("FI-2026-03-02-001", ROTATION_POLICY, tmp_path / "fixed-income-rotation.trade.json", state)]
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


def test_fill_corrections_busts_and_a_late_statement_through_the_cli(
        cli_url: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import datetime as dt

    from .helpers import now_iso

    _staffed(capsys, cli_url)
    url = cli_url[0]
    doc = json.loads(EQUITY_TRADE.read_text())
    doc["order"]["entered_at"] = now_iso(-80 * 60 - 60)
    for fill in doc["fills"]:
        fill["executed_at"] = now_iso(-80 * 60)
    trade = tmp_path / "late.json"
    trade.write_text(json.dumps(doc))
    status, _out, err = run(capsys, url, "order", "statement", str(trade))
    assert status == ExitCode.REFUSED and "intent-after-execution" in err and "80 minutes" in err
    status, _out, err = run(capsys, url, "order", "statement", str(trade), "--memo", "why")
    assert status == ExitCode.INVALID_INPUT and "bad-late-statement" in err
    status, out, err = run(capsys, url, "order", "statement", str(trade), "--late-reason",
                           "MANUAL-TICKET", "--memo", "telephone order")
    assert status == 0 and "LATE (MANUAL-TICKET)" in out, err
    for argv in (("order", "enter", str(trade), "--policy", "us-equity-pro-rata"),
                 ("order", "fills", str(trade)), ("order", "allocate", "XYZ-BLOCK-1")):
        status, _out, err = run(capsys, url, *argv)
        assert status == 0, err
    status, out, err = run(capsys, url, "order", "fill", "correct", "XYZ-BLOCK-1", "F-2", "--id", "F-2C",
                           "--quantity", "2000", "--price", "100.075", "--executed-at", now_iso())
    assert status == 0 and "RE-ALLOCATED (fill-corrected" in out, err
    status, out, err = run(capsys, url, "order", "fill", "bust", "XYZ-BLOCK-1", "F-1")
    assert status == 0 and "RE-ALLOCATED (fill-busted" in out, err
    status, again, err = run(capsys, url, "order", "fill", "bust", "XYZ-BLOCK-1", "F-1")  # a retry
    assert status == 0 and again == out, err
    status, out, _ = run(capsys, url, "ledger", "alerts", "--format", "json")
    assert [a["alert"] for a in json.loads(out)] == ["late-statement", "late-allocation", "reallocation",
                                                     "reallocation"]  # dated 2026-03-02: late too
    status, out, _ = run(capsys, url, "replay", "XYZ-BLOCK-1", "--format", "json")
    assert status == 0 and json.loads(out)[0]["identical"]
    status, out, _ = run(capsys, url, "ledger", "verify")
    assert status == 0 and "ledger intact" in out
    assert dt.date.fromisoformat(doc["order"]["trade_date"])  # the trade date was kept


def test_ledger_roles_is_for_postgresql(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "l.db")
    assert run(capsys, url, "ledger", "init", "--admin", os_user())[0] == 0
    status, _out, err = run(capsys, url, "ledger", "roles", "--writer", "tom")
    assert status == ExitCode.LEDGER and "roles-sqlite" in err


def test_a_refused_step_names_the_trade_file_in_its_location(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The workflow points into the trade document (/fills); the location named no file at all.
    ledger = str(tmp_path / "ledger.db")
    me = os_user()
    assert main(["ledger", "init", "--admin", me, "--ledger", ledger]) == 0
    assert main(["ledger", "user", "grant", me, "pm", "--ledger", ledger]) == 0
    assert main(["policy", "publish", str(EQUITY_POLICY), "--ledger", ledger]) == 0
    capsys.readouterr()
    # the example trade executed long before this statement is recorded: intent-after-execution
    assert main(["--error-format", "json", "order", "statement", str(EQUITY_TRADE), "--ledger", ledger]) == 5
    errors = json.loads(capsys.readouterr().err)["errors"]
    assert [(e["code"], e["file"], e["pointer"]) for e in errors] == [
        ("intent-after-execution", str(EQUITY_TRADE), "/fills")]
