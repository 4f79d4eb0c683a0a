"""Semantic diff: changes described in a reviewer's words, rules matched by id, nothing missed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fairalloc import Policy, load_policy, policy_from_text
from fairalloc.cli import main
from fairalloc.review.diff import describe_condition, diff_policies
from fairalloc.review.fmt import format_text

from ..conftest import POLICIES


def text_of(name: str) -> str:
    return (POLICIES / f"{name}.yaml").read_text()


def changed(name: str, *replacements: tuple[str, str]) -> Policy:
    text = text_of(name).replace("version: 1", "version: 2")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return policy_from_text(text, f"{name}@2.yaml")


def words(old: Policy, new: Policy) -> list[str]:
    return [change.text for change in diff_policies(old, new).changes]


def test_formatting_is_no_change_of_meaning() -> None:
    old = load_policy(POLICIES / "new-issue-ipo.yaml")
    reformatted = policy_from_text(format_text(text_of("new-issue-ipo").replace("'account.restricted_person'",
                                                                                '"account.restricted_person"')))
    diff = diff_policies(old, reformatted)
    assert diff.same_meaning and diff.changes == ()
    assert "no change of meaning" in diff.text()


def test_minimum_and_lot_in_words_with_units() -> None:
    old = load_policy(POLICIES / "us-equity-pro-rata.yaml")
    new = changed("us-equity-pro-rata", ("  absolute: 100", "  absolute: 500"), ("  lot: 100", "  lot: 50"))
    assert words(old, new) == [
        "round lot lowered from 100 to 50 shares",
        "minimum allocation raised from 100 to 500 shares",
        "version 1 → 2",
    ]


def test_relative_minimum_as_percent() -> None:
    old = load_policy(POLICIES / "new-issue-ipo.yaml")
    new = changed("new-issue-ipo", ("relative_to_intended: 5%", "relative_to_intended: 10%"))
    assert "minimum allocation raised from 5% of the intended quantity to 10% of the intended quantity" in words(old, new)


def test_rule_now_also_excludes() -> None:
    old = load_policy(POLICIES / "new-issue-ipo.yaml")
    new = changed("new-issue-ipo", ("when: 'account.restricted_person'",
                                    "when: 'account.restricted_person or account.employee_related'"))
    [change, _] = diff_policies(old, new).changes
    assert change.text == "rule `restricted-person-5130` now also excludes accounts where `account.employee_related`"
    assert change.rule == "restricted-person-5130" and change.allocation
    assert change.pointer == "/rules/restricted-person-5130/when"


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("a.x", "a.x and a.y", "now excludes accounts only where, in addition, `a.y`"),
    ("a.x or a.y", "a.x", "no longer excludes accounts where `a.y`"),
    ("a.x and a.y", "a.y", "now excludes accounts even where `a.x` does not hold"),
    ("a.x > 1", "(a.x) > 1", "condition rewritten without change of meaning: `(a.x) > 1`"),
    ("a.x > 1", "a.x > 2", "condition changed: `a.x > 1` → `a.x > 2`"),
])
def test_conditions(old: str, new: str, expected: str) -> None:
    assert describe_condition(old, new, "excludes accounts") == expected


def test_rules_added_removed_moved_and_flags_do_not_move_shares() -> None:
    old = load_policy(POLICIES / "new-issue-ipo.yaml")
    text = text_of("new-issue-ipo")
    start, end = text.index("  - id: restricted-person-5130"), text.index("  - id: quarter-of-allotment-cap")
    moved = text[:start] + text[end:text.index("\noverrides:")] + "\n" + text[start:end].rstrip("\n") + "\n" + text[text.index("\noverrides:"):]
    new = policy_from_text(moved.replace(
        "when: 'account.employee_related and allocation > 0'", "when: 'account.employee_related'").replace(
        "  - id: quarter-of-allotment-cap", "  - id: no-tiny\n    when: 'account.intended < 100'\n    action: zero\n"
        "    reason: too small\n  - id: quarter-of-allotment-cap"))
    diff = diff_policies(old, new)
    by_text = {change.text: change for change in diff.changes}
    assert by_text["new rule `no-tiny` allocates nothing to accounts where `account.intended < 100`"].allocation
    flag = by_text["rule `employee-related-account` now flags for review accounts even where `allocation > 0` does not hold"]
    assert not flag.allocation
    assert any(text.startswith("rules reordered:") for text in by_text)


def test_governance_attributes_rounding_and_other_sections() -> None:
    old = load_policy(POLICIES / "us-equity-pro-rata.yaml")
    new = changed(
        "us-equity-pro-rata",
        ("applies_to: 'security.asset_class == \"equity\"'", "applies_to: 'security.asset_class == \"equity\" and order.side == \"buy\"'"),
        ("values: [standard, performance]", "values: [standard, performance, hybrid]"),
        ("  remainder: largest_remainder", "  remainder: smallest_account"),
        ("  precision: 4", "  precision: 6"),
        ("    - code: CASH-SHORTFALL\n      description: The account lacks the cash to settle its allocation.\n", ""),
        ("  time: '23:59:59'", "  time: '18:00'"),
    )
    assert words(old, new) == [
        "scope: now governs orders only where, in addition, `order.side == \"buy\"`",
        "account attribute `fee_basis` now allows hybrid",
        "the odd quantity (less than a lot) now goes to the smallest account (went by largest remainder)",
        "prices are now shown to 6 decimal places (was 4)",
        "override reason code `CASH-SHORTFALL` removed",
        "allocation deadline changed from 23:59:59 America/New_York, 0 day(s) after trade date to "
        "18:00:00 America/New_York, 0 day(s) after trade date",
        "version 1 → 2",
    ]


def test_rotation_sequence_and_method() -> None:
    old = load_policy(POLICIES / "fixed-income-rotation.yaml")
    new = changed("fixed-income-rotation", ("sequence: [FI-PENSION-1, FI-ENDOW-2, FI-INSUR-3, FI-FOUND-4]",
                                            "sequence: [FI-ENDOW-2, FI-PENSION-1, FI-INSUR-3, FI-FOUND-4, FI-NEW-5]"),
                  ("advance: per_order", "advance: per_day"))
    assert words(old, new)[:2] == ["rotation sequence: added FI-NEW-5",
                                   "the rotation now advances every trading day (was every order)"]


def test_markdown_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = tmp_path / "new.yaml"
    new.write_text(text_of("us-equity-pro-rata").replace("version: 1", "version: 2").replace("  absolute: 100", "  absolute: 500"))
    old = str(POLICIES / "us-equity-pro-rata.yaml")
    assert main(["diff", old, str(new), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### Policy diff: `us-equity-pro-rata@1` → `us-equity-pro-rata@2`")
    assert "- minimum allocation raised from 100 to 500 shares" in out
    assert main(["diff", old, str(new), "--format", "json", "--exit-code"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["diff"]["changes"][0]["pointer"] == "/minimum"
    assert document["impact"] is None
    assert main(["diff", old, old, "--exit-code"]) == 0


def test_invalid_new_version_is_reported_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text_of("us-equity-pro-rata").replace("method: pro_rata", "method: pro_rat"))
    assert main(["diff", str(POLICIES / "us-equity-pro-rata.yaml"), str(bad)]) == 3
    err = capsys.readouterr().err
    assert str(bad) + ":" in err and "Traceback" not in err


def test_priority_equal_weights_odd_lots_and_minimum_value_in_words() -> None:
    old = load_policy(POLICIES / "model-portfolio-tiers.yaml")
    new = changed("model-portfolio-tiers", ("  weight: 'account.nav'\n  priority: 'account.tier'\n", "  weight: equal\n"),
                  ("  recipient: MODEL-HOUSE", "  recipient: HOUSE-2"), ("  value: 5000", "  value: 7500"))
    assert words(old, new) == [
        "pro-rata weight changed from `account.nav` to equal shares (the same quantity to every account)",
        "priority tiers (by `account.tier`) are removed: every account shares the fill pro-rata",
        "the odd-lot recipient changed from `MODEL-HOUSE` to `HOUSE-2`",
        "minimum allocation raised from a value of 5000 to a value of 7500 at the average price",
        "version 1 → 2",
    ]
    assert all(change.allocation for change in diff_policies(old, new).changes[:-1])
    back = words(new, old)
    assert "accounts are now served in priority tiers by `account.tier`: tier 1 filled first, pro-rata within a tier" in back


def test_introducing_an_odd_lot_recipient_and_a_value_beside_a_quantity_minimum() -> None:
    old = load_policy(POLICIES / "us-equity-pro-rata.yaml")
    new = changed("us-equity-pro-rata", ("  absolute: 100\n", "  absolute: 100\n  value: 5000\n"),
                  ("price:\n", "odd_lots:\n  recipient:\n    expression: 'security.symbol'\nprice:\n"))
    assert words(old, new) == [
        "the odd quantity (less than a lot) now goes to a designated account: "
        "`the account named by security.symbol`",
        "minimum allocation changed from 100 shares to 100 shares and a value of 5000 at the average price",
        "version 1 → 2",
    ]


def test_fairness_over_time_in_words() -> None:
    old = load_policy(POLICIES / "us-equity-pro-rata.yaml")
    new = changed("us-equity-pro-rata", ("  remainder: largest_remainder\n", ""),
                  ("price:\n", "fairness:\n  over_time: cumulative_advantage\n\nprice:\n"))
    assert ("rounding is now kept fair over time: each order's spare lots and odd quantity go to the accounts with "
            "the lowest cumulative rounding advantage (allocated minus exact share), counted over all the policy's "
            "orders") in words(old, new)
    assert any(text.startswith("rounding is no longer kept fair over time: spare lots go by largest remainder")
               for text in words(new, old))
    sleeves = load_policy(POLICIES / "model-sleeves-fair-rounding.yaml")
    regrouped = changed("model-sleeves-fair-rounding", ("  group: 'security.strategy'\n", ""))
    assert words(sleeves, regrouped)[0] == (
        "cumulative rounding advantages are now counted over all the policy's orders (were counted per fairness "
        "group `security.strategy`); each new group starts with every account at 0")
    assert all(change.allocation for change in diff_policies(old, new).changes if change.pointer == "/fairness")


def test_fairness_beside_tiers_and_a_recipient_in_words() -> None:
    tiers = load_policy(POLICIES / "model-portfolio-tiers.yaml")
    fair = load_policy(POLICIES / "model-portfolio-tiers-fair-rounding.yaml")
    added = [text for text in words(tiers, fair) if text.startswith("rounding is now kept fair")]
    assert added == [
        "rounding is now kept fair over time: the spare lots of the tier the fill runs short in go to the accounts "
        "with the lowest cumulative rounding advantage (allocated minus exact share), counted per fairness group "
        "`security.strategy` (the odd quantity stays the designated recipient's and counts as no advantage)"]
    removed = [text for text in words(fair, tiers) if text.startswith("rounding is no longer kept fair")]
    assert removed == [
        "rounding is no longer kept fair over time: spare lots go by largest remainder and the odd quantity to the "
        "designated recipient (else by largest remainder), whatever earlier orders gave each account"]
