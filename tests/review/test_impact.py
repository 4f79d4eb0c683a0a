"""Impact analysis: exact counts against an independent recount, attribution, rotation, reports."""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from bench.bench_impact import generate_trades, new_version
from fairalloc import Allocation, FairallocError, Policy, allocate, load_policy, load_trade, policy_from_text
from fairalloc.cli import main
from fairalloc.review import impact
from fairalloc.review.diff import diff_policies
from fairalloc.review.impact import Period, impact_markdown, impact_of, money

from ..conftest import EXAMPLES, POLICIES, example_trade

US_EQUITY = POLICIES / "us-equity-pro-rata.yaml"


@pytest.fixture(scope="module")
def trades(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("trades")
    generate_trades(folder, 300, seed=7)
    return folder


@pytest.fixture(scope="module")
def versions() -> tuple[Policy, Policy]:
    return load_policy(US_EQUITY), policy_from_text(new_version(US_EQUITY.read_text()), "v2.yaml")


def _allocate(policy: Policy, path: Path) -> Allocation | None:
    try:
        return allocate(policy, load_trade(path))
    except FairallocError:
        return None


def recount(old: Policy, new: Policy, folder: Path) -> dict[str, Any]:
    """Count what changes by allocating every trade under both versions directly (no impact code)."""
    orders = pairs = 0
    accounts: set[str] = set()
    per_account: dict[str, list[Fraction]] = {}  # account -> [gained, lost]
    added = removed = value_added = value_removed = Fraction(0)
    for path in sorted(folder.glob("*.json")):
        a, b = _allocate(old, path), _allocate(new, path)
        qa = a.quantities() if a else {}
        qb = b.quantities() if b else {}
        either = a or b
        price = either.average_price if either is not None else None
        diffs = {acct: qb.get(acct, Fraction(0)) - qa.get(acct, Fraction(0)) for acct in set(qa) | set(qb)}
        diffs = {acct: d for acct, d in diffs.items() if d}
        if diffs or (a is None) != (b is None):
            orders += 1
        pairs += len(diffs)
        accounts |= set(diffs)
        for acct, d in diffs.items():
            gained_lost = per_account.setdefault(acct, [Fraction(0), Fraction(0)])
            gained_lost[0 if d > 0 else 1] += abs(d)
            if d > 0:
                added, value_added = added + d, value_added + d * (price or 0)
            else:
                removed, value_removed = removed - d, value_removed - d * (price or 0)
    return {"orders_changed": orders, "account_allocations_changed": pairs, "accounts_affected": len(accounts),
            "shares_added": added, "shares_removed": removed, "value_added": value_added, "value_removed": value_removed,
            "per_account": {acct: tuple(values) for acct, values in per_account.items()}}


def test_counts_match_an_independent_recount(trades: Path, versions: tuple[Policy, Policy]) -> None:
    old, new = versions
    report = impact_of(diff_policies(old, new), str(trades), workers=1)
    expected = recount(old, new, trades)
    per_account = expected.pop("per_account")
    assert expected["orders_changed"] > 100  # the scenario really changes things
    assert {key: report.totals[key] for key in expected} == expected
    assert {acct: (gained, lost) for acct, _, gained, lost, _ in report.by_account} == per_account
    assert report.totals["orders_replayed"] == 300


def test_parallel_replay_gives_the_same_report(trades: Path, versions: tuple[Policy, Policy],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    diff = diff_policies(*versions)
    sequential = impact_of(diff, str(trades), workers=1)
    monkeypatch.setattr(impact, "CHUNK", 40)
    parallel = impact_of(diff, str(trades), workers=2)
    assert parallel.totals == sequential.totals
    assert parallel.rows == sequential.rows


def test_attribution_names_the_rule(trades: Path, versions: tuple[Policy, Policy]) -> None:
    old = versions[0]
    new = policy_from_text(US_EQUITY.read_text().replace("overrides:", (
        "  - id: no-performance-fee\n    when: 'account.fee_basis == \"performance\"'\n    action: zero\n"
        "    reason: test\n\noverrides:")))
    report = impact_of(diff_policies(old, new), str(trades), workers=1)
    rows = [row for order in report.orders if "refused" not in order.new_status for row in order.accounts]
    assert rows
    assert {row.causes for row in rows} == {("rule no-performance-fee",)}
    # 'policy' (heuristic) where the rule's round was withdrawn: no account's own facts name it
    assert {"direct", "order"} <= {row.attribution for row in rows} <= {"direct", "order", "policy"}
    assert any(row.attribution == "direct" and row.new == 0 for row in rows)  # a zeroed account itself


def test_narrower_scope_is_governance(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text((EXAMPLES / "us-equity-pro-rata.trade.json").read_text())
    old = load_policy(US_EQUITY)
    new = policy_from_text(US_EQUITY.read_text().replace(
        "applies_to: 'security.asset_class == \"equity\"'", "applies_to: 'security.asset_class == \"equity\" and order.side == \"sell\"'"))
    report = impact_of(diff_policies(old, new), str(tmp_path))
    [order] = report.orders
    assert order.new_status == "refused: policy-not-applicable"
    assert {row.attribution for row in order.accounts} == {"governance"}
    assert {row.causes for row in order.accounts} == {("applies_to",)}
    assert report.totals["shares_removed"] == 30000
    assert money(report.totals["value_removed"]) == money(Fraction(30000) * order.accounts[0].price)  # type: ignore[operator]


def test_rotation_state_is_carried_per_version(tmp_path: Path) -> None:
    for day in range(1, 4):
        trade = example_trade("fixed-income-rotation")
        trade["order"]["id"] = f"FI-{day}"
        for part in ("trade_date",):
            trade["order"][part] = f"2026-03-0{day + 1}"
        trade["order"]["entered_at"] = f"2026-03-0{day + 1}T15:02:00Z"
        trade["statement"]["recorded_at"] = f"2026-03-0{day + 1}T15:00:30Z"
        for fill in trade["fills"]:
            fill["executed_at"] = fill["executed_at"].replace("2026-03-02", f"2026-03-0{day + 1}")
        (tmp_path / f"fi-{day}.json").write_text(json.dumps(trade, default=str))
    old = load_policy(POLICIES / "fixed-income-rotation.yaml")
    new = policy_from_text((POLICIES / "fixed-income-rotation.yaml").read_text().replace(
        "sequence: [FI-PENSION-1, FI-ENDOW-2, FI-INSUR-3, FI-FOUND-4]", "sequence: [FI-FOUND-4, FI-INSUR-3, FI-ENDOW-2, FI-PENSION-1]"))
    report = impact_of(diff_policies(old, new), str(tmp_path))
    assert report.totals["orders_replayed"] == 3 and report.orders
    assert {row.causes for row in report.rows} == {("rotation.sequence",)}
    assert {row.attribution for row in report.rows} == {"direct"}


def test_unreadable_trades_are_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "good.json").write_text((EXAMPLES / "us-equity-pro-rata.trade.json").read_text())
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "rotation.state.json").write_text("{}")
    old = load_policy(US_EQUITY)
    report = impact_of(diff_policies(old, old), str(tmp_path))
    assert report.totals["orders_replayed"] == 1 and report.orders == []
    assert [d.code for d in report.unreadable] == ["json-syntax"]
    assert "No recorded order would be allocated differently." in impact_markdown(report)


def test_cli_writes_markdown_and_json(trades: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = tmp_path / "v2.yaml"
    new.write_text(new_version(US_EQUITY.read_text()))
    markdown, document = tmp_path / "impact.md", tmp_path / "impact.json"
    status = main(["diff", str(US_EQUITY), str(new), "--impact", str(trades), "--markdown-file", str(markdown),
                   "--json-file", str(document), "--limit", "5", "--exit-code"])
    assert status == 1
    out = capsys.readouterr().out
    assert "Impact on 300 recorded orders" in out and "By cause" in out
    text = markdown.read_text()
    assert "### Impact on 300 recorded orders" in text and "| order | trade date | account |" in text
    assert "(5 of " in text
    data = json.loads(document.read_text())
    assert data["impact"]["totals"]["orders_replayed"] == 300
    changed = sum(len(order["accounts"]) for order in data["impact"]["orders"])
    assert changed == data["impact"]["totals"]["account_allocations_changed"]


def test_missing_trade_folder_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(US_EQUITY), str(US_EQUITY), "--impact", "no/such/folder"]) == 7
    assert "error[impact-trades]" in capsys.readouterr().err


