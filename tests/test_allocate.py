"""Allocation through the library API: the worked example, the shipped examples, and the
invariants every allocation keeps (conservation, caps, quota, thresholds, determinism,
permutation invariance, rotation fairness)."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from fractions import Fraction
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairalloc import RotationState, allocate, load_policy, load_trade, policy_from_text
from fairalloc.cli._io import dump_json
from fairalloc.errors import InputError
from fairalloc.schema import schema

from .conftest import CONTRACT, EXAMPLES, POLICIES, example_trade

ALLOCATION_SCHEMAS = [schema("allocation"), json.loads((CONTRACT / "allocation.schema.json").read_text())]


def assert_contract_valid(document: dict[str, Any]) -> None:
    for allocation_schema in ALLOCATION_SCHEMAS:
        jsonschema.Draft202012Validator(allocation_schema).validate(json.loads(dump_json(document)))


def test_worked_example_of_the_source_document() -> None:
    policy = load_policy(POLICIES / "us-equity-pro-rata.yaml")
    result = allocate(policy, load_trade(EXAMPLES / "us-equity-pro-rata.trade.json"))
    document = result.document()
    assert document["filled"] == 30000
    assert document["average_price"] == "100"
    assert {a["account"]: a["quantity"] for a in document["allocations"]} == {
        "CLIENT-A": 15000, "CLIENT-B": 6000, "CLIENT-C": 3000, "PROPRIETARY": 6000,
    }
    assert all(a["average_price"] == "100" for a in document["allocations"])
    assert document["policy"] == {"id": "us-equity-pro-rata", "version": 1, "digest": policy.digest}
    assert_contract_valid(document)


def test_worked_example_matches_the_contract_expectation() -> None:
    expected_file = CONTRACT / "examples" / "seed-worked-example.expected.json"
    expected = json.loads(expected_file.read_text())
    trade = load_trade(CONTRACT / "examples" / "seed-worked-example.trade.json")
    document = allocate(load_policy(POLICIES / "us-equity-pro-rata.yaml"), trade).document()
    assert document["filled"] == expected["filled"]
    assert document["average_price"] == expected["average_price"]
    assert {a["account"]: a["quantity"] for a in document["allocations"]} == expected["allocations"]


def _allocate_example(name: str, state: RotationState | None = None) -> dict[str, Any]:
    result = allocate(load_policy(POLICIES / f"{name}.yaml"), load_trade(EXAMPLES / f"{name}.trade.json"), state)
    document = result.document(explain=True)
    assert_contract_valid(document)
    return document


def _quantities(document: dict[str, Any]) -> dict[str, Any]:
    return {a["account"]: a["quantity"] for a in document["allocations"]}


def test_new_issue_excludes_restricted_persons_and_caps() -> None:
    document = _allocate_example("new-issue-ipo")
    assert _quantities(document) == {
        "BD-EMPLOYEE-E": 0, "FAMILY-C": 5500, "FOUNDATION-B": 9100, "GROWTH-FUND": 10000,
        "INDIVIDUAL-D": 3600, "PENSION-A": 10000, "SMALL-F": 1800,
    }
    fired = {(e["account"], e["rule"], e["action"]) for e in document["exceptions"]}
    assert ("BD-EMPLOYEE-E", "restricted-person-5130", "exclude") in fired
    assert ("GROWTH-FUND", "quarter-of-allotment-cap", "cap") in fired
    assert ("FAMILY-C", "employee-related-account", "flag") in fired
    assert document["review_required"] is True


def test_fixed_income_rotation_fills_in_full_from_the_state_position() -> None:
    state = RotationState("fixed-income-rotation/core", 2)
    document = _allocate_example("fixed-income-rotation", state)
    assert _quantities(document) == {
        "FI-INSUR-3": 1000000, "FI-FOUND-4": 500000, "FI-PENSION-1": 750000, "FI-ENDOW-2": 0,
    }
    assert document["rotation"]["after"] == {"group": "fixed-income-rotation/core", "position": 3, "day": None}


def test_price_time_gives_each_account_its_own_average() -> None:
    document = _allocate_example("limit-order-price-time")
    by_account = {a["account"]: (a["quantity"], a["average_price"]) for a in document["allocations"]}
    assert by_account == {
        "ACCT-MARKET": (2000, "100.9"),
        "ACCT-101": (3000, "100.5667"),
        "ACCT-100-EARLY": (2000, "100.4375"),
        "ACCT-100-LATE": (1000, "100.45"),
    }


def test_intraday_quota_policy_weights_by_assets() -> None:
    assert _quantities(_allocate_example("intraday-fill-monotone")) == {"MODEL-A": 500, "MODEL-B": 500, "MODEL-C": 100}


def test_explanation_answers_why_this_number() -> None:
    document = _allocate_example("new-issue-ipo")
    family = next(a for a in document["allocations"] if a["account"] == "FAMILY-C")["explain"]
    assert family["exact_share"].startswith("5454.545455")
    assert "+1 lot for its remainder" in family["rounding"]
    assert family["tie_break"].startswith("smallest_account")
    growth = next(a for a in document["allocations"] if a["account"] == "GROWTH-FUND")["explain"]
    assert growth["capped_in_water_filling"] is True and growth["cap"] == 10000


PRO_RATA = """
fairalloc: 1
id: prop
version: 1
effective: 2026-01-01
owner: test
method: pro_rata
rounding:
  lot: {lot}
  method: {method}
{extra}
"""


@st.composite
def trades(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 15))
    intended = draw(st.lists(st.integers(1, 400).map(lambda k: k * 50), min_size=n, max_size=n))
    total = sum(intended)
    filled = draw(st.integers(1, total))
    pieces = draw(st.integers(1, min(4, filled)))
    cuts = sorted(draw(st.lists(st.integers(1, max(1, filled - 1)), min_size=pieces - 1, max_size=pieces - 1, unique=True)))
    bounds = [0, *[c for c in cuts if 0 < c < filled], filled]
    cents = draw(st.lists(st.integers(9000, 11000), min_size=len(bounds) - 1, max_size=len(bounds) - 1))
    fills = [
        {"id": f"F{i}", "quantity": hi - lo, "price": f"{cents[i] // 100}.{cents[i] % 100:02d}",
         "executed_at": f"2026-03-02T15:{i:02d}:00Z"}
        for i, (lo, hi) in enumerate(zip(bounds, bounds[1:])) if hi > lo
    ]
    return {
        "order": {"id": "P-1", "symbol": "XYZ", "side": "buy", "quantity": total, "trade_date": "2026-03-02",
                  "entered_at": "2026-03-02T14:30:00Z"},
        "statement": {"recorded_at": "2026-03-02T14:00:00Z", "recorded_by": "pm",
                      "accounts": [{"account": f"A{i:02d}", "intended": q} for i, q in enumerate(intended)]},
        "fills": fills,
    }


def _shuffled(doc: dict[str, Any], seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    copy = json.loads(json.dumps(doc))
    rng.shuffle(copy["statement"]["accounts"])
    rng.shuffle(copy["fills"])
    return copy


@settings(max_examples=100, deadline=None)
@given(trades(), st.sampled_from(["largest_remainder", "quota"]), st.sampled_from([1, 100]), st.integers(0, 10**6))
def test_pro_rata_invariants(doc: dict[str, Any], method: str, lot: int, seed: int) -> None:
    policy = policy_from_text(PRO_RATA.format(lot=lot, method=method, extra=""))
    result = allocate(policy, load_trade(doc))
    filled = sum(f["quantity"] for f in doc["fills"])
    total = doc["order"]["quantity"]
    quantities = result.quantities()
    assert sum(quantities.values()) == filled  # conservation
    for entry in doc["statement"]["accounts"]:
        got = quantities[entry["account"]]
        assert got <= entry["intended"]  # cap: never above intended
        exact = Fraction(filled * entry["intended"], total)
        if method == "largest_remainder" or filled % lot == 0:
            assert lot * math.floor(exact / lot) <= got <= lot * math.ceil(exact / lot)  # quota
        else:
            assert abs(got - exact) < 2 * lot
    first = dump_json(result.document(explain=True))
    assert dump_json(allocate(policy, load_trade(doc)).document(explain=True)) == first  # determinism
    again = allocate(policy, load_trade(_shuffled(doc, seed)))
    assert dump_json(again.document(explain=True)) == first  # input order is irrelevant


@settings(max_examples=100, deadline=None)
@given(trades(), st.integers(1, 20))
def test_minimum_threshold_holds_at_the_fixed_point(doc: dict[str, Any], minimum_lots: int) -> None:
    policy = policy_from_text(PRO_RATA.format(
        lot=50, method="largest_remainder", extra=f"minimum:\n  absolute: {minimum_lots * 50}\n"))
    result = allocate(policy, load_trade(doc))
    quantities = result.quantities()
    assert sum(quantities.values()) == sum(f["quantity"] for f in doc["fills"])
    if not result.notes:
        assert all(q == 0 or q >= minimum_lots * 50 for q in quantities.values())
    denied = {e.account for e in result.exceptions if e.rule == "minimum"}
    assert all(quantities[a] == 0 for a in denied)


ROTATION = """
fairalloc: 1
id: rot
version: 1
effective: 2026-01-01
owner: test
method: rotation
rotation:
  {order}
  advance: per_order
