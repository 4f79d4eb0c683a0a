"""Policy tests: the file format, the runner's verdicts, and located errors in test files."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairalloc.errors import InputError
from fairalloc.review.policytest import load_test_file, run_file

from ..conftest import POLICIES

SUITES = sorted((POLICIES / "tests").rglob("*.yaml"))


def test_every_shipped_policy_has_a_test_suite() -> None:
    tested = {load_test_file(str(path)).policy_path for path in SUITES}
    assert {str(path.relative_to(POLICIES.parent)) for path in POLICIES.glob("*.yaml")} <= {
        str(Path(p).resolve().relative_to(POLICIES.parent)) for p in tested}


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.parent.name)
def test_shipped_suites_pass(path: Path) -> None:
    result = run_file(str(path))
    assert not result.errors
    assert [r.messages for r in result.results if r.status != "passed"] == []
    assert result.ok and result.results


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "case.yaml"
    path.write_text(f"policy: {POLICIES / 'us-equity-pro-rata.yaml'}\n" + body)
    return path


EXAMPLE = POLICIES.parent / "examples" / "us-equity-pro-rata.trade.json"


def test_a_wrong_expectation_fails_with_every_difference(tmp_path: Path) -> None:
    path = write(tmp_path, f"""cases:
  - name: wrong numbers
    trade: {EXAMPLE}
    expect:
      allocations: {{CLIENT-A: 15100, CLIENT-B: 6000, CLIENT-C: 3000}}
      exceptions: {{minimum: [CLIENT-C]}}
""")
    [outcome] = run_file(str(path)).results
    assert outcome.status == "failed"
    assert outcome.messages == (
        "CLIENT-A: expected 15100, allocated 15000",
        "PROPRIETARY: expected 0, allocated 6000",
        "rule 'minimum' did not fire for CLIENT-C",
        "rule 'proprietary-in-partial-fill' fired for PROPRIETARY, which the case does not expect",
    )


def test_expected_refusal_that_did_not_happen_fails(tmp_path: Path) -> None:
    path = write(tmp_path, f"cases:\n  - name: r\n    trade: {EXAMPLE}\n    expect: {{refused: policy-not-applicable}}\n")
    [outcome] = run_file(str(path)).results
    assert outcome.status == "failed" and "was allocated" in outcome.messages[0]


def test_errors_in_a_test_file_are_located(tmp_path: Path) -> None:
    path = write(tmp_path, """cases:
  - name: bad
    trade:
      order: {id: X, symbol: S, side: hold, quantity: 10, trade_date: 2026-03-02, entered_at: '2026-03-02T14:30:00Z'}
      statement: {recorded_at: '2026-03-02T14:29:00Z', recorded_by: pm, accounts: [{account: A, intended: 10}]}
      fills: []
    expect: {allocations: {A: 10}, surprise: 1}
""")
    with pytest.raises(InputError) as caught:
        load_test_file(str(path))
    found = {(d.code, d.location.line, d.location.column) for d in caught.value.diagnostics}
    assert ("policytest-unknown-key", 8, 36) in found
    assert ("trade-literal-error", 5, 39) in found
    result = run_file(str(path))
    assert result.errors and not result.ok


def test_missing_policy_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("policy: nowhere.yaml\ncases:\n  - name: x\n    trade: x.json\n    expect: {}\n")
    result = run_file(str(path))
    assert [d.code for d in result.errors] == ["file-not-found"]
