"""The simulator: deterministic, well-formed, pro rata when fair, biased only where told."""

from __future__ import annotations

import pathlib

import polars as pl

from fairalloc.forensics.history import load
from fairalloc.forensics.power import review_year
from fairalloc.forensics.review import ReviewConfig, run
from fairalloc.forensics.simulate import PERFORMANCE_FAVOURED, CherryPicker, FirmSpec, simulate


def test_same_seed_same_files(tmp_path: pathlib.Path) -> None:
    a = simulate(FirmSpec(seed=5, orders=40), tmp_path / "a")
    b = simulate(FirmSpec(seed=5, orders=40), tmp_path / "b")
    for name in ("allocations.csv", "prices.csv", "overrides.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert a.rows == b.rows


def test_fair_firm_is_pro_rata_and_reads_cleanly(tmp_path: pathlib.Path) -> None:
    firm = simulate(FirmSpec(seed=2, orders=80, partial_share=0.5), tmp_path)
    h = load(firm.allocations, firm.prices, firm.overrides)
    assert [t.refused for t in h.tallies] == [0, 0, 0]
    frame = pl.read_csv(firm.allocations)
    per_order = frame.group_by("order_id").agg(
        pl.col("quantity").sum(), pl.col("order_filled").first(),
        ((pl.col("quantity") - pl.col("intended") * pl.col("order_filled")
          / pl.col("order_quantity")).abs().max()).alias("worst"),
    )
    assert (per_order["quantity"] == per_order["order_filled"]).all()
    assert float(str(per_order["worst"].max())) < 1.0  # whole-share rounding only
    assert firm.biased_orders == []


def test_cherry_picker_only_touches_partial_fills(tmp_path: pathlib.Path) -> None:
    firm = simulate(FirmSpec(seed=4, orders=120, cherry=CherryPicker()), tmp_path)
    frame = pl.read_csv(firm.allocations)
    biased = frame.filter(pl.col("order_id").is_in(firm.biased_orders))
    assert firm.biased_orders
    assert (biased["order_filled"] < biased["order_quantity"]).all()
    per_order = frame.group_by("order_id").agg(pl.col("quantity").sum(),
                                               pl.col("order_filled").first())
    assert (per_order["quantity"] == per_order["order_filled"]).all()


def test_backdating_hides_the_timing_but_not_the_pattern(tmp_path: pathlib.Path) -> None:
    spec = FirmSpec(seed=6, orders=150, cherry=CherryPicker(backdate=True))
    firm = simulate(spec, tmp_path)
    review = run(ReviewConfig(firm.allocations, firm.prices, firm.overrides,
                              favoured=PERFORMANCE_FAVOURED, draws=2000))
    flagged = {f.id for f in review.findings if f.flagged}
    assert not any(fid.startswith("timing.") for fid in flagged)
    assert "returns.favoured.partial" in flagged
    assert review_year(spec, 2000).flagged


def test_round_lots_split_pro_rata_in_whole_lots(tmp_path: pathlib.Path) -> None:
    firm = simulate(FirmSpec(seed=5, orders=80, partial_share=0.5, lot=100, small_employee=True),
                    tmp_path)
    frame = pl.read_csv(firm.allocations)
    assert (frame["quantity"] % 100 == 0).all()
    per_order = frame.group_by("order_id").agg(
        pl.col("quantity").sum(), pl.col("order_filled").first(),
        ((pl.col("quantity") - pl.col("intended") * pl.col("order_filled")
          / pl.col("order_quantity")).abs().max()).alias("worst"),
    )
    assert (per_order["quantity"] == per_order["order_filled"]).all()
    assert float(str(per_order["worst"].max())) < 100.0  # rounding within one lot
    employee = frame.filter(pl.col("attr.employee").cast(pl.String) == "true")
    assert employee["intended"].max() <= 200
