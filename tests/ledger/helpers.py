"""Building trades and a staffed ledger for the workflow tests."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

from fairalloc import load_policy, load_trade
from fairalloc.ledger import workflow
from fairalloc.ledger.store import Ledger

ROOT = Path(__file__).resolve().parents[2]
EQUITY_POLICY = ROOT / "policies" / "us-equity-pro-rata.yaml"
ROTATION_POLICY = ROOT / "policies" / "fixed-income-rotation.yaml"
EQUITY_TRADE = ROOT / "examples" / "us-equity-pro-rata.trade.json"
ROTATION_TRADE = ROOT / "examples" / "fixed-income-rotation.trade.json"

STAFF = {"ada": "admin", "pam": "pm", "tom": "trader", "tess": "trader", "cole": "cco", "cara": "cco"}


def staff(ledger: Ledger) -> None:
    """An admin, a PM, two traders and two CCOs."""
    workflow.set_role(ledger, "ada", "ada", "admin", grant=True)
    for user, role in STAFF.items():
        if user != "ada":
            workflow.set_role(ledger, "ada", user, role, grant=True)


def publish(ledger: Ledger, *paths: Path) -> None:
    for path in paths or (EQUITY_POLICY, ROTATION_POLICY):
        workflow.publish_policy(ledger, "cole", load_policy(path))


def trade_doc(path: Path = EQUITY_TRADE, order_id: str | None = None,
              trade_date: dt.date | None = None) -> dict[str, Any]:
    """An example trade, optionally renamed and moved to another trade date (times move too)."""
    doc: dict[str, Any] = copy.deepcopy(json.loads(path.read_text()))
    if order_id is not None:
        doc["order"]["id"] = order_id
        for fill in doc["fills"]:
            fill["id"] = f"{order_id}-{fill['id']}"
    if trade_date is not None:
        old = doc["order"]["trade_date"]
        text = json.dumps(doc).replace(old, trade_date.isoformat())
        doc = json.loads(text)
    return doc


def record_through_fills(ledger: Ledger, doc: dict[str, Any]) -> None:
    trade = load_trade(doc)
    workflow.record_statement(ledger, "pam", trade)
    workflow.enter_order(ledger, "tom", trade)
    workflow.record_fills(ledger, "tom", doc["order"]["id"], trade.to_json()["fills"])
