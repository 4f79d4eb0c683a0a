"""Review tooling speaks of prices and costs: the diff in words, the impact in counts, policy
tests checking each account's money."""

from __future__ import annotations

from pathlib import Path

from fairalloc import load_trade, policy_from_text
from fairalloc.review.diff import diff_policies, money_changes
from fairalloc.review.impact import RecordedTrade, impact_of_recorded, summary_rows
from fairalloc.review.policytest import run_file

from ..conftest import POLICIES

SHIPPED = (POLICIES / "us-equity-fill-price-costs.yaml").read_text()


def _trade() -> dict[str, object]:
    return {
        "order": {"id": "O", "symbol": "XYZ", "side": "buy", "quantity": 3000, "trade_date": "2026-03-02",
                  "entered_at": "2026-03-02T14:30:00Z", "security": {"asset_class": "equity"},
                  "costs": {"sec_fee": "1.01"}},
        "statement": {"recorded_at": "2026-03-02T14:00:00Z", "recorded_by": "pm", "accounts": [
            {"account": "A", "intended": 1000}, {"account": "B", "intended": 2000}]},
        "fills": [{"id": "F1", "quantity": 1500, "price": "10.00", "executed_at": "2026-03-02T14:31:00Z",
                   "costs": {"commission": "7.01"}},
                  {"id": "F2", "quantity": 1500, "price": "10.30", "executed_at": "2026-03-02T14:32:00Z"}],
    }


def _average_version() -> str:
    return (SHIPPED.replace("version: 1", "version: 2").replace("  allocation: fill\n", "  allocation: average\n")
            .replace("residual: largest_remainder", "residual: largest_account"))


def test_the_diff_says_in_words_how_prices_and_costs_change() -> None:
    diff = diff_policies(policy_from_text(SHIPPED), policy_from_text(_average_version()))
    texts = {change.pointer: change.text for change in money_changes(diff)}
    assert texts["/price/allocation"].startswith("price allocation is now average: every account at the block's "
                                                 "average price")
    assert "the cents left one cent each to the largest allocations first" in texts["/costs"]
    assert "(were shared in proportion to the quantity allocated x account.commission_schedule" in texts["/costs"]
    assert not any(change.allocation for change in money_changes(diff))  # no quantity moves


def test_impact_counts_the_accounts_whose_money_changes() -> None:
    diff = diff_policies(policy_from_text(SHIPPED), policy_from_text(_average_version()))
    report = impact_of_recorded(diff, [RecordedTrade("t.json", load_trade(_trade()))], {})
    rows = dict(summary_rows(report))
    assert rows["account allocations that change"] == "0"
    assert rows["account-orders whose prices, commissions, fees or net money change"] == "2"
    same = diff_policies(policy_from_text(SHIPPED), policy_from_text(SHIPPED.replace("version: 1", "version: 2")))
    assert "account_money_changed" not in impact_of_recorded(same, [], {}).totals


def test_a_policy_test_checks_each_accounts_money(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(SHIPPED)
    suite = tmp_path / "t.yaml"
    suite.write_text(
        "policy: p.yaml\ncases:\n  - name: money\n    trade: trade.json\n    expect:\n"
        "      money: {A: {net: '1.00', costs: {commission: '2.33'}}}\n")
    (tmp_path / "trade.json").write_text(__import__("json").dumps(_trade()))
    result = run_file(str(suite))
    [case] = result.results
    assert case.status == "failed"
    assert [m.split(",")[0] for m in case.messages] == ["A: expected costs.commission 2.33", "A: expected net 1.00"]
