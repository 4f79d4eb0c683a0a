"""Building trades and a staffed ledger for the workflow tests."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

from fairalloc import load_policy, load_trade
from fairalloc.ledger import workflow
from fairalloc.ledger.identity import Actor
from fairalloc.ledger.store import Ledger

ROOT = Path(__file__).resolve().parents[2]
EQUITY_POLICY = ROOT / "policies" / "us-equity-pro-rata.yaml"
ROTATION_POLICY = ROOT / "policies" / "fixed-income-rotation.yaml"
EQUITY_TRADE = ROOT / "examples" / "us-equity-pro-rata.trade.json"
ROTATION_TRADE = ROOT / "examples" / "fixed-income-rotation.trade.json"

TODAY_UTC = dt.datetime.now(dt.timezone.utc).date()

STAFF = {"ada": "admin", "pam": "pm", "tom": "trader", "tess": "trader", "cole": "cco", "cara": "cco"}


def me(ledger: Ledger) -> Actor:
    """The identity the tests run as: the OS user (SQLite) or the connected role (PostgreSQL)."""
    return ledger.actor()


def who(ledger: Ledger, name: str) -> Actor:
    """Staff member ``name`` as a token subject vouched for by the tests' own identity — the
    path the HTTP service takes, and the one way several people act from one process."""
    return Actor.of(name, "token", service=ledger.identity().name)


def staff(ledger: Ledger) -> None:
    """The tests' identity bootstraps the ledger and may vouch for staff (service role); then an
    admin, a PM, two traders and two CCOs."""
    self = me(ledger)
    workflow.initialise(ledger, self, self.name)
    workflow.set_role(ledger, self, self.name, "service", grant=True)
    for user, role in STAFF.items():
        workflow.set_role(ledger, self, user, role, grant=True)


def publish(ledger: Ledger, *paths: Path) -> None:
    for path in paths or (EQUITY_POLICY, ROTATION_POLICY):
        workflow.publish_policy(ledger, who(ledger, "cole"), load_policy(path))


def now_iso(offset: float = 0.0) -> str:
    """The current UTC time (plus ``offset`` seconds) as the contract writes times."""
    moment = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=offset)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def retimed(doc: dict[str, Any], offset: float = 0.0) -> dict[str, Any]:
    """``doc`` entered and executed now (plus ``offset`` seconds), as a trade recorded as it
    happens is; its trade date is kept."""
    moved = copy.deepcopy(doc)
    moved["order"]["entered_at"] = now_iso(offset)
    for fill in moved["fills"]:
        fill["executed_at"] = now_iso(offset)
    return moved


def trade_doc(path: Path = EQUITY_TRADE, order_id: str | None = None,
              trade_date: dt.date | None = None) -> dict[str, Any]:
    """An example trade, optionally renamed and moved to another trade date, entered and
    executed now (see :func:`retimed`)."""
    doc: dict[str, Any] = copy.deepcopy(json.loads(path.read_text()))
    if order_id is not None:
        doc["order"]["id"] = order_id
        for fill in doc["fills"]:
            fill["id"] = f"{order_id}-{fill['id']}"
    if trade_date is not None:
        old = doc["order"]["trade_date"]
        text = json.dumps(doc).replace(old, trade_date.isoformat())
        doc = json.loads(text)
        # moved to today, the example's statement time (15:00:30) may be later than now, when
        # the order is entered: the statement is then recorded as it happens, before the order
        if doc["statement"]["recorded_at"] > now_iso():
            doc["statement"]["recorded_at"] = now_iso()
    return retimed(doc)


def record_through_fills(ledger: Ledger, doc: dict[str, Any]) -> dict[str, Any]:
    """Statement, entry and fills of ``doc`` as they happen now; returns the document recorded."""
    doc = retimed(doc)
    trade = load_trade(doc)
    workflow.record_statement(ledger, who(ledger, "pam"), trade)
    workflow.enter_order(ledger, who(ledger, "tom"), trade)
    workflow.record_fills(ledger, who(ledger, "tom"), doc["order"]["id"], trade.to_json()["fills"])
    return doc
