"""The allocation driver (fairalloc.execute): rotation with caps that are not whole lots, the
shortfall message, and properties that must hold on both backends."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairalloc import Backend, RotationState, allocate, load_policy, load_trade, policy_from_text
from fairalloc.errors import RefusedError

from .conftest import POLICIES, example_trade

ROTATION = """
fairalloc: 1
id: rot
version: 1
effective: 2026-01-01
owner: test
method: rotation
rotation:
  sequence: [{sequence}]
  advance: per_order
rounding:
  lot: {lot}
"""


def block(intended: dict[str, int], filled: int) -> dict[str, Any]:
    total = sum(intended.values())
    return {
        "order": {"id": "R", "symbol": "B", "side": "buy", "quantity": total, "trade_date": "2026-03-02",
                  "entered_at": "2026-03-02T14:30:00Z"},
        "statement": {"recorded_at": "2026-03-02T14:00:00Z", "recorded_by": "pm",
                      "accounts": [{"account": a, "intended": q} for a, q in intended.items()]},
        "fills": [{"id": "F", "quantity": filled, "price": "100", "executed_at": "2026-03-02T15:00:00Z"}],
    }


@pytest.mark.parametrize(("lot", "intended"), [
    (100, {"A00": 1250, "A01": 1250, "A02": 1000}),
    (1000, {"A00": 1500, "A01": 1500}),
])
def test_a_full_fill_by_rotation_gives_every_account_its_intended_quantity(lot: int, intended: dict[str, int]) -> None:
    """Caps that are not whole lots used to leave part of a full fill over ("only 3400 of 3500")."""
    policy = policy_from_text(ROTATION.format(sequence=", ".join(intended), lot=lot))
    result = allocate(policy, load_trade(block(intended, sum(intended.values()))), RotationState("rot"))
    assert result.quantities() == {account: Fraction(q) for account, q in intended.items()}


def test_the_shipped_rotation_policy_fills_uneven_bonds_in_full() -> None:
    policy = load_policy(POLICIES / "fixed-income-rotation.yaml")
    document = example_trade("fixed-income-rotation")
    accounts = [a for a in document["statement"]["accounts"] if a["account"] != "FI-FOUND-4"]
    for account, quantity in zip(accounts, (1500, 1500, 2500)):
        account["intended"] = quantity
    document["statement"]["accounts"] = accounts
    document["order"]["quantity"] = 5500
    document["fills"] = [dict(document["fills"][0], quantity=5500)]
    result = allocate(policy, load_trade(document), RotationState("fixed-income-rotation/core"))
    assert sorted(result.quantities().values()) == [1500, 1500, 2500]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=6), st.sampled_from([1, 100, 250]), st.data())
def test_rotation_allocates_any_fill_the_accounts_can_hold(hundreds: list[int], lot: int, data: st.DataObject) -> None:
    """Conservation and caps: every fill up to the intended total is allocated, none above an
    account's intended quantity, each account in full before the next takes more than its lots."""
    intended = {f"A{i:02d}": 50 * h for i, h in enumerate(hundreds)}
    filled = data.draw(st.integers(1, sum(intended.values())))
    policy = policy_from_text(ROTATION.format(sequence=", ".join(intended), lot=lot))
    result = allocate(policy, load_trade(block(intended, filled)), RotationState("rot"))
    quantities = result.quantities()
    assert sum(quantities.values()) == filled
    assert all(0 <= quantities[a] <= q for a, q in intended.items())
    if filled == sum(intended.values()):
        assert quantities == {a: Fraction(q) for a, q in intended.items()}


def test_a_shortfall_says_what_the_accounts_can_hold() -> None:
    text = ROTATION.format(sequence="A00, A01", lot=100) + (
        "rules:\n  - {id: small, when: 'account.id == \"A00\"', action: cap, quantity: 200, reason: r}\n")
    with pytest.raises(RefusedError) as caught:
        allocate(policy_from_text(text), load_trade(block({"A00": 1000, "A01": 1000}, 2000)), RotationState("rot"))
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "unallocatable"
    assert diagnostic.message == "only 1200 of 2000 units could be allocated under rot@1"
    assert diagnostic.hint == "the accounts taking part can hold 1200 units in all under their caps"


def test_a_shortfall_with_every_account_excluded_says_so() -> None:
    text = ROTATION.format(sequence="A00, A01", lot=100) + (
        "rules:\n  - {id: all, when: 'account.intended > 0', action: exclude, reason: r}\n")
    for backend in Backend:
        with pytest.raises(RefusedError) as caught:
            allocate(policy_from_text(text), load_trade(block({"A00": 1000, "A01": 1000}, 2000)),
                     RotationState("rot"), backend=backend)
        assert caught.value.diagnostics[0].hint == "every account is excluded; the policy must say where such shares go"
