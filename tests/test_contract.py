"""The project's own models and schemas stay in step with the OMS contract."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import jsonschema
import pytest

from fairalloc import load_trade
from fairalloc.errors import FairallocError
from fairalloc.schema import schema_text

from .conftest import CONTRACT, EXAMPLES, PUBLISHED_CONTRACT, example_trade


EXTENSIONS = {
    "trade": ("/$defs/costs", "/properties/order/properties/costs",
              "/properties/statement/properties/accounts/items/properties/clearing",
              "/properties/fills/items/properties/trade_date", "/properties/fills/items/properties/broker",
              "/properties/fills/items/properties/costs"),
    "allocation": (),
}
"""fairalloc's optional fields beyond the OMS contract: costs, clearing instructions, fill trade
dates and brokers. Every document the contract accepts, the shipped schema accepts."""


def _without(schema: dict[str, Any], pointers: tuple[str, ...]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(schema))
    for where in pointers:
        *parents, last = where.strip("/").split("/")
        node = copy
        for part in parents:
            node = node[part]
        del node[last]
    return copy


@pytest.mark.parametrize("name", ["trade", "allocation"])
def test_shipped_schema_is_the_contract(name: str) -> None:
    """The shipped schema is the contract, plus only the optional extensions listed above."""
    contract = CONTRACT / f"{name}.schema.json"
    assert _without(json.loads(schema_text(name)), EXTENSIONS[name]) == json.loads(contract.read_text())


def test_pinned_contract_is_the_published_one() -> None:
    """The repository's pinned copy must not drift from the contract the OMS teams publish."""
    if not PUBLISHED_CONTRACT.is_dir():
        pytest.skip("the published contract is not beside this checkout")
    published = sorted(p.relative_to(PUBLISHED_CONTRACT) for p in PUBLISHED_CONTRACT.rglob("*") if p.is_file())
    pinned = sorted(p.relative_to(CONTRACT) for p in CONTRACT.rglob("*") if p.is_file())
    assert pinned == published
    for relative in published:
        assert (CONTRACT / relative).read_bytes() == (PUBLISHED_CONTRACT / relative).read_bytes(), relative


def _variants() -> list[tuple[str, dict[str, Any]]]:
    """Documents near the contract's boundary: each one valid or invalid for a single reason."""
    out: list[tuple[str, dict[str, Any]]] = []
    for example in sorted(EXAMPLES.glob("*.trade.json")):
        out.append((example.stem, example_trade(example.name.removesuffix(".trade.json"))))
    base = example_trade()

    def variant(name: str, change: Any) -> None:
        doc = json.loads(json.dumps(base))
        change(doc)
        out.append((name, doc))

    variant("decimal-string-quantity", lambda d: d["fills"][0].update(quantity="18000.5"))
    variant("integer-price", lambda d: d["fills"][0].update(price=100))
    variant("negative-quantity", lambda d: d["fills"][0].update(quantity=-1))
    variant("exponent-string", lambda d: d["fills"][0].update(quantity="1e3"))
    variant("null-limit", lambda d: d["order"].update(limit_price=None))
    variant("extra-order-field", lambda d: d["order"].update(desk="x"))
    variant("extra-top-field", lambda d: d.update(note="x"))
    variant("empty-accounts", lambda d: d["statement"].update(accounts=[]))
    variant("missing-fills", lambda d: d.pop("fills"))
    variant("empty-symbol", lambda d: d["order"].update(symbol=""))
    variant("bad-side", lambda d: d["order"].update(side="hold"))
    variant("venue", lambda d: d["fills"][0].update(venue="XNYS"))
    variant("bool-quantity", lambda d: d["fills"][0].update(quantity=True))
    variant("leading-zero", lambda d: d["fills"][0].update(quantity="0100"))
    variant("unix-time-entered", lambda d: d["order"].update(entered_at=1772461800))
    variant("integer-trade-date", lambda d: d["order"].update(trade_date=20260302))
    variant("null-venue", lambda d: d["fills"][0].update(venue=None))
    variant("null-received-at", lambda d: d["statement"]["accounts"][0].update(received_at=None))
    variant("null-attributes", lambda d: d["statement"]["accounts"][0].update(attributes=None))
    variant("null-security", lambda d: d["order"].update(security=None))
    variant("received-at", lambda d: d["statement"]["accounts"][0].update(received_at="2026-03-02T14:00:00+01:00"))
    variant("fill-costs", lambda d: d["fills"][0].update(costs={"commission": "12.50", "sec_fee": "0.37"}))
    variant("order-costs", lambda d: d["order"].update(costs={"commission": "1"}))
    variant("cost-number", lambda d: d["order"].update(costs={"commission": 1}))
    variant("cost-negative", lambda d: d["order"].update(costs={"commission": "-1.00"}))
    variant("cost-empty-name", lambda d: d["order"].update(costs={"": "1.00"}))
    variant("null-costs", lambda d: d["order"].update(costs=None))
    variant("fill-trade-date", lambda d: d["fills"][0].update(trade_date="2026-03-03"))
    variant("fill-trade-timestamp", lambda d: d["fills"][0].update(trade_date="2026-03-03T00:00:00Z"))
    variant("fill-broker", lambda d: d["fills"][0].update(broker="GSCO"))
    variant("fill-empty-broker", lambda d: d["fills"][0].update(broker=""))
    variant("step-out", lambda d: d["statement"]["accounts"][0].update(clearing={"process": "step_out", "broker": "MS"}))
    variant("bad-process", lambda d: d["statement"]["accounts"][0].update(clearing={"process": "give", "broker": "MS"}))
    variant("clearing-no-broker", lambda d: d["statement"]["accounts"][0].update(clearing={"process": "step_in"}))
    return out


@pytest.mark.parametrize(("name", "doc"), _variants(), ids=[n for n, _ in _variants()])
def test_models_accept_exactly_what_the_contract_accepts(name: str, doc: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(
        json.loads(schema_text("trade")), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    contract_ok = validator.is_valid(json.loads(json.dumps(doc, default=str)))
    try:
        load_trade(json.loads(json.dumps(doc, default=str), parse_float=Decimal))
        model_ok = True
    except FairallocError:
        model_ok = False
    assert model_ok == contract_ok
