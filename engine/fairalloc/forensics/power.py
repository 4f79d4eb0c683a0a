"""Power and false-positive studies: many simulated firm-years reviewed with the default threshold.

``python -m fairalloc.forensics.power`` reproduces the power curves of ``docs/forensics.md``: the
share of simulated firm-years flagged against the cherry-picker's rate (share of partly filled
orders he cherry-picks) and, separately, his strength (how far from pro rata he moves), for
several numbers of orders. It writes ``forensics-power.svg`` and
``forensics-power-strength.svg`` and prints Markdown tables. ``--bars`` prints the
false-positive and detection figures instead.
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Callable
import tempfile
from dataclasses import dataclass, replace

import numpy as np

from fairalloc.forensics import svg
from fairalloc.forensics.groups import EACH_ACCOUNT
from fairalloc.forensics.output import atomic_write_bytes
from fairalloc.forensics.review import ReviewConfig, run
from fairalloc.forensics.simulate import PERFORMANCE_FAVOURED, CherryPicker, FirmSpec, simulate

STATISTICAL = ("returns", "intent", "rotation", "overrides")
#: The strength curve's cherry-picker acts on this share of partly filled orders.
STRENGTH_STUDY_RATE = 0.2


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


def power_chart(title: str, xlabel: str, levels: list[float], sizes: list[int],
                table: dict[int, list[float]]) -> str:
    """A power curve: detection rate against a bias level, one line per number of orders."""
    return svg.lines(
        title, np.array(levels),
        [(f"{n} partly filled orders", np.array(table[n])) for n in sizes],
        xlabel, "detection rate", zero_line=False, legend_bottom=True,
    )


def power_table(
    sizes: list[int], levels: list[float], cherry: Callable[[float], CherryPicker | None],
    years: int, draws: int, label: str,
) -> dict[int, list[float]]:
    """Detection rate per number of partly filled orders and bias level (seeds 10000 + year)."""
    table: dict[int, list[float]] = {}
    for orders in sizes:
        base = FirmSpec(orders=orders, partial_share=1.0)
        row = []
        for level in levels:
            specs = [replace(base, seed=10_000 + y, cherry=cherry(level)) for y in range(years)]
            row.append(detection_rate(specs, draws))
            print(f"orders={orders} {label}={level}: {row[-1]:.2f}", flush=True)
        table[orders] = row
    return table


def print_table(label: str, levels: list[float], sizes: list[int],
                table: dict[int, list[float]]) -> None:
    """The table as Markdown."""
    print("| orders | " + " | ".join(f"{label} {v:g}" for v in levels) + " |")
    print("|" + "---|" * (len(levels) + 1))
    for n in sizes:
        print(f"| {n} | " + " | ".join(f"{v:.2f}" for v in table[n]) + " |")


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
    sizes = [25, 50, 100]
    rates = [0.0, 0.1, 0.2, 0.3, 0.5, 1.0]
    by_rate = power_table(sizes, rates, lambda r: CherryPicker(rate=r) if r > 0 else None,
                          args.years, args.draws, "rate")
    strengths = [0.0, 0.05, 0.1, 0.25, 0.5, 1.0]
    by_strength = power_table(
        sizes, strengths,
        lambda s: CherryPicker(rate=STRENGTH_STUDY_RATE, strength=s) if s > 0 else None,
        args.years, args.draws, "strength",
    )
    charts = {
        "forensics-power.svg": power_chart(
            "Share of simulated firm-years flagged (alpha 0.001)",
            "share of partly filled orders cherry-picked (strength 1)", rates, sizes, by_rate),
        "forensics-power-strength.svg": power_chart(
            "Share of simulated firm-years flagged (alpha 0.001)",
            "strength: how far from pro rata (one partly filled order in five)", strengths,
            sizes,
            by_strength),
    }
    for name, chart in charts.items():
        atomic_write_bytes(args.out / name, chart.encode("utf-8"))
    print_table("rate", rates, sizes, by_rate)
    print_table("strength", strengths, sizes, by_strength)
    print(f"({args.years} simulated years per cell, {args.draws} Monte Carlo draws per test)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
