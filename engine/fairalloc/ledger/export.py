"""Exports for examiners and the forensic review: plain CSV and JSON Lines files.

``export`` writes, for the whole ledger or one trade date:

* ``allocations.csv`` — one row per account per order, in the allocation-history format the
  forensic review reads (``order_id … allocated_at, executed_at, intended, order_quantity,
  order_filled, allocated_by, attr.*``); an approved override replaces the engine's quantities and
  its own time and author become the allocation's;
* ``overrides.csv`` — every manual deviation (one row per account it moves) with its reason
  code, memo and review outcome;
* ``fills.csv`` — the broker confirmations (executions) with their execution and recording times;
* ``orders.csv`` — the timeline of each order: intent recorded, order entered, allocated, under
  which policy version, and whether the allocation was late;
* ``allocations.jsonl`` and ``events.jsonl`` / ``events.csv`` — the full records;
* ``head.json`` — the chain head at export time, an anchor for ``ledger verify --anchor``;
* ``checkpoint`` — with a signing key, the signed checkpoint of the ledger the export was taken
  from (:mod:`fairalloc.ledger.checkpoint`), for ``ledger verify --checkpoint``.

Together these are the trade-date record set of confirmations, allocations and their time stamps
that T+1 settlement rules require advisers to keep. Numbers are written as decimal text, never in
exponent form; times are ISO 8601 in UTC (``Z``).

The CSV files are opened in spreadsheets, which run a cell starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return as a formula: such a cell (a memo, a name) is written with a
leading ``'`` so it is shown as text, never run — numbers, negative ones included, are left as
they are. A name (user, account, order or fill id) holding a control or invisible character is
written escaped (``\\u200b``), so that what a reader sees is what is recorded.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from fairalloc.errors import Diagnostic, FileAccessError, Location
from fairalloc.ledger.chain import Event
from fairalloc.ledger.checkpoint import SigningKey, sign_snapshot
from fairalloc.ledger.store import Ledger, Session
from fairalloc.ledger.workflow import OrderRecord, order_record, quantity, quantity_json
from fairalloc.names import escape

ALLOCATION_COLUMNS = (
    "order_id", "trade_date", "symbol", "side", "account", "quantity", "price", "allocated_at",
    "executed_at", "intended", "order_quantity", "order_filled", "allocated_by",
)
OVERRIDE_COLUMNS = (
    "order_id", "account", "recorded_at", "recorded_by", "reason_code", "memo", "status",
    "reviewed_at", "reviewed_by", "review_memo",
)
FILL_COLUMNS = (
    "order_id", "fill_id", "quantity", "price", "executed_at", "venue", "recorded_at", "recorded_by",
    "change", "refers_to",
)
ORDER_COLUMNS = (
    "order_id", "trade_date", "symbol", "side", "quantity", "filled", "statement_recorded_at",
    "statement_recorded_by", "entered_at", "entered_by", "policy_id", "policy_version",
    "policy_digest", "allocated_at", "allocated_by", "deadline", "late", "override_status",
)
EVENT_COLUMNS = (
    "seq", "recorded_at", "actor", "kind", "order_id", "key", "topic", "payload", "prev_hash", "hash",
    "source", "service", "on_behalf_of",
)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
NAME_COLUMNS = frozenset({
    "order_id", "account", "fill_id", "venue", "symbol", "actor", "recorded_by", "reviewed_by",
    "allocated_by", "entered_by", "statement_recorded_by", "refers_to",
})
"""Columns holding names: shown escaped when they hold a control or invisible character."""


def safe_cell(column: str, text: str) -> str:
    """``text`` as a CSV cell no spreadsheet runs as a formula (see the module's documentation)."""
    if column in NAME_COLUMNS and any(unicodedata.category(c)[0] == "C" for c in text):
        text = escape(text)
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


@dataclass(frozen=True, slots=True)
class ExportSummary:
    files: dict[str, int]  # file name -> rows written
    head: Event | None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(quantity_json(Decimal(value)))
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def _status(record: OrderRecord, override: Event) -> tuple[str, Event | None]:
    for review in record.reviews:
        if review.data()["override_seq"] == override.seq:
            return review.data()["decision"], review
    return "pending-review", None


def _allocation_rows(record: OrderRecord) -> list[dict[str, str]]:
    current = record.current_allocation
    if current is None or record.entered is None or record.statement is None:
        return []
    order = record.entered.data()["order"]
    document = current.data()["document"]
    accounts = {a["account"]: a for a in record.statement.data()["statement"]["accounts"]}
    fills = record.effective_fills(current.seq)
    executed_at = max((f["executed_at"] for f in fills), default=None)
    allocated_at, allocated_by = current.recorded_at, current.actor
    lines = [(a["account"], a["quantity"], a["average_price"]) for a in document["allocations"]]
    approved = record.approved_override()
    if approved is not None:
        allocated_at, allocated_by = approved.recorded_at, approved.actor
        lines = [(a["account"], a["quantity"], document.get("average_price"))
                 for a in approved.data()["allocations"]]
    rows: list[dict[str, str]] = []
    for account, qty, price in lines:
        if quantity(qty) <= 0:
            continue
        row = {
            "order_id": record.order_id, "trade_date": order["trade_date"], "symbol": order["symbol"],
            "side": order["side"], "account": account, "quantity": _text(qty), "price": _text(price),
            "allocated_at": allocated_at, "executed_at": _text(executed_at),
            "intended": _text(accounts.get(account, {}).get("intended")),
            "order_quantity": _text(order["quantity"]), "order_filled": _text(document["filled"]),
            "allocated_by": allocated_by,
        }
        for name, value in accounts.get(account, {}).get("attributes", {}).items():
            row[f"attr.{name}"] = _text(value)
        rows.append(row)
    return rows


def _order_row(record: OrderRecord) -> dict[str, str]:
    entered = record.entered.data() if record.entered else {}
    order = entered.get("order") or (record.statement.data()["order"] if record.statement else {})
    policy = entered.get("policy", {})
    current = record.current_allocation
    allocation = current.data() if current else {}
    filled = sum((quantity(f["quantity"]) for f in record.effective_fills()), Decimal(0))
    latest = record.overrides[-1] if record.overrides else None
    return {
        "order_id": record.order_id, "trade_date": order.get("trade_date", ""),
        "symbol": order.get("symbol", ""), "side": order.get("side", ""),
        "quantity": _text(order.get("quantity")), "filled": _text(filled),
        "statement_recorded_at": record.statement.recorded_at if record.statement else "",
        "statement_recorded_by": record.statement.actor if record.statement else "",
        "entered_at": record.entered.recorded_at if record.entered else "",
        "entered_by": record.entered.actor if record.entered else "",
        "policy_id": policy.get("id", ""), "policy_version": _text(policy.get("version")),
        "policy_digest": policy.get("digest", ""),
        "allocated_at": current.recorded_at if current else "",
        "allocated_by": current.actor if current else "",
        "deadline": _text(allocation.get("deadline")), "late": _text(allocation.get("late")),
        "override_status": _status(record, latest)[0] if latest else "",
    }


def _replace(path: Path, write: Callable[[TextIO], object]) -> None:
    """Write ``path`` through a temporary file renamed into place: never a half-written file."""
    temporary = path.with_name(f".{path.name}.partial")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        write(handle)
    os.replace(temporary, path)


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> int:
    extra = sorted({key for row in rows for key in row} - set(columns))

    def write(handle: TextIO) -> None:
        writer = csv.DictWriter(handle, fieldnames=[*columns, *extra], restval="")
        writer.writeheader()
        writer.writerows({k: safe_cell(k, v) for k, v in row.items()} for row in rows)

    _replace(path, write)
    return len(rows)


def _write_jsonl(path: Path, items: list[Any]) -> int:
    def write(handle: TextIO) -> None:
        for item in items:
            handle.write(json.dumps(item, sort_keys=True, separators=(",", ":")) + "\n")

    _replace(path, write)
    return len(items)


def _event_json(event: Event) -> dict[str, Any]:
    return {"seq": event.seq, "recorded_at": event.recorded_at, "actor": event.actor,
            "kind": event.kind, "order_id": event.order_id, "key": event.key, "topic": event.topic,
            "payload": event.data(), "prev_hash": event.prev_hash, "hash": event.hash,
            "source": event.source, "service": event.service, "on_behalf_of": event.on_behalf_of}


def _orders(session: Session, trade_date: dt.date | None) -> list[OrderRecord]:
    ids: list[str] = []
    for event in session.query(kinds=["statement.recorded"]):
        if event.order_id is None:
            continue
        if trade_date is None or event.data()["order"]["trade_date"] == trade_date.isoformat():
            ids.append(event.order_id)
    return [order_record(session, order_id) for order_id in ids]


def export(ledger: Ledger, out: Path, trade_date: dt.date | None = None,
           key: SigningKey | None = None) -> ExportSummary:
    """Write the record set (of one trade date, or everything) into directory ``out``; with
    ``key``, also the signed checkpoint of the same snapshot of the ledger."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FileAccessError(Diagnostic("export-directory", f"cannot create {out}: {error.strerror}",
                                         Location(file=str(out)))) from error
    with ledger.read() as session:
        records = _orders(session, trade_date)
        head = session.head()
        signed = sign_snapshot(session, key)[1] if key is not None else None
        if trade_date is None:
            events = session.query()
        else:
            chosen = {r.order_id for r in records}
            events = [e for e in session.query() if e.order_id in chosen]
    allocations: list[dict[str, str]] = []
    overrides: list[dict[str, str]] = []
    fills: list[dict[str, str]] = []
    documents: list[dict[str, Any]] = []
    for record in records:
        allocations += _allocation_rows(record)
        engine_quantities: dict[str, Decimal] = {}
        replaced = {e.seq: e for e in record.allocations}
        for override in record.overrides:
            status, review = _status(record, override)
            data = override.data()
            if data["replaces"] in replaced:
                engine_quantities = {a["account"]: quantity(a["quantity"]) for a in
                                     replaced[data["replaces"]].data()["document"]["allocations"]}
            for line in data["allocations"]:
                if quantity(line["quantity"]) == engine_quantities.get(line["account"], Decimal(0)):
                    continue  # only the accounts the override moves are deviations
                overrides.append({
                    "order_id": record.order_id, "account": line["account"],
                    "recorded_at": override.recorded_at, "recorded_by": override.actor,
                    "reason_code": data["reason_code"], "memo": data["memo"], "status": status,
                    "reviewed_at": review.recorded_at if review else "",
                    "reviewed_by": review.actor if review else "",
                    "review_memo": review.data()["memo"] if review else "",
                })
        for fill_event in record.fills:
            data = fill_event.data()
            fill = data.get("fill", {})
            fills.append({
                "order_id": record.order_id, "fill_id": fill.get("id", data.get("id", "")),
                "quantity": _text(fill.get("quantity")), "price": _text(fill.get("price")),
                "executed_at": fill.get("executed_at", ""), "venue": fill.get("venue", ""),
                "recorded_at": fill_event.recorded_at, "recorded_by": fill_event.actor,
                "change": fill_event.kind.removeprefix("fill."),
                "refers_to": data.get("corrects", data.get("busts", "")),
            })
        for allocation in record.allocations:
            stored = allocation.data()
            documents.append({"order_id": record.order_id, "allocated_at": allocation.recorded_at,
                              "allocated_by": allocation.actor, "late": stored["late"],
                              "deadline": stored["deadline"], "document": stored["document"],
                              "event": allocation.seq, "reason": stored.get("reason"),
                              "replaces": stored.get("replaces")})
    try:
        files = {
            "allocations.csv": _write_csv(out / "allocations.csv", ALLOCATION_COLUMNS, allocations),
            "overrides.csv": _write_csv(out / "overrides.csv", OVERRIDE_COLUMNS, overrides),
            "fills.csv": _write_csv(out / "fills.csv", FILL_COLUMNS, fills),
            "orders.csv": _write_csv(out / "orders.csv", ORDER_COLUMNS, [_order_row(r) for r in records]),
            "allocations.jsonl": _write_jsonl(out / "allocations.jsonl", documents),
            "events.jsonl": _write_jsonl(out / "events.jsonl", [_event_json(e) for e in events]),
            "events.csv": _write_csv(out / "events.csv", EVENT_COLUMNS,
                                     [{k: _text(v) if k != "payload" else v
                                       for k, v in zip(EVENT_COLUMNS, _event_tuple(e), strict=True)}
                                      for e in events]),
        }
        anchor = {"seq": head.seq, "hash": head.hash, "recorded_at": head.recorded_at} if head else None
        _replace(out / "head.json",
                 lambda handle: handle.write(json.dumps({"head": anchor}, indent=2) + "\n"))
        if signed is not None:
            _replace(out / "checkpoint", lambda handle: handle.write(signed))
    except OSError as error:
        raise FileAccessError(Diagnostic("export-write", f"cannot write into {out}: {error.strerror}",
                                         Location(file=str(out)))) from error
    return ExportSummary(files, head)


def _event_tuple(event: Event) -> tuple[Any, ...]:
    return tuple(event)
