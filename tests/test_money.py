"""Settlement guarantees (docs/rounding.md, "Costs"; docs/policy-language.md, "Prices and costs").

Costs: the accounts' shares of every commission and fee add up to the trade's to the cent, and
each is within one cent of its exact share, whatever the residual rule. Fill price: the pieces of
every fill add up to the fill, the pieces of every account to its allocation, and the deviation
reported is the account's exact average less the block's. Checked end to end on both backends
against numbers recomputed here from the document alone.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairalloc import Backend, allocate, load_trade, policy_from_text
from fairalloc.errors import InputError, PolicyError, RefusedError
from fairalloc import money
from fairalloc.money import share_cents
from fairalloc.numbers import present
from fairalloc.options import Residual


def policy_text(*, allocation: str = "average", basis: str = "quantity", residual: str = "largest_remainder",
                by_cost: str = "", schedule: bool = False, rounding: str = "half_even", lot: int = 100,
                by_broker: bool = False) -> str:
    lines = [
        "fairalloc: 1", "id: money-test", "version: 1", "effective: 2026-01-01", "owner: cco",
        "attributes:", "  account:", "    rate: {type: number, default: 1}",
        "method: pro_rata", "rounding:", f"  lot: {lot}",
        "price:", "  precision: 4", f"  rounding: {rounding}", f"  allocation: {allocation}",
        f"  by_broker: {'true' if by_broker else 'false'}",
        "costs:", f"  basis: {basis}", f"  residual: {residual}",
    ]
    if schedule:
        lines.append("  schedule: rate")
    if by_cost:
        lines.append(f"  by_cost: {by_cost}")
    return "\n".join(lines) + "\n"


@st.composite
def trades(draw: st.DrawFn, max_accounts: int = 8) -> dict[str, Any]:
    n = draw(st.integers(1, max_accounts))
    intended = draw(st.lists(st.integers(1, 40).map(lambda lots: lots * 100), min_size=n, max_size=n))
    total = sum(intended)
    count = draw(st.integers(1, 5))
    quantities = draw(st.lists(st.integers(1, 60), min_size=count, max_size=count))
    scale_to = draw(st.integers(1, total))
    weights = sum(quantities)
    fills_units = [max(1, q * scale_to // weights) for q in quantities]
    while sum(fills_units) > total:
        fills_units[fills_units.index(max(fills_units))] -= 1
    fills = []
    for i, units in enumerate(fills_units):
        if units <= 0:
            continue
        fill: dict[str, Any] = {
            "id": f"F{i}", "quantity": units, "price": str(Decimal(draw(st.integers(9900, 10100))) / 100),
            "executed_at": f"2026-03-02T14:{31 + i:02d}:00Z",
            "trade_date": draw(st.sampled_from(["2026-03-02", "2026-03-03"])),
            "broker": draw(st.sampled_from(["GSCO", "MSCO"])),
        }
        if draw(st.booleans()):
            fill["costs"] = {"commission": str(Decimal(draw(st.integers(0, 5000))) / 100)}
        fills.append(fill)
    return {
        "order": {"id": "O", "symbol": "XYZ", "side": draw(st.sampled_from(["buy", "sell"])), "quantity": total,
                  "trade_date": "2026-03-02", "entered_at": "2026-03-02T14:30:00Z",
                  "costs": {"sec_fee": str(Decimal(draw(st.integers(0, 999))) / 100)}},
        "statement": {"recorded_at": "2026-03-02T14:00:00Z", "recorded_by": "pm", "accounts": [
            {"account": f"A{k}", "intended": q, "attributes": {"rate": draw(st.integers(0, 3))}}
            for k, q in enumerate(intended)]},
        "fills": fills,
    }


def cents(text: str) -> int:
    value = Decimal(text) * 100
    assert value == value.to_integral_value()
    return int(value)


def document(policy: str, trade: dict[str, Any], backend: Backend) -> dict[str, Any]:
    result = allocate(policy_from_text(policy), load_trade(json.loads(json.dumps(trade))), backend=backend)
    out: dict[str, Any] = result.document()
    return out


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**6), st.lists(st.integers(0, 10**6), min_size=1, max_size=30),
       st.sampled_from(list(Residual)), st.data())
def test_cost_shares_add_up_and_stay_within_a_cent(total: int, weights: list[int], rule: Residual,
                                                    data: st.DataObject) -> None:
    if not any(weights):
        weights[0] = 1
    units = data.draw(st.lists(st.integers(0, 10**4), min_size=len(weights), max_size=len(weights)))
    shares = share_cents(total, weights, rule, units)
    assert sum(shares) == total
    whole = sum(weights)
    for share, weight in zip(shares, weights):
        assert abs(share - Fraction(total * weight, whole)) < 1
    if rule is Residual.LARGEST_REMAINDER:  # Hamilton: the cents go to the largest fractions
        fraction = [Fraction(total * w, whole) % 1 for w in weights]
        up = [fraction[k] for k, s in enumerate(shares) if s > Fraction(total * weights[k], whole)]
        down = [fraction[k] for k, s in enumerate(shares) if s < Fraction(total * weights[k], whole)]
        assert not up or not down or min(up) >= max(down)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**6), st.lists(st.integers(0, 10**4), min_size=1, max_size=60),
       st.sampled_from(list(Residual)), st.data())
def test_the_numpy_path_shares_exactly_as_the_python_path(total: int, weights: list[int], rule: Residual,
                                                           data: st.DataObject) -> None:
    """Large blocks share costs on int64 arrays; the cents and their order must be the same."""
    if not any(weights):
        weights[0] = 1
    units = data.draw(st.lists(st.integers(0, 50), min_size=len(weights), max_size=len(weights)))
    assert len(weights) < money._NUMPY_FROM  # so share_cents takes the Python path here
    assert money._share_cents_array(total, weights, sum(weights), rule, units) == share_cents(
        total, weights, rule, units)


@settings(max_examples=60, deadline=None)
@given(trades(), st.sampled_from(["quantity", "notional"]), st.sampled_from([r.value for r in Residual]),
       st.sampled_from(["average", "fill"]), st.booleans())
def test_costs_are_shared_to_the_cent(trade: dict[str, Any], basis: str, residual: str, allocation: str,
                                      schedule: bool) -> None:
    if schedule and not any(a["attributes"]["rate"] for a in trade["statement"]["accounts"]):
        trade["statement"]["accounts"][0]["attributes"]["rate"] = 1
    policy = policy_text(allocation=allocation, basis=basis, residual=residual, schedule=schedule)
    try:
        out = document(policy, trade, Backend.RECORDS)
    except RefusedError as error:  # a cost with nobody to carry it (every scheduled account unallocated)
        assert error.diagnostics[0].code == "costs-unshared"
        return
    assert out == document(policy, trade, Backend.ARRAYS)
    totals = {name: cents(line["total"]) for name, line in out["settlement"]["costs"].items()}
    expected = {"sec_fee": cents(trade["order"]["costs"]["sec_fee"])}
    for fill in trade["fills"]:
        for name, amount in fill.get("costs", {}).items():
            expected[name] = expected.get(name, 0) + cents(amount)
    assert totals == expected
    rates = {a["account"]: Fraction(a["attributes"]["rate"] if schedule else 1) for a in trade["statement"]["accounts"]}
    entries = out["allocations"]

    def basis_of(entry: dict[str, Any]) -> Fraction:
        if basis == "quantity":
            return Fraction(entry["quantity"]) * rates[entry["account"]]
        if "pieces" in entry:  # value at the exact fill or day prices
            value = sum((Fraction(p["quantity"]) * _exact_price(trade, p) for p in entry["pieces"]), Fraction(0))
            return value * rates[entry["account"]]
        return Fraction(entry["quantity"]) * rates[entry["account"]]

    weights = {e["account"]: basis_of(e) for e in entries}
    whole = sum(weights.values())
    for name, total in totals.items():
        shares = {e["account"]: cents(e["money"]["costs"][name]) for e in entries}
        assert sum(shares.values()) == total
        if whole == 0:  # nobody carries a cost: allowed only for a cost of nothing (else costs-unshared)
            assert total == 0 and set(shares.values()) == {0}, name
            continue
        for account, share in shares.items():
            assert abs(share - total * weights[account] / whole) < 1, (name, account)


def _exact_price(trade: dict[str, Any], piece: dict[str, Any]) -> Fraction:
    """The exact price of a piece: its fill's, or the average of its day's (and broker's) fills."""
    if "fill" in piece:
        return next(Fraction(f["price"]) for f in trade["fills"] if f["id"] == piece["fill"])
    group = [f for f in trade["fills"] if f["trade_date"] == piece["trade_date"]
             and ("broker" not in piece or f["broker"] == piece["broker"])]
    value = sum((Fraction(f["quantity"]) * Fraction(f["price"]) for f in group), Fraction(0))
    return value / sum(int(f["quantity"]) for f in group)


@settings(max_examples=60, deadline=None)
@given(trades(), st.booleans(), st.sampled_from([1, 100]))
def test_fill_price_conserves_every_fill_and_account(trade: dict[str, Any], by_broker: bool, lot: int) -> None:
    policy = policy_text(allocation="fill", by_broker=by_broker, lot=lot)
    out = document(policy, trade, Backend.RECORDS)
    assert out == document(policy, trade, Backend.ARRAYS)
    per_fill: dict[str, Fraction] = {}
    money = sum(Fraction(f["quantity"]) * Fraction(f["price"]) for f in trade["fills"])
    block = money / sum(f["quantity"] for f in trade["fills"])
    for entry in out["allocations"]:
        pieces = entry.get("pieces", [])
        assert sum(Fraction(p["quantity"]) for p in pieces) == Fraction(entry["quantity"])
        for piece in pieces:
            per_fill[piece["fill"]] = per_fill.get(piece["fill"], Fraction(0)) + Fraction(piece["quantity"])
            fill = next(f for f in trade["fills"] if f["id"] == piece["fill"])
            assert (piece["trade_date"], piece["broker"]) == (fill["trade_date"], fill["broker"])
            assert Fraction(piece["price"]) == Fraction(fill["price"])
        if entry["quantity"]:
            own = sum(Fraction(p["quantity"]) * Fraction(p["price"]) for p in pieces) / Fraction(entry["quantity"])
            assert Decimal(entry["deviation"]) == present(own - block, 12)
            assert Fraction(entry["money"]["gross"]) == own * Fraction(entry["quantity"])
    assert per_fill == {f["id"]: Fraction(f["quantity"]) for f in trade["fills"]}
    whole_lots = all(f["quantity"] % lot == 0 for f in trade["fills"]) and all(
        e["quantity"] % lot == 0 for e in out["allocations"])
    for entry in out["allocations"]:
        for piece in entry.get("pieces", []):
            assert piece["quantity"] > 0
            assert not whole_lots or piece["quantity"] % lot == 0


@settings(max_examples=40, deadline=None)
@given(trades(), st.booleans())
def test_average_price_is_per_trade_date_and_broker(trade: dict[str, Any], by_broker: bool) -> None:
    out = document(policy_text(by_broker=by_broker), trade, Backend.RECORDS)
    days = {(f["trade_date"], f["broker"] if by_broker else None) for f in trade["fills"]}
    per_day: dict[tuple[str, str | None], Fraction] = {}
    for entry in out["allocations"]:
        pieces = entry.get("pieces")
        if len(days) == 1:
            assert pieces is None
            continue
        assert sum(Fraction(p["quantity"]) for p in pieces or []) == Fraction(entry["quantity"])
        for piece in pieces or []:
            key = (piece["trade_date"], piece.get("broker"))
            per_day[key] = per_day.get(key, Fraction(0)) + Fraction(piece["quantity"])
    if len(days) > 1:
        wanted: dict[tuple[str, str | None], Fraction] = {}
        for fill in trade["fills"]:
            key = (fill["trade_date"], fill["broker"] if by_broker else None)
            wanted[key] = wanted.get(key, Fraction(0)) + fill["quantity"]
        assert per_day == wanted


@settings(max_examples=30, deadline=None)
@given(trades(), st.randoms(use_true_random=False))
def test_the_result_does_not_depend_on_input_order(trade: dict[str, Any], shuffle: random.Random) -> None:
    policy = policy_text(allocation="fill", basis="notional", residual="smallest_account")
    shuffled = json.loads(json.dumps(trade))
    shuffle.shuffle(shuffled["fills"])
    shuffle.shuffle(shuffled["statement"]["accounts"])
    assert document(policy, trade, Backend.RECORDS) == document(policy, shuffled, Backend.RECORDS)


def small_trade(side: str = "buy") -> dict[str, Any]:
    return {
        "order": {"id": "O", "symbol": "XYZ", "side": side, "quantity": 300, "trade_date": "2026-03-02",
                  "entered_at": "2026-03-02T14:30:00Z", "costs": {"commission": "1.00"}},
        "statement": {"recorded_at": "2026-03-02T14:00:00Z", "recorded_by": "pm", "accounts": [
            {"account": "A", "intended": 100}, {"account": "B", "intended": 200}]},
        "fills": [{"id": "F1", "quantity": 100, "price": "10.00001", "executed_at": "2026-03-02T14:31:00Z"},
                  {"id": "F2", "quantity": 200, "price": "10.00002", "executed_at": "2026-03-02T14:32:00Z"}],
    }


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_cme_553_rounds_against_the_group_and_credits_the_difference(side: str) -> None:
    out = document(policy_text(rounding="cme_553", lot=1), small_trade(side), Backend.RECORDS)
    exact = Fraction(100 * Fraction("10.00001") + 200 * Fraction("10.00002"), 300)
    shown = Fraction(out["average_price"])
    assert (shown >= exact) if side == "buy" else (shown <= exact)
    assert shown == Fraction(present(exact, 4, "up" if side == "buy" else "down"))
    for entry in out["allocations"]:
        money = entry["money"]
        credit = Fraction(money["price_credit"])
        owed = abs(Fraction(entry["quantity"]) * (shown - exact))
        assert owed <= credit < owed + Fraction(1, 100)
        costs = sum(Fraction(c) for c in money["costs"].values())
        gross = Fraction(money["gross"])
        assert Fraction(money["net"]) == (gross + costs - credit if side == "buy" else gross - costs + credit)


def test_errors_are_located_with_stable_codes() -> None:
    trade = small_trade()
    trade["order"]["costs"] = {"commission": "1.001"}
    with pytest.raises(InputError) as error:
        document(policy_text(), trade, Backend.RECORDS)
    assert [(d.code, d.location.pointer) for d in error.value.diagnostics] == [
        ("cost-precision", "/order/costs/commission")]

    trade = small_trade()
    trade["statement"]["accounts"][1]["attributes"] = {"rate": -1}
    with pytest.raises(InputError) as error:
        document(policy_text(schedule=True), trade, Backend.RECORDS)
    assert [(d.code, d.location.pointer) for d in error.value.diagnostics] == [
        ("cost-schedule-invalid", "/statement/accounts/1/attributes/rate")]

    trade = small_trade()
    for account in trade["statement"]["accounts"]:
        account["attributes"] = {"rate": 0}
    with pytest.raises(RefusedError) as refused:
        document(policy_text(schedule=True), trade, Backend.RECORDS)
    assert refused.value.diagnostics[0].code == "costs-unshared"

    with pytest.raises(PolicyError) as bad:
        policy_from_text(policy_text(allocation="fill", rounding="cme_553"))
    assert [d.code for d in bad.value.diagnostics] == ["price-rounding-needs-average"]
    assert bad.value.diagnostics[0].location.line == 14

    with pytest.raises(PolicyError) as bad:
        policy_from_text(policy_text(by_cost="{sec_fee: {schedule: rates}}"))
    assert [(d.code, d.hint) for d in bad.value.diagnostics] == [("costs-schedule", "did you mean 'rate'?")]


def test_clearing_instructions_carry_the_fix_process_code() -> None:
    trade = small_trade()
    trade["statement"]["accounts"][0]["clearing"] = {"process": "step_out", "broker": "MSCO"}
    entries = {e["account"]: e for e in document(policy_text(), trade, Backend.RECORDS)["allocations"]}
    assert entries["A"]["clearing"] == {"process": "step_out", "process_code": "3", "broker": "MSCO"}
    assert "clearing" not in entries["B"]


def test_a_fill_dated_before_the_order_is_refused() -> None:
    trade = small_trade()
    trade["fills"][1]["trade_date"] = "2026-03-01"
    with pytest.raises(RefusedError) as refused:
        document(policy_text(), trade, Backend.RECORDS)
    assert [(d.code, d.location.pointer) for d in refused.value.diagnostics] == [
        ("fill-before-order", "/fills/1/trade_date")]


def _tiered(policy: str) -> str:
    """``policy`` with priority tiers (``pro_rata.priority``) read from each account's ``tier``."""
    return policy.replace("    rate: {type: number, default: 1}\n",
                          "    rate: {type: number, default: 1}\n    tier: {type: number, default: 2}\n").replace(
        "method: pro_rata\n", "method: pro_rata\npro_rata:\n  priority: 'account.tier'\n")


@settings(max_examples=40, deadline=None)
@given(trades(), st.sampled_from([r.value for r in Residual]), st.sampled_from(["average", "fill"]), st.data())
def test_costs_and_prices_follow_priority_tiers(trade: dict[str, Any], residual: str, allocation: str,
                                                data: st.DataObject) -> None:
    """Settlement runs on the quantities the tiers allocated: the same quantities as without
    costs, on both backends, each commission and fee shared to the cent by allocated quantity."""
    for account in trade["statement"]["accounts"]:
        account["attributes"]["tier"] = data.draw(st.integers(1, 3))
    policy = _tiered(policy_text(allocation=allocation, residual=residual))
    assert policy_from_text(policy).priority is not None
    try:
        out = document(policy, trade, Backend.RECORDS)
    except RefusedError as error:  # a cost with nobody to carry it (no account allocated)
        assert error.diagnostics[0].code == "costs-unshared"
        return
    assert out == document(policy, trade, Backend.ARRAYS)
    plain = _tiered(policy_text(allocation=allocation, residual=residual).split("costs:\n")[0])
    assert policy_from_text(plain).pricing.costs is None
    quantities = {e["account"]: e["quantity"] for e in out["allocations"]}
    assert quantities == {e["account"]: e["quantity"] for e in document(plain, trade, Backend.RECORDS)["allocations"]}
    whole = sum(Fraction(q) for q in quantities.values())
    for name, line in out["settlement"]["costs"].items():
        total = cents(line["total"])
        shares = {e["account"]: cents(e["money"]["costs"][name]) for e in out["allocations"]}
        assert sum(shares.values()) == total
        for account, share in shares.items():
            assert abs(share - total * Fraction(quantities[account]) / whole) < 1, (name, account)


@settings(max_examples=400, deadline=None)
@given(st.fractions(), st.integers(min_value=0, max_value=14),
       st.sampled_from(["half_even", "half_up", "down", "up", "floor", "ceiling"]))
def test_a_presented_number_is_written_as_its_decimal_is(value: Fraction, places: int, rule: str) -> None:
    from fairalloc.numbers import decimal_text, present_text

    assert present_text(value, places, rule) == decimal_text(present(value, places, rule))
