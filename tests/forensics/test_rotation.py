"""Rotation: who was filled first in partly filled orders."""

from __future__ import annotations

import pathlib

from fairalloc.forensics.history import load
from fairalloc.forensics.returns import first_day
from fairalloc.forensics.rotation import leaders, rotation
from fairalloc.forensics.simulate import CherryPicker, FirmSpec, simulate
from tests.forensics.conftest import write_history

ROW = ("{o},2025-03-03,XYZ,buy,{a},{q},100.00,2025-03-03T10:05:00-05:00,"
       "2025-03-03T10:00:00-05:00,{i},2000,1000,pm,asset")


def test_leader_is_the_clearly_best_filled_account(tmp_path: pathlib.Path) -> None:
    rows = [ROW.format(o="B1", a="A", q=700, i=1000), ROW.format(o="B1", a="C", q=300, i=1000),
            ROW.format(o="B2", a="A", q=500, i=1000), ROW.format(o="B2", a="C", q=500, i=1000)]
    folder = write_history(tmp_path, rows, overrides=None)
    h = load(folder / "allocations.csv", folder / "prices.csv")
    leader, _ = leaders(h.allocations, first_day(h.allocations, h.closes))
    assert leader.tolist() == [0, -1]  # A led B1; B2 was split pro rata


def test_fair_rotation_flags_nobody_and_cherry_picker_leads(tmp_path: pathlib.Path) -> None:
    for cherry, expected in ((None, set()), (CherryPicker(), {"ACC-001", "ACC-002"})):
        firm = simulate(FirmSpec(seed=8, orders=150, cherry=cherry), tmp_path / str(bool(cherry)))
        h = load(firm.allocations, firm.prices)
        result = rotation(h.allocations, first_day(h.allocations, h.closes), 0.001)
        flagged = {r["account"] for r in result["accounts"] if r["flagged"]}  # type: ignore[attr-defined]
        assert flagged <= expected and (flagged or not expected)