def test_a_tighter_cap_is_attributed_to_the_cap_rule(tmp_path: Path) -> None:
    (tmp_path / "ipo.json").write_text((EXAMPLES / "new-issue-ipo.trade.json").read_text())
    text = (POLICIES / "new-issue-ipo.yaml").read_text()
    old = load_policy(POLICIES / "new-issue-ipo.yaml")
    new = policy_from_text(text.replace("round_lot(25% * fill.quantity, 100)", "round_lot(24% * fill.quantity, 100)"))
    report = impact_of(diff_policies(old, new), str(tmp_path))
    rows = {row.account: row for row in report.rows}
    assert (rows["GROWTH-FUND"].old, rows["GROWTH-FUND"].new) == (Fraction(10000), Fraction(9600))
    assert rows["GROWTH-FUND"].causes == ("rule quarter-of-allotment-cap",)
    assert rows["GROWTH-FUND"].attribution == "direct"
    assert rows["SMALL-F"].attribution == "order"  # received part of what the cap took from the large accounts
    assert sum(row.delta for row in report.rows) == 0


def test_a_period_limits_the_replay(trades: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(impact, "CHUNK", 50)  # several worker chunks
    old = load_policy(US_EQUITY)
    diff = diff_policies(old, policy_from_text(new_version(US_EQUITY.read_text()), "v2.yaml"))
    report = impact_of(diff, str(trades), workers=2, period=Period(dt.date(2026, 2, 1), dt.date(2026, 2, 28)))
    days = {order.trade_date for order in report.orders}
    assert days and all(day.month == 2 for day in days)
    assert report.totals["orders_replayed"] == 28 and report.totals["trades_outside_period"] == 272
    new = tmp_path / "v2.yaml"
    new.write_text(new_version(US_EQUITY.read_text()))
    assert main(["diff", str(US_EQUITY), str(new), "--impact", str(trades), "--from", "2026-02-01",
                 "--to", "2026-02-28", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["impact"]["totals"]["orders_replayed"] == 28
    with pytest.raises(SystemExit):
        main(["diff", str(US_EQUITY), str(new), "--impact", str(trades), "--from", "February"])


MODEL_TRADE: dict[str, Any] = {
    "order": {"id": "MODEL-1", "symbol": "XYZ", "side": "buy", "quantity": 10000, "trade_date": "2026-03-02",
              "entered_at": "2026-03-02T14:30:00Z", "security": {"asset_class": "equity"}},
    "statement": {"recorded_at": "2026-03-02T14:29:00Z", "recorded_by": "pm.models", "accounts": [
        {"account": "DRIFT-A", "intended": 1500, "attributes": {"nav": 2000000, "tier": 1}},
        {"account": "DRIFT-B", "intended": 500, "attributes": {"nav": 400000, "tier": 1}},
        {"account": "CORE-C", "intended": 4000, "attributes": {"nav": 6000000}},
        {"account": "CORE-D", "intended": 3000, "attributes": {"nav": 3000000}},
        {"account": "MODEL-HOUSE", "intended": 1000, "attributes": {"nav": 1000000}}]},
    "fills": [{"id": "F-1", "quantity": 6050, "price": "25.00", "executed_at": "2026-03-02T14:31:00Z"}],
}


def test_a_new_odd_lot_recipient_and_new_tiers_are_named_as_causes(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text(json.dumps(MODEL_TRADE))
    path = POLICIES / "model-portfolio-tiers.yaml"
    old, text = load_policy(path), path.read_text()
    moved = policy_from_text(text.replace("recipient: MODEL-HOUSE", "recipient: CORE-D"))
    rows = {row.account: row for row in impact_of(diff_policies(old, moved), str(tmp_path)).rows}
    assert (rows["MODEL-HOUSE"].old, rows["MODEL-HOUSE"].new) == (Fraction(450), Fraction(400))
    assert (rows["CORE-D"].old, rows["CORE-D"].new) == (Fraction(1200), Fraction(1250))
    for account in ("MODEL-HOUSE", "CORE-D"):
        assert rows[account].attribution == "direct"
        assert rows[account].causes == ("odd_lots.recipient",)
    flat = policy_from_text(text.replace("  priority: 'account.tier'\n", ""))
    rows = {row.account: row for row in impact_of(diff_policies(old, flat), str(tmp_path)).rows}
    assert (rows["DRIFT-A"].old, rows["DRIFT-A"].new) == (Fraction(1500), Fraction(1000))
    assert rows["DRIFT-A"].attribution == "direct"
    assert rows["DRIFT-A"].causes == ("pro_rata.priority",)


def test_fairness_over_time_is_carried_per_version_and_named_as_the_cause(tmp_path: Path) -> None:
    trade = example_trade("model-sleeves-fair-rounding")
    for n in range(3):
        trade["order"]["id"] = f"MDL-{n}"
        trade["order"]["entered_at"] = f"2026-03-02T14:2{n}:00Z"
        (tmp_path / f"mdl-{n}.json").write_text(json.dumps(trade))
    text = (POLICIES / "model-sleeves-fair-rounding.yaml").read_text()
    old = policy_from_text(text.replace("fairness:\n  over_time: cumulative_advantage\n  group: 'security.strategy'\n", ""))
    new = load_policy(POLICIES / "model-sleeves-fair-rounding.yaml")
    report = impact_of(diff_policies(old, new), str(tmp_path), workers=2)
    # largest remainder gives SLEEVE-A the spare lot every time; fairness gives it to B, then C
    assert {(row.order_id, row.account, row.delta) for row in report.rows} == {
        ("MDL-1", "SLEEVE-A", -100), ("MDL-1", "SLEEVE-B", 100), ("MDL-2", "SLEEVE-A", -100), ("MDL-2", "SLEEVE-C", 100)}
    assert {row.causes for row in report.rows} == {("fairness",)}
