"""The ``fairalloc`` command as users run it: formats, files, exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from fairalloc.cli import main

from .conftest import EXAMPLES, POLICIES

EQUITY = str(POLICIES / "us-equity-pro-rata.yaml")
TRADE = str(EXAMPLES / "us-equity-pro-rata.trade.json")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fairalloc", *args], capture_output=True, text=True)


def test_validate_prints_identity_of_each_policy(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in POLICIES.glob("*.yaml"))
    assert main(["validate", *files]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(files)
    assert all(line.startswith("ok  ") and "sha256:" in line for line in out)


def test_validate_json_report_mixes_valid_and_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("fairalloc: 1\n")
    assert main(["validate", "--format", "json", EQUITY, str(bad)]) == 3
    report = json.loads(capsys.readouterr().out)
    assert [entry["valid"] for entry in report] == [True, False]
    assert report[1]["errors"][0]["code"] == "schema-missing-key"


def test_allocate_json_with_explanation_is_deterministic(tmp_path: Path) -> None:
    first = run("allocate", "--policy", EQUITY, "--trade", TRADE, "--explain")
    second = run("allocate", "--policy", EQUITY, "--trade", TRADE, "--explain")
    assert first.returncode == 0 and first.stdout == second.stdout
    document = json.loads(first.stdout)
    assert all("explain" in entry for entry in document["allocations"])


def test_allocate_table_for_people() -> None:
    done = run("allocate", "--policy", EQUITY, "--trade", TRADE, "--format", "table")
    assert done.returncode == 0
    assert "CLIENT-A" in done.stdout and "15000" in done.stdout and "us-equity-pro-rata@1" in done.stdout


def test_rotation_state_round_trip_through_files(tmp_path: Path) -> None:
    policy = str(POLICIES / "fixed-income-rotation.yaml")
    trade = str(EXAMPLES / "fixed-income-rotation.trade.json")
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"group": "fixed-income-rotation/core", "position": 0, "day": None}))
    leaders = []
    for _ in range(4):
        done = run("allocate", "--policy", policy, "--trade", trade, "--rotation", str(state),
                   "--rotation-out", str(state), "--explain")
        assert done.returncode == 0, done.stderr
        allocations = json.loads(done.stdout)["allocations"]
        leaders.append(next(a["account"] for a in allocations if a["explain"].get("rotation_position") == 0))
    assert leaders == ["FI-PENSION-1", "FI-ENDOW-2", "FI-INSUR-3", "FI-FOUND-4"]


def test_bad_rotation_state_is_an_input_error(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"group": "fixed-income-rotation/core", "position": -1}))
    done = run("allocate", "--policy", str(POLICIES / "fixed-income-rotation.yaml"),
               "--trade", str(EXAMPLES / "fixed-income-rotation.trade.json"), "--rotation", str(state))
    assert done.returncode == 4
    assert "error[rotation-state]" in done.stderr and "#/position" in done.stderr


@pytest.mark.parametrize("name", ["policy", "trade", "allocation"])
def test_schema_export_is_a_valid_json_schema(name: str, tmp_path: Path) -> None:
    target = tmp_path / f"{name}.json"
    assert main(["schema", name, "-o", str(target)]) == 0
    jsonschema.Draft202012Validator.check_schema(json.loads(target.read_text()))


def test_errors_as_json_for_machines() -> None:
    done = run("--error-format", "json", "allocate", "--policy", EQUITY, "--trade", "/no/such/file.json")
    assert done.returncode == 7
    payload = json.loads(done.stderr)
    assert payload["exit_code"] == 7 and payload["errors"][0]["code"] == "file-not-found"


def test_usage_errors_exit_2() -> None:
    done = run("allocate", "--policy", EQUITY)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_a_command_imports_only_what_it_needs() -> None:
    code = (
        "import sys; from fairalloc.cli import main; main(['validate', %r]);"
        "heavy = [m for m in ('sqlalchemy', 'polars', 'pydantic', 'numpy') if m in sys.modules];"
        "print('HEAVY=' + ','.join(heavy))"
    ) % EQUITY
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "HEAVY="


def test_help_lists_every_command_without_importing_them() -> None:
    done = run("--help")
    assert done.returncode == 0
    for name in ("validate", "allocate", "schema", "policy", "order", "replay", "ledger", "review", "simulate"):
        assert f"    {name}" in done.stdout
