"""Power and false-positive studies: many simulated firm-years reviewed with the default threshold.

``python -m engine.forensics.power`` reproduces the power curve of ``docs/forensics.md``: the
share of simulated firm-years flagged, against the cherry-picker's rate (share of partly filled
orders he cherry-picks) and the number of orders, plus the false-positive rate on fair years.
It writes ``forensics-power.svg`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
from dataclasses import dataclass, replace

import numpy as np

from engine.forensics import svg
from engine.forensics.groups import EACH_ACCOUNT
from engine.forensics.output import atomic_write_bytes
from engine.forensics.review import ReviewConfig, run
from engine.forensics.simulate import PERFORMANCE_FAVOURED, CherryPicker, FirmSpec, simulate

STATISTICAL = ("returns", "intent", "rotation", "overrides")


@dataclass(frozen=True, slots=True)
class YearResult:
    """What the review said about one simulated firm-year."""

    flagged: bool  # any statistical finding flagged
    flagged_ids: tuple[str, ...]
    p_returns_partial: float
    p_returns_all: float


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
    flagged = tuple(
        f.id for f in review.findings if f.flagged and f.analysis in STATISTICAL
    )
    p = {f.id: f.p_value for f in review.findings}
    return YearResult(
        flagged=bool(flagged),
        flagged_ids=flagged,
        p_returns_partial=float(p.get("returns.favoured.partial") or 1.0),
        p_returns_all=float(p.get("returns.favoured.all") or 1.0),
    )


def scenario_spec(seed: int) -> FirmSpec:
    """The source document's scenario: 50 partly filled block orders over a year; the PM gives
    the performance-fee accounts the ones that rose by the close."""
    return FirmSpec(seed=seed, orders=50, partial_share=1.0, cherry=CherryPicker())


def welhouse_spec(seed: int) -> FirmSpec:
    """A Welhouse-sized gap: volatile instruments (15–25 % a day), 100 partly filled orders, and a
    PM who gives the performance-fee accounts every order that rose by the close."""
    return FirmSpec(seed=seed, orders=100, partial_share=1.0, volatility=(0.15, 0.25),
                    cherry=CherryPicker())


def print_bars(years: int, draws: int) -> None:
    """Print the false-positive rate, the scenario's detection rate and a Welhouse-sized gap."""
    fair = [review_year(FirmSpec(seed=1_000 + y), draws) for y in range(years)]
    flagged = sum(r.flagged for r in fair)
    print(f"fair firm-years flagged: {flagged} of {years} ({flagged / years:.1%})")
    scans = [review_year(FirmSpec(seed=1_000 + y), draws, favoured=EACH_ACCOUNT)
             for y in range(years)]
    scan_flagged = sum(r.flagged for r in scans)
    print(f"fair firm-years flagged by the each-account scan: {scan_flagged} of {years} "
          f"({scan_flagged / years:.1%})")
    scenario = [review_year(scenario_spec(5_000 + y), draws) for y in range(years)]
    detected = sum(r.p_returns_partial < 0.001 for r in scenario)
    worst = max(r.p_returns_partial for r in scenario)
    median = float(np.median([r.p_returns_partial for r in scenario]))
    print(f"source scenario flagged at p < 0.001: {detected} of {years} "
          f"({detected / years:.1%}); median p {median:.2g}, largest p {worst:.2g}")
    with tempfile.TemporaryDirectory() as folder:
        firm = simulate(welhouse_spec(77), pathlib.Path(folder))
        review = run(ReviewConfig(allocations=firm.allocations, prices=firm.prices,
                                  overrides=firm.overrides, favoured=PERFORMANCE_FAVOURED,
                                  draws=draws))
    finding = next(f for f in review.findings if f.id == "returns.favoured.partial")
    evidence = finding.evidence
    print(f"Welhouse-sized gap: favoured {evidence['mean_return_favoured_bps']} bps vs rest "
          f"{evidence['mean_return_rest_bps']} bps, p = {finding.p_value:.2g} "
          f"(binomial on winners {evidence['p_binomial_wins']:.2g})")


def detection_rate(specs: list[FirmSpec], draws: int) -> float:
    """Share of the given firm-years with at least one statistical finding flagged."""
    return float(np.mean([review_year(s, draws).flagged for s in specs]))


def power_chart(rates: list[float], sizes: list[int], table: dict[int, list[float]]) -> str:
    """The power curve: detection rate against the share of orders cherry-picked, per size."""
    return svg.lines(
        "Share of simulated firm-years flagged (alpha 0.001)",
        np.array(rates),
        [(f"{n} partly filled orders", np.array(table[n])) for n in sizes],
        "share of partly filled orders cherry-picked", "detection rate", zero_line=False,
        legend_bottom=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--years", type=int, default=100, help="simulated years per point")
    parser.add_argument("--draws", type=int, default=2000, help="Monte Carlo draws per test")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("docs"))
    parser.add_argument("--bars", action="store_true",
                        help="print the false-positive and detection bars instead of the curve")
    args = parser.parse_args(argv)
    if args.bars:
        print_bars(args.years, args.draws)
        return 0
    rates = [0.0, 0.1, 0.2, 0.3, 0.5, 1.0]
    sizes = [25, 50, 100]
    table: dict[int, list[float]] = {}
    for orders in sizes:
        base = FirmSpec(orders=orders, partial_share=1.0)
        row = []
        for rate in rates:
            specs = [
                replace(base, seed=10_000 + y,
                        cherry=CherryPicker(rate=rate) if rate > 0 else None)
                for y in range(args.years)
            ]
            row.append(detection_rate(specs, args.draws))
            print(f"orders={orders} rate={rate}: {row[-1]:.2f}", flush=True)
        table[orders] = row
    chart = power_chart(rates, sizes, table)
    atomic_write_bytes(args.out / "forensics-power.svg", chart.encode("utf-8"))
    header = "| orders | " + " | ".join(f"rate {r:g}" for r in rates) + " |"
    print(header)
    print("|" + "---|" * (len(rates) + 1))
    for n in sizes:
        print(f"| {n} | " + " | ".join(f"{v:.2f}" for v in table[n]) + " |")
    print(f"({args.years} simulated years per cell, {args.draws} Monte Carlo draws per test)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
