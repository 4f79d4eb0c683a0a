"""The recorded workflow on both backends: hard stop, idempotent fills, allocation, overrides."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from fairalloc import load_policy, load_trade
from fairalloc.errors import LedgerError, RefusedError
from fairalloc.ledger import workflow
from fairalloc.ledger.store import Ledger
from fairalloc.ledger.verify import verify

from .helpers import (EQUITY_POLICY, ROTATION_POLICY, ROTATION_TRADE, now_iso, publish,
                      record_through_fills, retimed, staff, trade_doc, who)

TODAY = dt.datetime.now(dt.timezone.utc).date()


@pytest.fixture
def firm(ledger: Ledger) -> Ledger:
    staff(ledger)
    publish(ledger)
    return ledger


def test_hard_stop_refuses_an_order_without_prior_intent(firm: Ledger) -> None:
    trade = load_trade(trade_doc())
    with pytest.raises(RefusedError) as caught:
        workflow.enter_order(firm, who(firm, "tom"), trade)
    assert caught.value.codes == ["pretrade-statement-missing"]
    with firm.read() as session:
        assert session.query(kinds=["order.entered"]) == []


def test_hard_stop_refuses_a_statement_not_covering_the_full_quantity(firm: Ledger) -> None:
    doc = trade_doc()
    workflow.record_statement(firm, who(firm, "pam"), load_trade(doc))
    bigger = trade_doc()
    bigger["order"]["quantity"] = 60000
    with pytest.raises(RefusedError) as caught:
        workflow.enter_order(firm, who(firm, "tom"), load_trade(bigger))
    assert caught.value.codes == ["pretrade-quantity-not-covered"]


def test_hard_stop_refuses_an_account_missing_from_the_statement(firm: Ledger) -> None:
    doc = trade_doc()
    narrowed = trade_doc()
    narrowed["statement"]["accounts"] = narrowed["statement"]["accounts"][:3]
    narrowed["order"]["quantity"] = 40000
    workflow.record_statement(firm, who(firm, "pam"), load_trade(narrowed))
    with pytest.raises(RefusedError) as caught:
        workflow.enter_order(firm, who(firm, "tom"), load_trade(doc))
    assert caught.value.codes[0] in {"pretrade-account-not-covered", "pretrade-quantity-not-covered"}


def test_a_statement_retried_answers_as_the_first_time_and_a_different_one_is_refused(firm: Ledger) -> None:
    doc = record_through_fills(firm, trade_doc())
    with firm.read() as session:
        first = session.by_key(f"statement:{doc['order']['id']}")
    again = workflow.record_statement(firm, who(firm, "pam"), load_trade(doc))
    assert again == first
    changed = copy.deepcopy(doc)
    changed["statement"]["accounts"][0]["intended"] = 24000
    changed["statement"]["accounts"][1]["intended"] = 11000
    with pytest.raises(LedgerError) as caught:
        workflow.record_statement(firm, who(firm, "pam"), load_trade(changed))
    assert caught.value.codes == ["statement-already-recorded"]


def test_order_names_the_governing_policy_version(firm: Ledger) -> None:
    doc = trade_doc()
    record_through_fills(firm, doc)
    with firm.read() as session:
        entered = session.by_key(f"order:{doc['order']['id']}")
    assert entered is not None
    policy = load_policy(EQUITY_POLICY)
    assert entered.data()["policy"] == {"id": policy.id, "version": 1, "digest": policy.digest}


def test_fills_are_idempotent_by_fill_id(firm: Ledger) -> None:
    doc = record_through_fills(firm, trade_doc())
    again = workflow.record_fills(firm, who(firm, "tom"), doc["order"]["id"], load_trade(doc).to_json()["fills"])
    assert again.recorded == [] and again.already == ["F-1", "F-2"]
    changed = load_trade(doc).to_json()["fills"][:1]
    changed[0]["quantity"] = 17000
    with pytest.raises(LedgerError) as caught:
        workflow.record_fills(firm, who(firm, "tom"), doc["order"]["id"], changed)
    assert caught.value.codes == ["fill-conflict"]
    result = workflow.allocate_order(firm, who(firm, "tom"), doc["order"]["id"])
    assert result.document["filled"] == 30000  # not 60,000


def test_fills_beyond_the_order_are_refused(firm: Ledger) -> None:
    doc = trade_doc()
    record_through_fills(firm, doc)
    extra = [{"id": "F-3", "quantity": 30000, "price": "100", "executed_at": now_iso()}]
    with pytest.raises(RefusedError) as caught:
        workflow.record_fills(firm, who(firm, "tom"), doc["order"]["id"], extra)
    assert caught.value.codes == ["fills-exceed-order"]


def test_allocation_matches_the_worked_example_and_is_recorded_once(firm: Ledger) -> None:
    doc = trade_doc()
    record_through_fills(firm, doc)
    result = workflow.allocate_order(firm, who(firm, "tom"), doc["order"]["id"])
    quantities = {a["account"]: a["quantity"] for a in result.document["allocations"]}
    assert quantities == {"CLIENT-A": 15000, "CLIENT-B": 6000, "CLIENT-C": 3000, "PROPRIETARY": 6000}
    assert result.document["average_price"] == "100"
    again = workflow.allocate_order(firm, who(firm, "tom"), doc["order"]["id"])  # a retry
    assert again == result
    with firm.read() as session:
        assert len(session.query(kinds=["order.allocated"])) == 1


def test_late_allocation_is_recorded_flagged_and_alerted(firm: Ledger) -> None:
    doc = trade_doc(trade_date=dt.date(2026, 3, 2))  # allocated long after its cut-off
    record_through_fills(firm, doc)
    result = workflow.allocate_order(firm, who(firm, "tom"), doc["order"]["id"])
    assert result.late and result.deadline is not None and result.deadline.startswith("2026-03-02T23:59:59")
    assert [a.data()["alert"] for a in workflow.alerts(firm)] == ["late-allocation"]


def test_allocation_on_time_is_not_flagged(firm: Ledger) -> None:
    doc = trade_doc(trade_date=TODAY)
    record_through_fills(firm, doc)
    result = workflow.allocate_order(firm, who(firm, "tom"), doc["order"]["id"])
    assert not result.late and workflow.alerts(firm) == []


def test_rotation_positions_advance_across_orders(firm: Ledger) -> None:
    positions = []
    for n in range(3):
        doc = trade_doc(ROTATION_TRADE, order_id=f"FI-{n}", trade_date=TODAY)
        record_through_fills(firm, doc)
        result = workflow.allocate_order(firm, who(firm, "tom"), doc["order"]["id"])
        positions.append((result.rotation_before, result.rotation_after))
    assert positions[0][0] is None
    assert [after["position"] for _before, after in positions if after] == [1, 2, 3]
    assert positions[1][0] == positions[0][1] and positions[2][0] == positions[1][1]


def test_override_needs_an_allowed_reason_and_a_memo(firm: Ledger) -> None:
    doc = trade_doc()
    record_through_fills(firm, doc)
    workflow.allocate_order(firm, who(firm, "tom"), doc["order"]["id"])
    moved = {"CLIENT-A": 14900, "CLIENT-B": 6000, "CLIENT-C": 3100, "PROPRIETARY": 6000}
    from decimal import Decimal

    as_decimal = {k: Decimal(v) for k, v in moved.items()}
    with pytest.raises(RefusedError) as caught:
        workflow.request_override(firm, who(firm, "tom"), doc["order"]["id"], as_decimal, "BECAUSE", "memo")
    assert caught.value.codes == ["override-reason-not-allowed"]
    with pytest.raises(RefusedError) as caught:
        workflow.request_override(firm, who(firm, "tom"), doc["order"]["id"], as_decimal, "ODD-LOT-CLEANUP", " ")
    assert caught.value.codes == ["override-memo-required"]
    short = {**as_decimal, "CLIENT-A": Decimal(100)}
    with pytest.raises(RefusedError) as caught:
        workflow.request_override(firm, who(firm, "tom"), doc["order"]["id"], short, "ODD-LOT-CLEANUP", "memo")
    assert caught.value.codes == ["override-total-mismatch"]
    event = workflow.request_override(firm, who(firm, "tom"), doc["order"]["id"], as_decimal, "ODD-LOT-CLEANUP",
                                      "Odd lot moved to the smaller account.")
    assert event.data()["status"] == "pending-review"
    assert [a.data()["alert"] for a in workflow.alerts(firm)][-1] == "override-pending-review"


def _overridden(firm: Ledger, requester: str) -> str:
    from decimal import Decimal

    doc = trade_doc()
    record_through_fills(firm, doc)
    workflow.allocate_order(firm, who(firm, "tom"), doc["order"]["id"])
    moved = {"CLIENT-A": Decimal(14900), "CLIENT-B": Decimal(6000), "CLIENT-C": Decimal(3100),
             "PROPRIETARY": Decimal(6000)}
    workflow.request_override(firm, who(firm, requester), doc["order"]["id"], moved, "ODD-LOT-CLEANUP", "memo")
    return str(doc["order"]["id"])


def test_override_approved_by_the_same_user_is_refused(firm: Ledger) -> None:
    workflow.set_role(firm, who(firm, "ada"), "tom", "cco", grant=True)  # even a trader who is also a CCO
    order_id = _overridden(firm, "tom")
    with pytest.raises(RefusedError) as caught:
        workflow.review_override(firm, who(firm, "tom"), order_id, True, "fine")
    assert caught.value.codes == ["review-by-requester"]


def test_review_needs_the_cco_role(firm: Ledger) -> None:
    order_id = _overridden(firm, "tom")
    with pytest.raises(RefusedError) as caught:
        workflow.review_override(firm, who(firm, "tess"), order_id, True, "fine")
    assert caught.value.codes == ["role-required"]


def test_cco_approves_once(firm: Ledger) -> None:
    order_id = _overridden(firm, "tom")
    review = workflow.review_override(firm, who(firm, "cole"), order_id, True, "objective reason checked")
    assert review.data()["decision"] == "approved"
    with pytest.raises(RefusedError) as caught:
        workflow.review_override(firm, who(firm, "cara"), order_id, False, "")
    assert caught.value.codes == ["override-not-pending"]
    record = workflow.read_order(firm, order_id)
    assert record.approved_override() is not None


def test_roles_are_enforced_and_granted_by_admins_only(firm: Ledger) -> None:
    with pytest.raises(RefusedError) as caught:
        workflow.set_role(firm, who(firm, "tom"), "tom", "cco", grant=True)
    assert caught.value.codes == ["role-required"]
    with pytest.raises(RefusedError) as caught:
        workflow.record_statement(firm, who(firm, "cole"), load_trade(trade_doc()))
    assert caught.value.codes == ["role-required"]
    workflow.set_role(firm, who(firm, "ada"), "pam", "pm", grant=False)
    with pytest.raises(RefusedError):
        workflow.record_statement(firm, who(firm, "pam"), load_trade(trade_doc()))


def test_policy_registry(ledger: Ledger) -> None:
    staff(ledger)
    policy = load_policy(EQUITY_POLICY)
    record, created = workflow.publish_policy(ledger, who(ledger, "cole"), policy)
    assert created and record.digest == policy.digest and record.canonical == policy.canonical
    assert record.published_by == "cole" and record.source == policy.source
    assert workflow.publish_policy(ledger, who(ledger, "cole"), policy) == (record, False)
    from fairalloc import policy_from_text

    changed = policy_from_text(policy.source.replace("lot: 100", "lot: 10"), file="changed.yaml")
    with pytest.raises(LedgerError) as caught:
        workflow.publish_policy(ledger, who(ledger, "cole"), changed)
    assert caught.value.codes == ["policy-version-conflict"]
    v2 = policy_from_text(policy.source.replace("version: 1", "version: 2"), file="v2.yaml")
    workflow.publish_policy(ledger, who(ledger, "cole"), v2)
    assert [r.version for r in workflow.policy_history(ledger, policy.id)] == [1, 2]
    assert workflow.find_policy(ledger, policy.id).version == 2
    assert workflow.find_policy(ledger, f"{policy.id}@1").digest == policy.digest
    with pytest.raises(RefusedError):
        workflow.publish_policy(ledger, who(ledger, "tom"), v2)  # traders do not publish policy


def test_the_version_in_effect_at_entry_governs(ledger: Ledger) -> None:
    staff(ledger)
    publish(ledger, EQUITY_POLICY)
    doc = trade_doc(order_id="BEFORE")
    record_through_fills(ledger, doc)
    from fairalloc import policy_from_text

    source = load_policy(EQUITY_POLICY).source
    v2 = policy_from_text(source.replace("version: 1", "version: 2"), file="v2.yaml")
    workflow.publish_policy(ledger, who(ledger, "cole"), v2)
    later = trade_doc(order_id="AFTER")
    record_through_fills(ledger, later)
    first = workflow.allocate_order(ledger, who(ledger, "tom"), "BEFORE")  # allocated after v2 was published
    second = workflow.allocate_order(ledger, who(ledger, "tom"), "AFTER")
    assert first.document["policy"]["version"] == 1
    assert second.document["policy"]["version"] == 2


def test_no_policy_in_effect_refuses_entry(ledger: Ledger) -> None:
    staff(ledger)
    publish(ledger, ROTATION_POLICY)  # governs fixed income only
    doc = trade_doc()
    workflow.record_statement(ledger, who(ledger, "pam"), load_trade(doc))
    with pytest.raises(RefusedError) as caught:
        workflow.enter_order(ledger, who(ledger, "tom"), load_trade(doc))
    assert caught.value.codes == ["no-policy-in-effect"]


def test_the_whole_workflow_leaves_a_verifiable_chain(firm: Ledger) -> None:
    order_id = _overridden(firm, "tom")
    workflow.review_override(firm, who(firm, "cole"), order_id, False, "not justified")
    with firm.read() as session:
        report = verify(session)
    assert report.ok
    assert [e.kind for e in workflow.read_order(firm, order_id).reviews] == ["override.reviewed"]


def test_override_names_every_statement_account(firm: Ledger) -> None:
    from decimal import Decimal

    doc = trade_doc()
    record_through_fills(firm, doc)
    workflow.allocate_order(firm, who(firm, "tom"), doc["order"]["id"])
    moved = {"CLIENT-A": Decimal(18000), "CLIENT-B": Decimal(6000), "CLIENT-C": Decimal(6000)}
    event = workflow.request_override(firm, who(firm, "tom"), doc["order"]["id"], moved, "CLIENT-RESTRICTION",
                                      "PROPRIETARY may not hold XYZ this week.")
    recorded = {line["account"]: line["quantity"] for line in event.data()["allocations"]}
    assert recorded == {"CLIENT-A": 18000, "CLIENT-B": 6000, "CLIENT-C": 6000, "PROPRIETARY": 0}


def test_a_rotation_can_be_seeded_once_before_it_starts(firm: Ledger) -> None:
    from fairalloc import RotationState

    group = "fixed-income-rotation/core"
    workflow.seed_rotation(firm, who(firm, "cole"), RotationState(group, 2))
    doc = trade_doc(ROTATION_TRADE, order_id="FI-S", trade_date=TODAY)
    record_through_fills(firm, doc)
    result = workflow.allocate_order(firm, who(firm, "tom"), "FI-S")
    assert result.rotation_before == {"group": group, "position": 2, "day": None}
    with pytest.raises(LedgerError) as caught:
        workflow.seed_rotation(firm, who(firm, "cole"), RotationState(group, 0))
    assert caught.value.codes == ["rotation-already-started"]
    with pytest.raises(RefusedError):
        workflow.seed_rotation(firm, who(firm, "tom"), RotationState("fixed-income-rotation/other", 1))
    from fairalloc.ledger.replay import replay_order

    assert replay_order(firm, "FI-S").identical
