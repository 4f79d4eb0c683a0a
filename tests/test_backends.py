"""The two backends of the one allocation driver (fairalloc.execute): records and arrays.

For every policy and trade, ``allocate(..., backend=Backend.ARRAYS)`` must give the document
``backend=Backend.RECORDS`` gives, byte for byte, explanations and exceptions included, apart from
the ``backend`` entry that says which ran; where one refuses or rejects a trade, the other must
raise the same error. Where the array backend declines, the explanation says why.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from fairalloc import Allocation, Backend, Policy, Trade, allocate, load_policy, load_trade, policy_from_text
from fairalloc.arrayform import ARRAYS_FROM, ArrayForm, Decline, Why
from fairalloc.cli._io import dump_json
from fairalloc.errors import FairallocError

from .conftest import POLICIES

HEADER = """
fairalloc: 1
id: columnar-{n}
version: 1
effective: 2026-01-01
owner: tests
attributes:
  account:
    type: {{type: string, values: [institutional, retail], default: retail}}
    restricted: {{type: boolean, default: false}}
    score: {{type: number, default: 0}}
    assets: {{type: number, default: 0}}
method: pro_rata
"""

RULES = {
    "exclude": ["account.restricted", 'account.type == "retail" and account.score > 7',
                'account.id in ["A03", "A07", "A11"]', "account.score * 3 <= -20"],
    "cap": ['account.type == "retail"', "account.score >= 5", "not account.restricted"],
    "zero": ["allocation < 2 * account.score", "allocation > 0 and allocation < 10% * account.intended",
             "account.intended - allocation >= 0.5 * account.intended + 7"],
    "flag": ['account.type == "institutional" and allocation < 1% * account.intended and fill.ratio < 0.5',
             "account.intended - allocation > 3 * account.score + 100",
             'not account.restricted or account.type != "retail"',
             "allocation / 2 > 10",  # division: outside the columnar subset, so the general path runs
             "-account.score > fill.quantity - allocation",
             'account.id >= "A05" and account.id != "A09"'],
}


@st.composite
def policy_texts(draw: st.DrawFn) -> str:
    text = HEADER.format(n=draw(st.integers(0, 10**6)))
    weight = draw(st.sampled_from([None, "account.assets", "account.score", "account.assets * 2"]))
    if weight is not None:
        text += f"pro_rata:\n  weight: '{weight}'\n"
    lot = draw(st.sampled_from(["1", "10", "100", "0.5"]))
    method = draw(st.sampled_from(["largest_remainder", "quota"]))
    text += f"rounding:\n  lot: {lot}\n  method: {method}\n"
    if method == "largest_remainder":
        text += f"  remainder: {draw(st.sampled_from(['largest_remainder', 'smallest_account', 'largest_account']))}\n"
    text += f"  tie_break: {draw(st.sampled_from(['account_id', 'smallest_account', 'largest_account']))}\n"
    if draw(st.booleans()):
        text += "caps:\n  allow_above_intended: true\n"
    minimum = draw(st.sampled_from([None, "absolute: 100", "absolute: 2.5", "relative_to_intended: '0.25'"]))
    if minimum is not None:
        text += f"minimum:\n  {minimum}\n  denied: pro_rata\n"
    chosen = draw(st.lists(st.sampled_from([(action, i) for action, whens in RULES.items()
                                            for i in range(len(whens))]), max_size=4, unique=True))
    if chosen:
        text += "rules:\n"
        for number, (action, i) in enumerate(chosen):
            text += f"  - id: r{number}-{action}\n    when: '{RULES[action][i]}'\n    action: {action}\n"
            text += f"    reason: rule {number}\n    review: {str(number % 2 == 0).lower()}\n"
            if action == "cap":
                quantity = draw(st.sampled_from(["0", "150", "420.5", "'150'", "'account.intended * 50%'",
                                                 "'account.score * 100 - 50'", "'account.intended / 3'"]))
                text += f"    quantity: {quantity}\n"
    return text


@st.composite
def trade_documents(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 24))
    ids = draw(st.permutations([f"A{i:02d}" for i in range(n)]))
    decimal = draw(st.booleans())
    accounts = []
    for account in ids:
        units = draw(st.integers(1, 60))
        intended: int | str = units * 50 if not decimal else str(Decimal(units * 25) / 2)
        attributes: dict[str, Any] = {}
        if draw(st.booleans()):
            attributes["type"] = draw(st.sampled_from(["institutional", "retail"]))
        if draw(st.booleans()):
            attributes["restricted"] = draw(st.booleans())
        if draw(st.booleans()):
            attributes["assets"] = draw(st.one_of(st.integers(0, 10**6), st.sampled_from(["0.5", "1250.75", "3e2"])))
        if draw(st.booleans()):
            attributes["score"] = draw(st.one_of(
                st.integers(-10, 10),
                st.sampled_from(["2.5", "-3.25", "7", "1e1", Decimal("0.125"), Decimal("-4.0")]),
            ))
        accounts.append({"account": account, "intended": intended, "attributes": attributes})
    if draw(st.sampled_from(range(20))) == 13:  # now and then a value the general path must refuse
        accounts[0]["attributes"]["score"] = draw(st.sampled_from(["abc", True, "NaN"]))
    total = sum(Decimal(str(a["intended"])) for a in accounts)
    filled = draw(st.integers(1, int(total)))
    parts = draw(st.integers(1, 3))
    quantities = [filled // parts] * (parts - 1) + [filled - (filled // parts) * (parts - 1)]
    fills = [{"id": f"F{i}", "quantity": q, "price": draw(st.sampled_from(["99.95", "100", "100.075"])),
              "executed_at": f"2026-03-02T14:3{i}:00Z"} for i, q in enumerate(quantities) if q > 0]
    order_quantity: int | str = int(total) if total == int(total) else str(total)
    return {
        "order": {"id": "B-1", "symbol": "XYZ", "side": "buy", "quantity": order_quantity,
                  "trade_date": "2026-03-02", "entered_at": "2026-03-02T14:30:00Z"},
        "statement": {"recorded_at": "2026-03-02T14:00:00Z", "recorded_by": "pm", "accounts": accounts},
        "fills": fills,
    }


def run(policy: Policy, trade: Trade, backend: Backend) -> tuple[Allocation | None, str, dict[str, Any] | None]:
    """The result (or the error's codes and messages), the explained document without its
    ``backend`` entry, and that entry."""
    try:
        result = allocate(policy, trade, backend=backend)
    except FairallocError as error:
        return None, repr([(d.code, d.message, d.hint) for d in error.diagnostics]), None
    document = result.document(explain=True)
    used = document.pop("backend")
    return result, dump_json(document), used


def both(policy: Policy, trade: Trade) -> tuple[Allocation | None, dict[str, Any] | None]:
    """Run both backends, assert they agree, return the array run's result and its backend entry."""
    records, by_records, used_records = run(policy, trade, Backend.RECORDS)
    arrays, by_arrays, used_arrays = run(policy, trade, Backend.ARRAYS)
    assert by_arrays == by_records
    if records is not None:
        assert used_records == {"used": "records", "why": "the caller asked for the record backend"}
        assert arrays is not None and arrays.quantities() == records.quantities()
        assert [a.rules for a in arrays.accounts] == [a.rules for a in records.accounts]
    return arrays, used_arrays


@settings(max_examples=300, deadline=None)
@given(policy_texts(), trade_documents())
def test_the_backends_give_the_same_document(policy_text: str, document: dict[str, Any]) -> None:
    policy = policy_from_text(policy_text)
    result, used = both(policy, load_trade(document))
    if used is None:
        event("refused or rejected")
    elif used["used"] == "arrays":
        event("arrays")
    else:
        event("declined: " + used["why"].split(":")[0])
        assert isinstance(policy.arrays, Decline) or "the trade holds data" in used["why"]


def large_trade(accounts: int) -> dict[str, Any]:
    intended = [100 * (1 + (i * 7919) % 50) for i in range(accounts)]
    total = sum(intended)
    return {
        "order": {"id": "B-9", "symbol": "XYZ", "side": "buy", "quantity": total, "trade_date": "2026-03-02",
                  "entered_at": "2026-03-02T14:30:00Z", "security": {"asset_class": "equity"}},
        "statement": {"recorded_at": "2026-03-02T14:00:00Z", "recorded_by": "pm", "accounts": [
            {"account": f"C{(i * 7) % accounts:05d}", "intended": q,
             "attributes": {"proprietary": i % 41 == 0}} for i, q in enumerate(intended)]},
        "fills": [{"id": "F1", "quantity": total * 3 // 7, "price": "100.01", "executed_at": "2026-03-02T14:31:00Z"}],
    }


def test_the_shipped_equity_policy_runs_on_arrays_for_a_large_block() -> None:
    policy = load_policy(POLICIES / "us-equity-pro-rata.yaml")
    assert isinstance(policy.arrays, ArrayForm)
    trade = load_trade(large_trade(ARRAYS_FROM * 2))
    result, used = both(policy, trade)
    assert used == {"used": "arrays"}
    assert result is not None and any(record.rule == "proprietary-in-partial-fill" for record in result.exceptions)
    automatic = allocate(policy, trade).document(explain=True)
    assert automatic["backend"] == {"used": "arrays"}


def test_a_small_block_runs_by_records_unless_arrays_are_asked_for() -> None:
    policy = load_policy(POLICIES / "us-equity-pro-rata.yaml")
    trade = load_trade(large_trade(ARRAYS_FROM - 2))
    assert allocate(policy, trade).document(explain=True)["backend"] == {
        "used": "records", "why": f"blocks under 64 accounts are faster by records: {ARRAYS_FROM - 2} accounts"}
    assert allocate(policy, trade, backend=Backend.ARRAYS).document(explain=True)["backend"] == {"used": "arrays"}


def test_policies_without_an_array_form_say_why() -> None:
    rotation = load_policy(POLICIES / "fixed-income-rotation.yaml")
    price_time = load_policy(POLICIES / "limit-order-price-time.yaml")
    assert rotation.arrays == Decline(Why.METHOD, "method rotation")
    assert price_time.arrays == Decline(Why.METHOD, "method price_time")
    divides = policy_from_text(HEADER.format(n=1) + "rounding:\n  lot: 1\nrules:\n  - id: half\n"
                               "    when: 'allocation / 2 > 10'\n    action: flag\n    reason: r\n")
    assert divides.arrays == Decline(Why.CONDITION, "rule 'half': allocation / 2 > 10")
    trade = load_trade(large_trade(ARRAYS_FROM))
    assert allocate(divides, trade, backend=Backend.ARRAYS).document(explain=True)["backend"] == {
        "used": "records", "why": "a rule's condition has no columnar form: rule 'half': allocation / 2 > 10"}


def test_a_refused_trade_is_refused_alike_by_both() -> None:
    policy = load_policy(POLICIES / "us-equity-pro-rata.yaml")
    document = large_trade(ARRAYS_FROM)
    document["statement"]["accounts"][5]["account"] = document["statement"]["accounts"][6]["account"]
    trade = load_trade(document)
    for backend in Backend:
        with pytest.raises(FairallocError) as caught:
            allocate(policy, trade, backend=backend)
        assert caught.value.codes == ["duplicate-account"]


@pytest.mark.parametrize("section", [
    "minimum:\n  relative_to_intended: '0.0000000000000000000000001'\n",
    "minimum:\n  absolute: 100000000000000000000000\n",
    "rules:\n  - id: huge\n    when: 'account.score > 100000000000000000000'\n    action: flag\n    reason: r\n",
    "rules:\n  - id: huge-cap\n    when: 'account.restricted'\n    action: cap\n    quantity: 100000000000000000000000\n"
    "    reason: r\n",
])
def test_numbers_beyond_int64_decline_to_records_or_agree(section: str) -> None:
    policy = policy_from_text(HEADER.format(n=2) + "rounding:\n  lot: 1\n" + section)
    both(policy, load_trade(large_trade(ARRAYS_FROM)))
