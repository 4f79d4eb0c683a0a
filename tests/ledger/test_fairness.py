"""The ledger carries a fairness group's state from allocation to allocation, and replays it."""

from __future__ import annotations

from typing import Any

import pytest

from fairalloc.ledger import workflow
from fairalloc.ledger.replay import replay_order
from fairalloc.ledger.store import Ledger
from fairalloc.ledger.verify import verify

from .helpers import ROOT, TODAY_UTC, now_iso, publish, record_through_fills, staff, trade_doc, who

POLICY = ROOT / "policies" / "model-sleeves-fair-rounding.yaml"
TRADE = ROOT / "examples" / "model-sleeves-fair-rounding.trade.json"
GROUP = "model-sleeves-fair-rounding/dividend-growth"


@pytest.fixture
def firm(ledger: Ledger) -> Ledger:
    staff(ledger)
    publish(ledger, POLICY)
    return ledger


def _doc(n: int) -> dict[str, Any]:
    """Order MDL-n of today, its statement written a minute before it is entered."""
    doc = trade_doc(TRADE, order_id=f"MDL-{n}", trade_date=TODAY_UTC)
    doc["statement"]["recorded_at"] = now_iso(-60)
    return doc


def _quantities(document: dict[str, Any]) -> dict[str, Any]:
    return {a["account"]: a["quantity"] for a in document["allocations"]}


def test_each_allocation_starts_from_the_groups_last_state_and_replays(firm: Ledger) -> None:
    tom = who(firm, "tom")
    results = []
    for n in range(3):
        record_through_fills(firm, _doc(n))
        results.append(workflow.allocate_order(firm, tom, f"MDL-{n}"))
    fairness = [result.document["fairness"] for result in results]
    assert fairness[0]["before"] == {"group": GROUP, "advantage": {}}
    assert fairness[1]["before"] == fairness[0]["after"] and fairness[2]["before"] == fairness[1]["after"]
    assert [_quantities(r.document) for r in results] == [
        {"SLEEVE-A": 1400, "SLEEVE-B": 1300, "SLEEVE-C": 1300},
        {"SLEEVE-A": 1300, "SLEEVE-B": 1400, "SLEEVE-C": 1300},
        {"SLEEVE-A": 1300, "SLEEVE-B": 1300, "SLEEVE-C": 1400},
    ]
    assert fairness[2]["after"] == {"group": GROUP, "advantage": {}}  # every sleeve back at its exact shares
    assert all(result.event.topic == f"fairness:{GROUP}" for result in results)
    for n in range(3):
        assert replay_order(firm, f"MDL-{n}").identical
    with firm.read() as session:
        assert verify(session).ok


def test_a_reallocation_starts_where_the_order_started_and_moves_no_later_order(firm: Ledger) -> None:
    tom = who(firm, "tom")
    docs = [record_through_fills(firm, _doc(n))
            for n in range(2)]
    first = workflow.allocate_order(firm, tom, "MDL-0")
    second = workflow.allocate_order(firm, tom, "MDL-1")
    fill = docs[0]["fills"][1]
    corrected = {**fill, "id": f"{fill['id']}-C", "executed_at": now_iso(), "quantity": 1550}
    redo = workflow.correct_fill(firm, tom, "MDL-0", fill["id"], corrected).reallocation
    assert redo is not None
    assert redo.document["fairness"]["before"] == first.document["fairness"]["before"]
    assert _quantities(redo.document) == {"SLEEVE-A": 1400, "SLEEVE-B": 1350, "SLEEVE-C": 1300}
    assert second.document["fairness"]["before"] == first.document["fairness"]["after"]
    third_doc = record_through_fills(firm, _doc(2))
    third = workflow.allocate_order(firm, tom, third_doc["order"]["id"])
    assert third.document["fairness"]["before"] == second.document["fairness"]["after"]
    assert replay_order(firm, "MDL-0").identical and replay_order(firm, "MDL-1").identical
    with firm.read() as session:
        assert verify(session).ok
