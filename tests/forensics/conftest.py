"""Shared helpers for the forensic review tests: tiny hand-written histories and a CLI runner."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest

import fairalloc.cli

HEADER = (
    "order_id,trade_date,symbol,side,account,quantity,price,allocated_at,executed_at,intended,"
    "order_quantity,order_filled,allocated_by,attr.fee_basis\n"
)
ROWS = [
    "B1,2025-03-03,XYZ,buy,A,600,100.00,2025-03-03T10:05:00-05:00,2025-03-03T10:00:00-05:00,"
    "1000,2000,1200,pm,performance",
    "B1,2025-03-03,XYZ,buy,C,600,100.00,2025-03-03T10:05:00-05:00,2025-03-03T10:00:00-05:00,"
    "1000,2000,1200,pm,asset",
    "B2,2025-03-04,XYZ,sell,A,500,102.50,2025-03-04T17:30:00-05:00,2025-03-04T11:00:00-05:00,"
    "500,1000,1000,pm,performance",
    "B2,2025-03-04,XYZ,sell,C,500,102.50,2025-03-05T09:00:00-05:00,2025-03-04T11:00:00-05:00,"
    "500,1000,1000,ops,asset",
]
PRICES = "symbol,date,close\nXYZ,2025-03-03,101.00\nXYZ,2025-03-04,101.25\n"
OVERRIDES = (
    "order_id,account,recorded_at,recorded_by,reason_code,memo\n"
    'B1,A,2025-03-03T18:00:00-05:00,pm,MKT_COND,"market\nconditions"\n'
    "B2,C,2025-03-04T10:00:00-05:00,ops,CASH,insufficient cash\n"
)


def write_history(folder: pathlib.Path, rows: list[str] | None = None,
                  prices: str = PRICES, overrides: str | None = OVERRIDES) -> pathlib.Path:
    """Write a tiny history into ``folder`` and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "allocations.csv").write_text(HEADER + "\n".join(rows or ROWS) + "\n")
    (folder / "prices.csv").write_text(prices)
    if overrides is not None:
        (folder / "overrides.csv").write_text(overrides)
    return folder


@pytest.fixture
def history(tmp_path: pathlib.Path) -> pathlib.Path:
    return write_history(tmp_path / "history")


@pytest.fixture
def cli() -> Callable[[list[str]], int]:
    """Run ``fairalloc`` in this process, as a user would from a shell."""
    return fairalloc.cli.main
