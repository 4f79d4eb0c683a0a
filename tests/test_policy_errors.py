"""Invalid policies: each case file under tests/cases/invalid-policies states, on its last line,
the stable error code and line:column the validator must report first (``# expect: CODE L:C``).
Codes and locations are asserted, not wording."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fairalloc import PolicyError, load_policy
from fairalloc.cli import main

from .conftest import CASES

CASE_FILES = sorted((CASES / "invalid-policies").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\S+) (\d+):(\d+)$", re.M)


def test_there_are_at_least_thirty_distinct_cases() -> None:
    assert len(CASE_FILES) >= 30
    codes = {EXPECT.search(path.read_text()).group(1) for path in CASE_FILES}  # type: ignore[union-attr]
    assert len(codes) >= 25


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_invalid_policy_is_reported_at_its_location(path: Path) -> None:
    match = EXPECT.search(path.read_text())
    assert match, f"{path.name} lacks an '# expect:' line"
    code, line, column = match.group(1), int(match.group(2)), int(match.group(3))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    first = caught.value.diagnostics[0]
    assert (first.code, first.location.line, first.location.column) == (code, line, column)
    assert first.location.file == str(path)
    assert all(d.message for d in caught.value.diagnostics)


@pytest.mark.parametrize("path", CASE_FILES[:8], ids=[p.stem for p in CASE_FILES[:8]])
def test_cli_reports_without_traceback(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert status == 3
    assert "Traceback" not in err
    assert re.search(rf"{re.escape(str(path))}:\d+:\d+: error\[", err)


def test_all_errors_are_reported_at_once(tmp_path: Path) -> None:
    policy = tmp_path / "many.yaml"
    policy.write_text(
        "fairalloc: 1\nid: many\nversion: 1\neffective: 2026-01-01\nowner: CCO\nmethod: pro_rata\n"
        "rounding:\n  lot: 100\n  tie_brake: account_id\nrules:\n"
        "  - id: a\n    when: 'account.nope > 1'\n    action: flag\n    reason: r\n"
        "  - id: b\n    when: 'account.intended >'\n    action: flag\n    reason: r\n"
    )
    with pytest.raises(PolicyError) as caught:
        load_policy(policy)
    # the schema error stops compilation; fix it and the two expression errors show together
    assert caught.value.codes == ["schema-unknown-key"]
    policy.write_text(policy.read_text().replace("  tie_brake: account_id\n", ""))
    with pytest.raises(PolicyError) as caught:
        load_policy(policy)
    assert caught.value.codes == ["expr-unknown-field", "expr-syntax"]
    assert [d.location.line for d in caught.value.diagnostics] == [11, 15]


def test_shipped_policies_are_valid() -> None:
    from .conftest import POLICIES

    for path in sorted(POLICIES.glob("*.yaml")):
        policy = load_policy(path)
        assert policy.digest.startswith("sha256:") and len(policy.digest) == 71
