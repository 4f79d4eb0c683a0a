"""Export hygiene: no cell a spreadsheet would run, no name that hides what it holds."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fairalloc.ledger import workflow
from fairalloc.ledger.export import export, safe_cell
from fairalloc.ledger.store import Ledger

from .helpers import publish, record_through_fills, staff, trade_doc, who

_RUNS_AS_FORMULA = ("=", "+", "-", "@", "\t", "\r")


@given(st.text(max_size=40))
def test_no_text_cell_starts_like_a_formula(text: str) -> None:
    cell = safe_cell("memo", text)
    is_number = cell.lstrip("-").replace(".", "", 1).isdigit() and cell.isascii()
    assert not cell.startswith(_RUNS_AS_FORMULA) or is_number
    assert cell in (text, "'" + text)  # shown as text, its content unchanged


def test_numbers_are_left_as_numbers() -> None:
    assert safe_cell("quantity", "-1500") == "-1500" and safe_cell("price", "99.95") == "99.95"
    assert safe_cell("memo", "-1500 moved") == "'-1500 moved"


def test_memos_and_names_in_the_export(tmp_path: Path) -> None:
    with Ledger(f"sqlite:///{tmp_path / 'l.db'}") as ledger:
        staff(ledger)
        publish(ledger)
        doc = record_through_fills(ledger, trade_doc())
        order_id = doc["order"]["id"]
        workflow.allocate_order(ledger, who(ledger, "tom"), order_id)
        moved = {"CLIENT-A": Decimal(14900), "CLIENT-B": Decimal(6000), "CLIENT-C": Decimal(3100),
                 "PROPRIETARY": Decimal(6000)}
        workflow.request_override(ledger, who(ledger, "tom"), order_id, moved, "ODD-LOT-CLEANUP",
                                  '=HYPERLINK("http://evil.example","click")')
        workflow.review_override(ledger, who(ledger, "cole"), order_id, False, "@SUM(A1:A9)")
        export(ledger, tmp_path / "out")
    with (tmp_path / "out" / "overrides.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {r["memo"] for r in rows} == {"'=HYPERLINK(\"http://evil.example\",\"click\")"}
    assert {r["review_memo"] for r in rows} == {"'@SUM(A1:A9)"}
    for name in (tmp_path / "out").glob("*.csv"):
        for row in csv.reader(name.open()):
            assert not any(cell.startswith(_RUNS_AS_FORMULA[:1] + _RUNS_AS_FORMULA[3:]) for cell in row), name


def test_a_name_with_a_control_character_is_shown_escaped() -> None:
    assert safe_cell("account", "CLIENT-A\u200b") == "'CLIENT-A\\u200b'"
    assert safe_cell("recorded_by", "tom\x1b[2J") == "'tom\\u001b[2J'"
    assert safe_cell("account", "CLIENT-A") == "CLIENT-A"