rounding:
  lot: 100
"""


@pytest.mark.parametrize("order", ["sequence: [A00, A01, A02, A03, A04]", "order_by: 'account.id'"])
def test_rotation_leads_equally_often(order: str) -> None:
    policy = policy_from_text(ROTATION.format(order=order))
    rng = random.Random(7)
    state = RotationState("rot")
    leaders: Counter[str] = Counter()
    orders = 53
    for number in range(orders):
        intended = [rng.randint(1, 30) * 100 for _ in range(5)]
        filled = rng.randint(1, sum(intended) // 100) * 100
        doc = {
            "order": {"id": f"R{number}", "symbol": "B", "side": "buy", "quantity": sum(intended),
                      "trade_date": "2026-03-02", "entered_at": "2026-03-02T14:30:00Z"},
            "statement": {"recorded_at": "2026-03-02T14:00:00Z", "recorded_by": "pm",
                          "accounts": [{"account": f"A{i:02d}", "intended": q} for i, q in enumerate(intended)]},
            "fills": [{"id": "F", "quantity": filled, "price": "100", "executed_at": "2026-03-02T15:00:00Z"}],
        }
        result = allocate(policy, load_trade(doc), state)
        leader = next(a for a in result.accounts if a.rotation_rank == 0)
        assert leader.quantity == min(filled, leader.intended)  # the leader is filled first, in full
        assert sum(result.quantities().values()) == filled
        leaders[leader.account] += 1
        assert result.rotation_after is not None
        state = result.rotation_after
    counts = [leaders[f"A{i:02d}"] for i in range(5)]
    assert max(counts) - min(counts) <= 1 and sum(counts) == orders


def test_rotation_state_of_another_group_is_refused() -> None:
    policy = load_policy(POLICIES / "fixed-income-rotation.yaml")
    with pytest.raises(InputError) as caught:
        allocate(policy, load_trade(EXAMPLES / "fixed-income-rotation.trade.json"), RotationState("other", 0))
    assert caught.value.codes == ["rotation-group-mismatch"]


def test_rotation_refuses_accounts_outside_the_sequence() -> None:
    doc = example_trade("fixed-income-rotation")
    doc["statement"]["accounts"][0]["account"] = "NEW-ACCOUNT"
    with pytest.raises(Exception) as caught:
        allocate(load_policy(POLICIES / "fixed-income-rotation.yaml"), load_trade(doc))
    assert "rotation-unknown-account" in caught.value.codes  # type: ignore[attr-defined]


def test_decimal_context_of_the_host_does_not_change_results() -> None:
    import decimal

    policy = load_policy(POLICIES / "limit-order-price-time.yaml")
    trade = load_trade(EXAMPLES / "limit-order-price-time.trade.json")
    before = dump_json(allocate(policy, trade).document(explain=True))
    with decimal.localcontext() as context:
        context.prec = 3
        context.rounding = decimal.ROUND_FLOOR
        assert dump_json(allocate(policy, trade).document(explain=True)) == before


def test_a_round_not_applied_leaves_no_exception_behind() -> None:
    policy = policy_from_text(PRO_RATA.format(lot=100, method="largest_remainder", extra=(
        "rules:\n"
        "  - id: tiny\n    when: 'allocation < 1000000'\n    action: zero\n    reason: r\n"
        "  - id: small\n    when: 'allocation < 2000000'\n    action: zero\n    reason: r\n")))
    result = allocate(policy, load_trade(example_trade()))
    assert result.notes and "not applied" in result.notes[0]
    assert result.exceptions == ()
    assert all(a.rules == () for a in result.accounts)
    assert sum(result.quantities().values()) == 30000


def test_cap_rules_do_not_fire_for_excluded_accounts() -> None:
    doc = example_trade("new-issue-ipo")
    doc["statement"]["accounts"][0]["attributes"] = {"restricted_person": True}
    doc["fills"][0]["quantity"] = 20000
    result = allocate(load_policy(POLICIES / "new-issue-ipo.yaml"), load_trade(doc))
    growth = [(e.rule, e.action) for e in result.exceptions if e.account == "GROWTH-FUND"]
    assert growth == [("restricted-person-5130", "exclude")]


def test_explanation_shows_the_weight_the_policy_computed() -> None:
    document = _allocate_example("intraday-fill-monotone")
    model_a = next(a for a in document["allocations"] if a["account"] == "MODEL-A")["explain"]
    assert model_a["weight"] == "6000000" and model_a["weight_basis"] == "account.assets"
    assert "exact_share_before_caps" in model_a


def test_a_round_not_applied_with_cap_rules_and_no_zero_rules() -> None:
    text = (POLICIES / "us-equity-pro-rata.yaml").read_text()
    text = text.replace("absolute: 100\n", "absolute: 100000\n").replace(
        "rules:\n", "rules:\n  - {id: big-cap, when: 'account.intended > 20000', action: cap, quantity: 20000, reason: cap}\n", 1)
    result = allocate(policy_from_text(text), load_trade(EXAMPLES / "us-equity-pro-rata.trade.json"))
    assert result.notes and "not applied" in result.notes[0]
    assert sum(result.quantities().values()) == 30000


def test_rotation_hands_out_whole_lots_and_the_odd_rest_to_the_last_account() -> None:
    policy = policy_from_text(ROTATION.format(order="sequence: [A00, A01, A02]"))
    doc = {
        "order": {"id": "R", "symbol": "B", "side": "buy", "quantity": 3500, "trade_date": "2026-03-02",
                  "entered_at": "2026-03-02T14:30:00Z"},
        "statement": {"recorded_at": "2026-03-02T14:00:00Z", "recorded_by": "pm", "accounts": [
            {"account": "A00", "intended": 1250}, {"account": "A01", "intended": 1250},
            {"account": "A02", "intended": 1000}]},
        "fills": [{"id": "F", "quantity": 2530, "price": "100", "executed_at": "2026-03-02T15:00:00Z"}],
    }
    result = allocate(policy, load_trade(doc), RotationState("rot"))
    assert result.quantities() == {"A00": 1200, "A01": 1200, "A02": 130}
