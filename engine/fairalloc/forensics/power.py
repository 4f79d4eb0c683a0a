"""Calibration and power studies: many simulated firm-years reviewed with the default threshold.

``python -m fairalloc.forensics.power --out docs`` reproduces the power curve of
``docs/forensics.md``: the share of simulated firm-years whose within-order first-day-return test
is flagged at p < alpha, against the cherry-picker's steering rate (the share of partly filled
orders he steers) and the number of partly filled orders in the year. It writes
``forensics-power.svg`` and prints a Markdown table. ``--bars`` prints the calibration and
detection bars instead (fair firm-years, round lots with a small account, half the partly
filled winners steered, the source document's scenario, an innocent group).
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from fairalloc.forensics import charts
from fairalloc.forensics.output import atomic_write_bytes
from fairalloc.forensics.review import ReviewConfig, run
from fairalloc.forensics.simulate import PERFORMANCE_FAVOURED, CherryPicker, FirmSpec, simulate

STATISTICAL = ("returns", "intent", "rotation", "overrides")
EMPLOYEE = "attr.employee"
PROPRIETARY = "attr.proprietary"


@dataclass(frozen=True, slots=True)
class YearResult:
    """What the review said about one simulated firm-year."""

    flagged: bool  # any statistical finding flagged
    flagged_ids: tuple[str, ...]
    p: dict[str, float]
    status: str


def review_year(
    spec: FirmSpec, draws: int, alpha: float = 0.001, seed: int = 1,
    favoured: str = PERFORMANCE_FAVOURED,
) -> YearResult:
    """Simulate one firm-year into a temporary folder and review it (by default for the
    performance-fee group)."""
    with tempfile.TemporaryDirectory() as folder:
        firm = simulate(spec, pathlib.Path(folder))
        review = run(
            ReviewConfig(
                allocations=firm.allocations, prices=firm.prices, overrides=firm.overrides,
                favoured=favoured, seed=seed, draws=draws, alpha=alpha,
            )
        )
    flagged = tuple(f.id for f in review.findings if f.flagged and f.analysis in STATISTICAL)
    verdict = review.document["verdict"]
    assert isinstance(verdict, dict)
    return YearResult(
        flagged=bool(flagged), flagged_ids=flagged,
        p={f.id: f.p_value for f in review.findings if f.p_value is not None},
        status=str(verdict["status"]),
    )


def scenario_spec(seed: int) -> FirmSpec:
    """The source document's scenario: 50 partly filled block orders over a year; the PM gives
    the performance-fee accounts the ones that rose by the close."""
    return FirmSpec(seed=seed, orders=50, partial_share=1.0, cherry=CherryPicker())


def half_steering_spec(seed: int) -> FirmSpec:
    """The default firm-year (250 orders, 30 % partly filled); the PM steers half of the partly
    filled orders: the winners to the performance-fee accounts, the losers away from them."""
    return FirmSpec(seed=seed, cherry=CherryPicker(rate=0.5))


def round_lot_spec(seed: int) -> FirmSpec:
    """A fair firm allocating pro rata in round lots of 100 with a small employee account."""
    return FirmSpec(seed=seed, lot=100, small_employee=True)


def innocent_spec(seed: int) -> FirmSpec:
    """A cherry-picker favouring the employee account; the review is pointed at the proprietary
    account, which did not benefit."""
    return FirmSpec(seed=seed, cherry=CherryPicker(favoured=EMPLOYEE))


def _rate(results: list[YearResult], predicate: Callable[[YearResult], bool]) -> str:
    hits = sum(bool(predicate(r)) for r in results)
    return f"{hits} of {len(results)} ({hits / len(results):.1%})"


def print_bars(years: int, draws: int, alpha: float) -> None:
    """Print the calibration and detection bars (seeds fixed per study)."""
    start, cpu = time.perf_counter(), time.process_time()

    def study(spec: Callable[[int], FirmSpec], favoured: str, seeds: int) -> list[YearResult]:
        return [review_year(spec(seeds + y), draws, alpha, favoured=favoured) for y in range(years)]

    fair = study(lambda s: FirmSpec(seed=s), PERFORMANCE_FAVOURED, 1_000)
    print(f"fair firm-years, performance-fee group: any statistical finding flagged "
          f"{_rate(fair, lambda r: r.flagged)}; verdict clean {_rate(fair, lambda r: r.status == 'clean')}")
    lots = study(round_lot_spec, EMPLOYEE, 2_000)
    print(f"fair round-lot firm-years, small employee account reviewed: flagged "
          f"{_rate(lots, lambda r: r.flagged)}; verdict clean {_rate(lots, lambda r: r.status == 'clean')}")
    scan = study(round_lot_spec, "each-account", 3_000)
    print(f"fair round-lot firm-years, each-account scan: flagged {_rate(scan, lambda r: r.flagged)}")
    half = study(half_steering_spec, PERFORMANCE_FAVOURED, 4_000)
    print(f"half of the partly filled orders steered: within-order test p < {alpha} on partly "
          f"filled orders {_rate(half, lambda r: r.p.get('returns.favoured.partial', 1.0) < alpha)}")
    source = study(scenario_spec, PERFORMANCE_FAVOURED, 5_000)
    print(f"source document's scenario: p < {alpha} "
          f"{_rate(source, lambda r: r.p.get('returns.favoured.partial', 1.0) < alpha)}")
    innocent = study(innocent_spec, PROPRIETARY, 6_000)
    print("innocent proprietary account (employee favoured): a return or intent finding "
          "flagged " + _rate(innocent, lambda r: any(i.startswith(("returns.", "intent."))
                                                       for i in r.flagged_ids)))
    print(f"({years} years per study, {draws:,} Monte Carlo draws per test, alpha {alpha}; "
          f"{time.perf_counter() - start:.0f} s wall, {time.process_time() - cpu:.0f} s CPU)")


def power_table(sizes: list[int], rates: list[float], years: int, draws: int,
                alpha: float) -> dict[int, list[float]]:
    """Share of years with the partly-filled within-order test at p < alpha (seeds 10000 + y)."""
    table: dict[int, list[float]] = {}
    for orders in sizes:
        base = FirmSpec(orders=orders, partial_share=1.0)
        row = []
        for rate in rates:
            cherry = CherryPicker(rate=rate) if rate > 0 else None
            results = [review_year(replace(base, seed=10_000 + y, cherry=cherry), draws, alpha)
                       for y in range(years)]
            row.append(float(np.mean([r.p.get("returns.favoured.partial", 1.0) < alpha
                                            for r in results])))
            print(f"partly filled orders={orders} rate={rate}: {row[-1]:.2f}", flush=True)
        table[orders] = row
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--years", type=int, default=100, help="simulated years per point")
    parser.add_argument("--draws", type=int, default=2000, help="Monte Carlo draws per test")
    parser.add_argument("--alpha", type=float, default=0.001)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("docs"))
    parser.add_argument("--bars", action="store_true",
                        help="print the calibration and detection bars instead of the curve")
    args = parser.parse_args(argv)
    if args.bars:
        print_bars(args.years, args.draws, args.alpha)
        return 0
    sizes = [10, 25, 50, 100]
    rates = [0.0, 0.1, 0.2, 0.3, 0.5, 1.0]
    start, cpu = time.perf_counter(), time.process_time()
    table = power_table(sizes, rates, args.years, args.draws, args.alpha)
    chart = charts.power_curve(rates, {f"{n} partly filled orders": table[n] for n in sizes},
                               args.alpha)
    atomic_write_bytes(args.out / "forensics-power.svg", chart.encode("utf-8"))
    print("| partly filled orders | " + " | ".join(f"rate {r:g}" for r in rates) + " |")
    print("|" + "---|" * (len(rates) + 1))
    for n in sizes:
        print(f"| {n} | " + " | ".join(f"{v:.2f}" for v in table[n]) + " |")
    print(f"({args.years} simulated years per cell, {args.draws:,} Monte Carlo draws per test; "
          f"{time.perf_counter() - start:.0f} s wall, {time.process_time() - cpu:.0f} s CPU)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
