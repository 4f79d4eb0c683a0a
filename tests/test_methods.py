"""Priority tiers, equal weights, minimum by value and the odd-lot recipient (docs/rounding.md).

Each rule's guarantee is a property over random blocks, on both books of the one driver: the
array book must give the document the record book gives, byte for byte.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairalloc import Backend, allocate, load_trade, policy_from_text
from fairalloc.errors import InputError, RefusedError

from .test_backends import both, trade_documents

HEADER = """
fairalloc: 1
id: methods
version: 1
effective: 2026-01-01
owner: tests
attributes:
  account:
    tier: {type: number, default: 2}
    nav: {type: number, default: 0}
  security:
    odd_lot_account: {type: string, default: A00}
method: pro_rata
"""


def block(intended: list[int], filled: int, tiers: list[int] | None = None, price: str = "20.05",
          attributes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    accounts = []
    for i, wanted in enumerate(intended):
        entry: dict[str, Any] = {"account": f"A{i:02d}", "intended": wanted}
        given_attributes = dict(attributes[i]) if attributes else {}
        if tiers is not None:
            given_attributes["tier"] = tiers[i]
        if given_attributes:
            entry["attributes"] = given_attributes
        accounts.append(entry)
    return {
        "order": {"id": "B-1", "symbol": "XYZ", "side": "buy", "quantity": sum(intended),
                  "trade_date": "2026-03-02", "entered_at": "2026-03-02T14:30:00Z"},
        "statement": {"recorded_at": "2026-03-02T14:00:00Z", "recorded_by": "pm", "accounts": accounts},
        "fills": [{"id": "F1", "quantity": filled, "price": price, "executed_at": "2026-03-02T14:31:00Z"}],
    }


def policy(body: str) -> Any:
    return policy_from_text(HEADER + body)


@st.composite
def blocks(draw: st.DrawFn, tiered: bool = False) -> tuple[list[int], int, list[int] | None, int]:
    lot = draw(st.sampled_from([1, 10, 100]))
    n = draw(st.integers(1, 30))
    intended = draw(st.lists(st.integers(1, 5000), min_size=n, max_size=n))
    filled = draw(st.integers(1, sum(intended)))
    tiers = draw(st.lists(st.integers(-2, 4), min_size=n, max_size=n)) if tiered else None
    return intended, filled, tiers, lot


def quantities(body: str, document: dict[str, Any]) -> list[int]:
    """Both books' allocation (they must agree), by account, as integers."""
    result, _ = both(policy(body), load_trade(document))
    assert result is not None
    return [int(q) for q in result.quantities().values()]


@settings(max_examples=150, deadline=None)
@given(blocks(tiered=True), st.sampled_from(["largest_remainder", "quota"]))
def test_no_lower_tier_account_receives_anything_while_a_higher_tier_account_is_short(
        drawn: tuple[list[int], int, list[int], int], method: str) -> None:
    intended, filled, tiers, lot = drawn
    got = quantities(f"pro_rata:\n  priority: 'account.tier'\nrounding:\n  lot: {lot}\n  method: {method}\n",
                     block(intended, filled, tiers))
    assert sum(got) == filled
    assert all(0 <= q <= wanted for q, wanted in zip(got, intended))
    for a in range(len(got)):
        for b in range(len(got)):
            if tiers[b] > tiers[a] and got[b] > 0:
                assert got[a] == intended[a], (a, b)


def test_a_tier_runs_short_in_one_place_only() -> None:
    """Worked: tier 1 (A00, A01) is filled, tier 2 shares 170 pro rata in lots of 10, tier 3 gets nothing."""
    got = quantities("pro_rata:\n  priority: 'account.tier'\nrounding:\n  lot: 10\n",
                     block([100, 50, 200, 100, 300], 320, [1, 1, 2, 2, 3]))
    assert got == [100, 50, 110, 60, 0]  # 113.3 and 56.7: the lot left goes to the larger remainder


@settings(max_examples=150, deadline=None)
@given(blocks())
def test_equal_allocations_differ_by_at_most_one_lot_among_accounts_not_capped(
        drawn: tuple[list[int], int, None, int]) -> None:
    """Under largest remainder (the quota method spreads no capped share: docs/rounding.md)."""
    intended, filled, _, lot = drawn
    got = quantities(f"pro_rata:\n  weight: equal\nrounding:\n  lot: {lot}\n", block(intended, filled))
    assert sum(got) == filled
    assert all(0 <= q <= wanted for q, wanted in zip(got, intended))
    level = equal_level(intended, filled)
    # capped: wanting no more than the equal share; the others all have that share, in lots
    free = [q for q, wanted in zip(got, intended) if wanted > level]
    if free:
        assert max(free) - min(free) <= lot
        assert all(level - lot < q < level + lot for q in free)


def equal_level(intended: list[int], filled: int) -> Fraction:
    """The exact equal share of the accounts that want more than it (water-filling)."""
    rest, count = Fraction(filled), len(intended)
    for wanted in sorted(intended):
        if wanted * count <= rest:
            rest -= wanted
            count -= 1
        else:
            break
    return rest / count if count else Fraction(max(intended))


@settings(max_examples=150, deadline=None)
@given(blocks(), st.sampled_from(["1000", "2500.50", "40000"]), st.sampled_from(["", "  absolute: 20\n"]),
       st.sampled_from(["19.99", "20.05", "101.125"]))
