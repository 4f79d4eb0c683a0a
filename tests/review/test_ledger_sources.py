"""The ledger as a source: published policy versions for diff, allocated orders for impact."""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction
from pathlib import Path

import pytest

from fairalloc import allocate, load_trade, policy_from_text
from fairalloc.cli import main
from fairalloc.errors import LedgerError
from fairalloc.ledger import workflow
from fairalloc.ledger.store import Ledger
from fairalloc.review.impact import Period
from fairalloc.review.sources import ledger_trades, load_source
from fairalloc.rotation import RotationState

from ..ledger.helpers import EQUITY_POLICY, ROTATION_POLICY, ROTATION_TRADE, publish, record_through_fills, staff, trade_doc, who

NO_PROPRIETARY = ("  - id: no-proprietary\n    when: 'account.proprietary'\n    action: zero\n"
                  "    reason: Proprietary accounts stand aside.\n\n")


def version_2() -> str:
    text = EQUITY_POLICY.read_text().replace("version: 1", "version: 2")
    return text.replace("overrides:", NO_PROPRIETARY + "overrides:")


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A ledger with three equity orders allocated under version 1, then version 2 published."""
    location = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger(location) as ledger:
        staff(ledger)
        publish(ledger, EQUITY_POLICY)
        for day in (2, 3, 4):
            doc = trade_doc(order_id=f"EQ-{day}", trade_date=dt.date(2026, 3, day))
            record_through_fills(ledger, doc)
            workflow.allocate_order(ledger, who(ledger, "tom"), f"EQ-{day}")
        workflow.publish_policy(ledger, who(ledger, "cara"), policy_from_text(version_2()))
    return location


def test_published_versions_with_who_and_when(url: str) -> None:
    first = load_source("ledger:us-equity-pro-rata@1", url)
    assert first.kind == "ledger" and first.policy.version == 1
    assert first.provenance is not None and first.provenance.startswith("published by cole at ")
    latest = load_source("ledger:us-equity-pro-rata", url)
    assert latest.policy.version == 2 and "published by cara" in (latest.provenance or "")


def test_unpublished_version_is_a_ledger_error(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(LedgerError) as caught:
        load_source("ledger:us-equity-pro-rata@7", url)
    assert caught.value.codes == ["policy-not-published"]
    assert main(["diff", "ledger:us-equity-pro-rata@1", "ledger:us-equity-pro-rata@7", "--ledger", url]) == 6
    assert "error[policy-not-published]" in capsys.readouterr().err


def test_impact_over_a_date_range_of_the_ledger(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "impact.json"
    status = main(["diff", "ledger:us-equity-pro-rata@1", "ledger:us-equity-pro-rata@2", "--ledger", url,
                   "--impact-ledger", "--from", "2026-03-03", "--to", "2026-03-04", "--json-file", str(report),
                   "--format", "markdown"])
    assert status == 0
    out = capsys.readouterr().out
    assert "- old: published by cole at " in out and "- new: published by cara at " in out
    assert "new rule `no-proprietary` allocates nothing to accounts where `account.proprietary`" in out
    document = json.loads(report.read_text())
    totals = document["impact"]["totals"]
    assert (totals["orders_replayed"], totals["orders_changed"]) == (2, 2)
    # independent recount from the recorded trades
    trades, _ = ledger_trades(url, Period(dt.date(2026, 3, 3), dt.date(2026, 3, 4)))
    old = load_source("ledger:us-equity-pro-rata@1", url).policy
    new = policy_from_text(version_2())
    moved = Fraction(0)
    for recorded in trades:
        before, after = allocate(old, recorded.trade).quantities(), allocate(new, recorded.trade).quantities()
        moved += sum((after[a] - before[a] for a in before if after[a] > before[a]), Fraction(0))
    assert totals["shares_added"] == str(moved) == totals["shares_removed"]
    rows = [row for order in document["impact"]["orders"] for row in order["accounts"]]
    proprietary = [row for row in rows if row["account"] == "PROPRIETARY"]
    assert [row["causes"] for row in proprietary] == [["rule no-proprietary"]] * 2
    assert {row["attribution"] for row in proprietary} == {"direct"}


def test_rotation_replay_starts_where_the_ledger_stood(tmp_path: Path) -> None:
    location = f"sqlite:///{tmp_path / 'rotation.db'}"
    with Ledger(location) as ledger:
        staff(ledger)
        publish(ledger, ROTATION_POLICY)
        workflow.seed_rotation(ledger, who(ledger, "cole"), RotationState("fixed-income-rotation/core", 2))
        doc = trade_doc(ROTATION_TRADE, order_id="FI-1")
        record_through_fills(ledger, doc)
        workflow.allocate_order(ledger, who(ledger, "tom"), "FI-1")
    trades, states = ledger_trades(location, Period())
    assert [t.trade.order.id for t in trades] == ["FI-1"]
    assert states == {"fixed-income-rotation/core": RotationState("fixed-income-rotation/core", 2)}
    assert main(["diff", "ledger:fixed-income-rotation@1", str(ROTATION_POLICY), "--ledger", location,
                 "--impact-ledger", "--exit-code"]) == 0


def test_a_missing_ledger_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["diff", str(EQUITY_POLICY), str(EQUITY_POLICY), "--ledger", str(tmp_path / "none.db"),
                   "--impact-ledger"])
    assert status == 6
    assert "Traceback" not in capsys.readouterr().err
