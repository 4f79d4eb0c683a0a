"""The review and simulate commands: exit statuses, located errors, nothing half-written."""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable

import pytest

from fairalloc.errors import ExitCode
from tests.forensics.conftest import write_history

Cli = Callable[[list[str]], int]


def test_simulate_then_review_flags_a_cherry_picker(
    cli: Cli, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["simulate", str(tmp_path / "h"), "--orders", "120", "--cherry-picker"]) == 0
    status = cli(["review", str(tmp_path / "h"), "--favoured", 'attr.fee_basis == "performance"',
                  "--draws", "2000", "--out", str(tmp_path / "out")])
    assert status == ExitCode.CHECK_FAILED
    out = capsys.readouterr().out
    assert "Findings, ranked" in out and "FLAG" in out and "report.html" in out
    doc = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert doc["settings"]["draws"] == 2000
    assert (tmp_path / "out" / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_fair_history_exits_zero(cli: Cli, tmp_path: pathlib.Path) -> None:
    assert cli(["simulate", str(tmp_path / "h"), "--orders", "60", "--seed", "4"]) == 0
    assert cli(["review", str(tmp_path / "h"), "--draws", "500", "--quiet",
                "--out", str(tmp_path / "out")]) == ExitCode.OK
    doc = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert doc["verdict"] == {"status": "clean", "exit_code": 0, "flagged": [], "not_tested": []}


def test_fair_history_judged_against_the_policy_deadline(cli: Cli, tmp_path: pathlib.Path) -> None:
    assert cli(["simulate", str(tmp_path / "h"), "--orders", "120", "--seed", "5"]) == 0
    policy = pathlib.Path(__file__).parents[2] / "policies" / "us-equity-pro-rata.yaml"
    assert cli(["review", str(tmp_path / "h"), "--draws", "500", "--quiet", "--policy",
                str(policy), "--grace-minutes", "0", "--out", str(tmp_path / "out")]) == ExitCode.OK
    doc = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert doc["settings"]["deadline"]["source"].startswith("policy us-equity-pro-rata@")
    counts = doc["analyses"]["timing"]["allocations"]["counts"]
    assert counts["after_close_within_policy"] > 0 and counts["late"] == 0


def test_a_test_that_could_not_run_is_its_own_status(
    cli: Cli, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["simulate", str(tmp_path / "h"), "--orders", "60", "--seed", "4"]) == 0
    status = cli(["review", str(tmp_path / "h"), "--draws", "200", "--quiet", "--favoured",
                  'attr.fee_basis == "nobody"', "--out", str(tmp_path / "out")])
    assert status == ExitCode.NOT_TESTED == 8
    assert "could not run: returns.favoured.all" in capsys.readouterr().err
    doc = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert doc["verdict"]["status"] == "not_tested"


def test_header_without_rows_is_a_clean_error(
    cli: Cli, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_history(tmp_path / "h")
    text = (folder / "allocations.csv").read_text()
    (folder / "allocations.csv").write_text(text.splitlines()[0] + "\n")
    assert cli(["review", str(folder), "--out", str(tmp_path / "o")]) == ExitCode.INVALID_INPUT
    assert "allocations.csv:2: error[forensics.no_rows]" in capsys.readouterr().err


def test_malformed_file_is_located_and_nothing_is_written(
    cli: Cli, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_history(tmp_path / "h")
    (folder / "allocations.csv").write_text("order_id,symbol\nB1,XYZ\n")
    status = cli(["review", str(folder), "--out", str(tmp_path / "out")])
    assert status == ExitCode.INVALID_INPUT
    err = capsys.readouterr().err
    assert "allocations.csv:1: error[forensics.missing_column]" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_strict_refuses_bad_rows_with_file_line_column(
    cli: Cli, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_history(tmp_path / "h")
    with (folder / "allocations.csv").open("a") as handle:
        handle.write("B7,2025-03-04,XYZ,buy,A,10,abc,2025-03-04T10:00:00-05:00,,,,,pm,asset\n")
    status = cli(["--error-format", "json", "review", str(folder), "--strict",
                  "--out", str(tmp_path / "out")])
    assert status == ExitCode.INVALID_INPUT
    error = json.loads(capsys.readouterr().err)["errors"][0]
    assert (error["code"], error["line"], error["column"]) == ("forensics.bad_decimal", 6, 7)


def test_unreadable_input_exits_7(cli: Cli, tmp_path: pathlib.Path) -> None:
    status = cli(["review", "--allocations", str(tmp_path / "missing.csv"),
                  "--prices", str(tmp_path / "missing2.csv"), "--out", str(tmp_path / "o")])
    assert status == ExitCode.IO


def test_bad_favoured_expression_exits_4(
    cli: Cli, history: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli(["review", str(history), "--favoured", "attr.fee_basis = 1",
                  "--out", str(tmp_path / "o")])
    assert status == ExitCode.INVALID_INPUT
    assert "forensics.bad_favoured" in capsys.readouterr().err


def test_bad_options_are_usage_errors(cli: Cli, history: pathlib.Path) -> None:
    assert cli(["review", str(history), "--draws", "-1"]) == ExitCode.USAGE
    assert cli(["review", str(history), "--alpha", "0"]) == ExitCode.USAGE


def test_outputs_get_the_usual_file_mode(cli: Cli, tmp_path: pathlib.Path) -> None:
    assert cli(["simulate", str(tmp_path / "h"), "--orders", "30"]) == 0
    cli(["review", str(tmp_path / "h"), "--draws", "100", "--quiet", "--out", str(tmp_path / "o")])
    umask = os.umask(0)
    os.umask(umask)
    for name in ("findings.json", "report.html"):
        assert (tmp_path / "o" / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_every_exit_status_is_documented() -> None:
    docs = pathlib.Path(__file__).parents[2] / "docs"
    table = (docs / "cli.md").read_text()
    for code in ExitCode:
        assert f"| {int(code)} | `{code.name}` |" in table, code
    forensics = (docs / "forensics.md").read_text()
    for status, verdict in ((0, "clean"), (1, "flagged"), (8, "not tested")):
        assert f"| **{status}** | {verdict} |" in forensics


def test_a_parquet_history_folder_is_reviewed_like_csv(cli: Cli, tmp_path: pathlib.Path) -> None:
    from tests.forensics.test_history import _to_parquet

    folder = tmp_path / "h"
    assert cli(["simulate", str(folder), "--orders", "80", "--cherry-picker"]) == 0
    args = ["--favoured", 'attr.fee_basis == "performance"', "--draws", "300", "--quiet"]
    assert cli(["review", str(folder), *args, "--out", str(tmp_path / "csv")]) == 1
    for name, decimals in (("allocations", {"price": 2}), ("prices", {"close": 2}),
                           ("overrides", {})):
        _to_parquet(folder / f"{name}.csv", decimals)
        (folder / f"{name}.csv").unlink()
    assert cli(["review", str(folder), *args, "--out", str(tmp_path / "pq")]) == 1
    csv_doc = json.loads((tmp_path / "csv" / "findings.json").read_text())
    pq_doc = json.loads((tmp_path / "pq" / "findings.json").read_text())
    assert [f["id"] for f in csv_doc["findings"]] == [f["id"] for f in pq_doc["findings"]]
    assert csv_doc["analyses"] == pq_doc["analyses"]
    assert pq_doc["inputs"]["files"][0]["file"].endswith("allocations.parquet")