def test_every_allocation_reaches_the_minimum_by_value(
        drawn: tuple[list[int], int, None, int], value: str, beside: str, price: str) -> None:
    intended, filled, _, lot = drawn
    body = f"rounding:\n  lot: {lot}\nminimum:\n  value: {value}\n{beside}"
    result, _ = both(policy(body), load_trade(block(intended, filled, price=price)))
    assert result is not None
    got = [int(q) for q in result.quantities().values()]
    assert sum(got) == filled
    least = math.ceil(Fraction(value) / Fraction(price))
    if beside:
        least = max(least, 20)
    if not result.notes:  # a round not applied keeps allocations below the minimum, and says so
        assert all(q == 0 or q >= least for q in got)
        assert all(q == 0 or q * Fraction(price) >= Fraction(value) for q in got)


@settings(max_examples=150, deadline=None)
@given(blocks(), st.integers(0, 29))
def test_the_recipient_takes_the_odd_quantity_over_its_share_of_the_whole_lots(
        drawn: tuple[list[int], int, None, int], chosen: int) -> None:
    intended, filled, _, lot = drawn
    recipient = min(chosen, len(intended) - 1)
    odd = filled % lot
    with_recipient = f"rounding:\n  lot: {lot}\nodd_lots:\n  recipient: A{recipient:02d}\n"
    result, _ = both(policy(with_recipient), load_trade(block(intended, filled)))
    assert result is not None
    got = [int(q) for q in result.quantities().values()]
    assert sum(got) == filled
    if not odd:
        assert got == quantities(f"rounding:\n  lot: {lot}\n", block(intended, filled))
        return
    whole = quantities(f"rounding:\n  lot: {lot}\n", block(intended, filled - odd)) if filled > odd else [0] * len(got)
    if result.notes:
        assert "has no room" in result.notes[-1]
        assert got == quantities(f"rounding:\n  lot: {lot}\n", block(intended, filled))
    else:
        expected = list(whole)
        expected[recipient] += odd
        assert got == expected


def test_the_recipient_can_be_chosen_by_an_expression_over_the_security() -> None:
    document = block([300, 300, 300], 250)
    document["order"]["security"] = {"odd_lot_account": "A02"}
    got = quantities("rounding:\n  lot: 100\nodd_lots:\n  recipient:\n    expression: 'security.odd_lot_account'\n",
                     document)
    assert got == [100, 100, 50]


@pytest.mark.parametrize("backend", list(Backend))
def test_an_unknown_recipient_is_refused_with_its_code(backend: Backend) -> None:
    with pytest.raises(RefusedError) as caught:
        allocate(policy("rounding:\n  lot: 100\nodd_lots:\n  recipient: HOUSE\n"),
                 load_trade(block([300, 300], 250)), backend=backend)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "odd-lot-recipient-unknown"
    assert diagnostic.location.pointer == "/statement/accounts"
    assert "'HOUSE'" in diagnostic.message


@pytest.mark.parametrize("backend", list(Backend))
@pytest.mark.parametrize("tier", ["1.5", "2.25"])
def test_a_priority_that_is_not_an_integer_is_located_at_its_account(backend: Backend, tier: str) -> None:
    document = block([300, 300, 300], 250, [1, 1, 1])
    document["statement"]["accounts"][1]["attributes"]["tier"] = tier
    with pytest.raises(InputError) as caught:
        allocate(policy("pro_rata:\n  priority: 'account.tier'\nrounding:\n  lot: 100\n"), load_trade(document),
                 backend=backend)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "priority-invalid"
    assert diagnostic.location.pointer == "/statement/accounts/1"
    assert "'A01'" in diagnostic.message


def test_weights_by_nav_share_in_proportion_to_the_attribute() -> None:
    """NAV (or GAV, or a model's target) is a number attribute the weight reads."""
    navs = [{"nav": "2500000"}, {"nav": "1500000"}, {"nav": "1000000"}]
    got = quantities("pro_rata:\n  weight: 'account.nav'\nrounding:\n  lot: 100\n",
                     block([5000, 5000, 5000], 5000, attributes=navs))
    assert got == [2500, 1500, 1000]


@st.composite
def method_policies(draw: st.DrawFn) -> str:
    text = ""
    weight = draw(st.sampled_from([None, "equal", "'account.nav'"]))
    priority = draw(st.sampled_from([None, "'account.tier'", "'account.tier * 2 - 1'", "'account.nav'"]))
    if weight or priority:
        text += "pro_rata:\n" + (f"  weight: {weight}\n" if weight else "") + (
            f"  priority: {priority}\n" if priority else "")
    lot = draw(st.sampled_from(["1", "10", "100", "0.5"]))
    text += f"rounding:\n  lot: {lot}\n"
    if draw(st.booleans()):
        text += f"  remainder: {draw(st.sampled_from(['largest_account', 'smallest_account']))}\n"
    minimum = draw(st.sampled_from([None, "value: 1500", "value: 999.5\n  absolute: 20",
                                    "value: 800\n  relative_to_intended: '0.1'"]))
    if minimum:
        text += f"minimum:\n  {minimum}\n"
    recipient = draw(st.sampled_from([None, "A00", "A03", "\n    expression: 'security.odd_lot_account'"]))
    if recipient:
        text += f"odd_lots:\n  recipient: {recipient}\n"
    if draw(st.booleans()):
        text += ("rules:\n  - id: small\n    when: 'allocation > 0 and allocation < 10% * account.intended'\n"
                 "    action: zero\n    reason: too small\n")
    return text


@settings(max_examples=200, deadline=None)
@given(method_policies(), trade_documents())
def test_the_books_agree_on_every_new_rule(body: str, document: dict[str, Any]) -> None:
    for account in document["statement"]["accounts"]:
        score = account["attributes"].get("score")
        if isinstance(score, int):
            account["attributes"]["tier"] = score % 3
        if "assets" in account["attributes"]:
            account["attributes"]["nav"] = account["attributes"]["assets"]
    both(policy(body), load_trade(document))
