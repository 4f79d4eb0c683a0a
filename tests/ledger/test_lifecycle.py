"""Fill lifecycle: corrections and busts by reference, late fills, re-allocation, retries."""

from __future__ import annotations

from typing import Any

import pytest

from fairalloc import load_policy, load_trade
from fairalloc.errors import LedgerError, RefusedError
from fairalloc.ledger import workflow
from fairalloc.ledger.replay import replay_order
from fairalloc.ledger.store import Ledger
from fairalloc.ledger.verify import verify

from .helpers import EQUITY_POLICY, now_iso, publish, record_through_fills, staff, trade_doc, who


@pytest.fixture
def firm(ledger: Ledger) -> Ledger:
    staff(ledger)
    publish(ledger)
    return ledger


def _corrected(fill: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**fill, "id": f"{fill['id']}-C", "executed_at": now_iso(), **changes}


def _quantities(document: dict[str, Any]) -> dict[str, Any]:
    return {a["account"]: a["quantity"] for a in document["allocations"]}


def test_a_correction_before_allocation_changes_what_is_allocated(firm: Ledger) -> None:
    doc = record_through_fills(firm, trade_doc())
    order_id = doc["order"]["id"]
    original = doc["fills"][1]
    change = workflow.correct_fill(firm, who(firm, "tom"), order_id, original["id"],
                                   _corrected(original, quantity=2000))
    assert change.reallocation is None and change.event.data()["corrects"] == original["id"]
    result = workflow.allocate_order(firm, who(firm, "tom"), order_id)
    assert result.document["filled"] == 20000  # 18,000 + the corrected 2,000, not 12,000
    with firm.read() as session:
        kinds = [e.kind for e in session.query(order_id=order_id)]
    assert kinds.count("fill.recorded") == 2 and kinds.count("fill.corrected") == 1  # original kept


def test_a_bust_before_allocation(firm: Ledger) -> None:
    doc = record_through_fills(firm, trade_doc())
    workflow.bust_fill(firm, who(firm, "tom"), doc["order"]["id"], doc["fills"][0]["id"])
    assert workflow.allocate_order(firm, who(firm, "tom"), doc["order"]["id"]).document["filled"] == 12000


@pytest.mark.parametrize("change", ["correct", "bust", "late-fill"])
def test_after_allocation_each_change_reallocates_with_a_reason_alerts_and_replays(
        firm: Ledger, change: str) -> None:
    doc = record_through_fills(firm, trade_doc())
    order_id = doc["order"]["id"]
    tom = who(firm, "tom")
    first = workflow.allocate_order(firm, tom, order_id)
    if change == "correct":
        result = workflow.correct_fill(firm, tom, order_id, doc["fills"][1]["id"],
                                       _corrected(doc["fills"][1], quantity=2000)).reallocation
        reason, filled = "fill-corrected", 20000
    elif change == "bust":
        result = workflow.bust_fill(firm, tom, order_id, doc["fills"][0]["id"]).reallocation
        reason, filled = "fill-busted", 12000
    else:
        late = [{"id": "F-LATE", "quantity": 10000, "price": "100", "executed_at": now_iso()}]
        result = workflow.record_fills(firm, tom, order_id, late).reallocation
        retry = workflow.record_fills(firm, tom, order_id, late)  # answers as the first time did
        assert retry.recorded == [] and retry.already == ["F-LATE"] and retry.reallocation == result
        reason, filled = "late-fill", 40000
    assert result is not None
    data = result.event.data()
    assert (data["reason"], data["replaces"], result.document["filled"]) == (reason, first.event.seq, filled)
    assert [a.data()["alert"] for a in workflow.alerts(firm)][-1] == "reallocation"
    record = workflow.read_order(firm, order_id)
    assert [e.seq for e in record.allocations] == [first.event.seq, result.event.seq]  # both kept
    assert record.allocation is not None and record.allocation.data()["document"] == first.document
    replayed = replay_order(firm, order_id)
    assert replayed.identical and replayed.allocations == [first.event.seq, result.event.seq]
    with firm.read() as session:
        assert verify(session).ok


def test_a_reallocation_keeps_the_rotation_where_the_order_started(firm: Ledger) -> None:
    from .helpers import ROTATION_TRADE, TODAY_UTC

    tom = who(firm, "tom")
    docs = [record_through_fills(firm, trade_doc(ROTATION_TRADE, order_id=f"FI-{n}", trade_date=TODAY_UTC))
            for n in range(2)]
    first = workflow.allocate_order(firm, tom, "FI-0")
    second = workflow.allocate_order(firm, tom, "FI-1")
    fill = docs[0]["fills"][0]
    redo = workflow.correct_fill(firm, tom, "FI-0", fill["id"], _corrected(fill)).reallocation
    assert redo is not None and redo.rotation_before == first.rotation_before
    assert second.rotation_before == first.rotation_after  # the later order did not move
    assert replay_order(firm, "FI-0").identical and replay_order(firm, "FI-1").identical


def test_busting_every_fill_leaves_nothing_allocated_and_replays(firm: Ledger) -> None:
    doc = record_through_fills(firm, trade_doc())
    order_id = doc["order"]["id"]
    tom = who(firm, "tom")
    workflow.allocate_order(firm, tom, order_id)
    for fill in doc["fills"]:
        last = workflow.bust_fill(firm, tom, order_id, fill["id"])
    assert last.reallocation is not None and last.reallocation.document["allocations"] == []
    assert replay_order(firm, order_id).identical


def test_identical_retries_answer_as_the_first_time_different_ones_are_refused(firm: Ledger) -> None:
    doc = record_through_fills(firm, trade_doc())
    order_id = doc["order"]["id"]
    tom = who(firm, "tom")
    fill = doc["fills"][1]
    correction = _corrected(fill, quantity=2000)
    first = workflow.correct_fill(firm, tom, order_id, fill["id"], correction)
    assert workflow.correct_fill(firm, tom, order_id, fill["id"], correction) == first
    with pytest.raises(LedgerError) as caught:
        workflow.correct_fill(firm, tom, order_id, fill["id"], {**correction, "quantity": 3000})
    assert caught.value.codes == ["fill-conflict"]
    with pytest.raises(RefusedError) as refused:  # the original is no longer in force
        workflow.correct_fill(firm, tom, order_id, fill["id"], {**correction, "id": "OTHER"})
    assert refused.value.codes == ["fill-not-in-force"]
    bust = workflow.bust_fill(firm, tom, order_id, doc["fills"][0]["id"])
    assert workflow.bust_fill(firm, tom, order_id, doc["fills"][0]["id"]) == bust
    entered = workflow.read_order(firm, order_id).entered
    assert workflow.enter_order(firm, tom, load_trade(doc)) == entered
    assert workflow.publish_policy(firm, who(firm, "cole"), load_policy(EQUITY_POLICY))[1] is False
    allocation = workflow.allocate_order(firm, tom, order_id)
    assert workflow.allocate_order(firm, tom, order_id) == allocation
    grant = workflow.set_role(firm, who(firm, "ada"), "pam", "trader", grant=True)
    assert workflow.set_role(firm, who(firm, "ada"), "pam", "trader", grant=True) == grant


def test_a_correction_may_not_take_the_fills_beyond_the_order(firm: Ledger) -> None:
    doc = record_through_fills(firm, trade_doc())
    with pytest.raises(RefusedError) as caught:
        workflow.correct_fill(firm, who(firm, "tom"), doc["order"]["id"], doc["fills"][0]["id"],
                              _corrected(doc["fills"][0], quantity=60000))
    assert caught.value.codes == ["fills-exceed-order"]
