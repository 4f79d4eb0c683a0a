"""Rule coverage: covered and uncovered branches, and naming the rules no test fired."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fairalloc import allocate, load_policy, load_trade, policy_from_text
from fairalloc.cli import main
from fairalloc.cli.test import coverage_by_policy
from fairalloc.review.coverage import measure
from fairalloc.cli._files import TEST_KEY, find_files
from fairalloc.review.policytest import run_file

from ..conftest import EXAMPLES, POLICIES, example_trade


def test_shipped_suites_cover_every_rule_and_branch() -> None:
    coverage = coverage_by_policy([run_file(p) for p in find_files([str(POLICIES / "tests")], TEST_KEY)])
    assert len(coverage) == len(list(POLICIES.glob("*.yaml")))  # every shipped policy has its suite
    assert {item.policy: [f"{b.target}:{b.branch}" for b in item.uncovered] for item in coverage.values()} == {
        item.policy: [] for item in coverage.values()}


def test_names_an_untested_rule() -> None:
    rule = ("  - id: never-tested\n    when: 'account.fee_basis == \"performance\" and fill.ratio > 200%'\n"
            "    action: zero\n    reason: A rule no case exercises.\n\n")
    text = (POLICIES / "us-equity-pro-rata.yaml").read_text().replace("overrides:", rule + "overrides:")
    policy = policy_from_text(text)
    result = allocate(policy, load_trade(EXAMPLES / "us-equity-pro-rata.trade.json"))
    coverage = measure(policy, [result])
    assert coverage.untested_rules == ("never-tested",)
    branches = {(b.target, b.branch): b.covered for b in coverage.branches}
    assert branches[("rule:proprietary-in-partial-fill", "fires")]
    assert not branches[("rule:never-tested", "denies")]
    assert not branches[("minimum", "denies")] and branches[("minimum", "met")]
    assert not branches[("applies_to", "declines")]


def test_cap_that_fires_but_never_binds_is_reported() -> None:
    policy = load_policy(POLICIES / "new-issue-ipo.yaml")
    trade = example_trade("new-issue-ipo")
    intended = {"GROWTH-FUND": 11000, "PENSION-A": 10000, "INDIVIDUAL-D": 8000}
    for entry in trade["statement"]["accounts"]:
        entry["intended"] = intended.get(entry["account"], entry["intended"])
    trade["order"]["quantity"] = sum(entry["intended"] for entry in trade["statement"]["accounts"])
    result = allocate(policy, load_trade(trade))  # GROWTH-FUND: above a quarter of the fill, share below it
    coverage = measure(policy, [result])
    detail = {(d["target"], d["branch"]): d["covered"] for d in coverage.to_json()["detail"]}
    assert detail[("rule:quarter-of-allotment-cap", "fires")]
    assert not detail[("rule:quarter-of-allotment-cap", "binds")]


def test_policy_without_rules_has_only_its_own_branches(tmp_path: Path) -> None:
    policy = load_policy(POLICIES / "limit-order-price-time.yaml")
    coverage = measure(policy, [], [("policy-not-applicable",)])
    assert [(b.target, b.branch, b.cases) for b in coverage.branches] == [
        ("applies_to", "governs", 0), ("applies_to", "declines", 1), ("rule:late-instruction", "fires", 0)]
    assert coverage.untested_rules == ("late-instruction",)


def test_cli_names_untested_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "one.yaml").write_text(
        f"policy: {POLICIES / 'new-issue-ipo.yaml'}\ncases:\n  - name: only a refusal\n"
        f"    trade: {EXAMPLES / 'us-equity-pro-rata.trade.json'}\n    expect: {{refused: policy-not-applicable}}\n")
    report = tmp_path / "coverage.json"
    assert main(["test", str(tmp_path), "--coverage-json", str(report)]) == 0
    out = capsys.readouterr().out
    assert ("new-issue-ipo@1: rule(s) no test fired: restricted-person-5130, quarter-of-allotment-cap, "
            "employee-related-account") in out
    assert "NOT COVERED" in out
    [entry] = json.loads(report.read_text())
    assert entry["untested_rules"] == ["restricted-person-5130", "quarter-of-allotment-cap", "employee-related-account"]
