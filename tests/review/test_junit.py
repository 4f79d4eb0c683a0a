"""JUnit XML: valid against the common JUnit schema, with failures, errors and coverage properties."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from fairalloc.cli import main

from ..conftest import POLICIES

SCHEMA = xmlschema.XMLSchema(str(Path(__file__).with_name("junit.xsd")))


def test_shipped_suites_give_valid_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "junit.xml"
    coverage = tmp_path / "coverage.json"
    assert main(["test", str(POLICIES / "tests"), "--junit", str(report), "--coverage-json", str(coverage)]) == 0
    SCHEMA.validate(str(report))
    root = ET.parse(report).getroot()
    assert int(root.get("tests", "0")) == len(root.findall(".//testcase")) >= 15
    assert root.get("failures") == "0" and root.get("errors") == "0"
    names = {p.get("name") for p in root.iter("property")}
    assert "coverage:rule:restricted-person-5130:fires" in names
    out = capsys.readouterr().out
    assert "Rule coverage" in out and "0 failing, 0 error(s)" in out


def test_failures_and_broken_files_are_in_the_xml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = POLICIES.parent / "examples" / "us-equity-pro-rata.trade.json"
    (tmp_path / "bad.yaml").write_text(f"policy: {POLICIES / 'us-equity-pro-rata.yaml'}\ncases: 3\n")
    (tmp_path / "wrong.yaml").write_text(
        f"policy: {POLICIES / 'us-equity-pro-rata.yaml'}\ncases:\n"
        f"  - name: wrong <&> number\n    trade: {example}\n    expect: {{allocations: {{CLIENT-A: 1}}}}\n")
    report = tmp_path / "junit.xml"
    assert main(["test", str(tmp_path), "--junit", str(report)]) == 1
    SCHEMA.validate(str(report))
    root = ET.parse(report).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "1")
    failure = root.find(".//failure")
    assert failure is not None and failure.get("message") == "CLIENT-A: expected 1, allocated 15000"
    error = root.find(".//error")
    assert error is not None and error.get("type") == "policytest-cases"
    out = capsys.readouterr().out
    assert "FAIL" in out and "wrong.yaml" in out
    assert f"{tmp_path / 'bad.yaml'}:2:8: error[policytest-cases]" in out


def test_no_test_files_is_a_failure(tmp_path: Path) -> None:
    assert main(["test", str(tmp_path)]) == 1
