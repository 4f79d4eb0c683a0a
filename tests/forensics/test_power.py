"""The bars: false positives on fair firm-years, power on the source document's scenario,
and a Welhouse-sized gap. Full 200-year runs with a reduced Monte Carlo draw count (1,000 draws;
the headline p falls back to the exact-moment normal approximation beyond the Monte Carlo's
resolution, and the exact binomial test needs no draws)."""

from __future__ import annotations

from fairalloc.forensics.power import review_year, scenario_spec, welhouse_spec
from fairalloc.forensics.simulate import FirmSpec

YEARS = 200
DRAWS = 1000


def test_fair_firm_years_are_rarely_flagged() -> None:
    results = [review_year(FirmSpec(seed=1_000 + y), DRAWS) for y in range(YEARS)]
    flagged = [r.flagged_ids for r in results if r.flagged]
    assert len(flagged) <= YEARS // 100, flagged  # ≤ 1 %


def test_source_scenario_is_flagged_below_one_in_a_thousand() -> None:
    results = [review_year(scenario_spec(5_000 + y), DRAWS) for y in range(YEARS)]
    detected = sum(r.p_returns_partial < 0.001 for r in results)
    assert detected >= 0.95 * YEARS


def test_welhouse_sized_gap_is_below_one_in_a_million() -> None:
    # Volatile instruments (15–25 % a day) and a PM who keeps every winner: the favoured
    # allocations' mean first-day return sits about ten points above the others', as in Welhouse
    # (+6.28 % against −5.05 %).
    result = review_year(welhouse_spec(77), DRAWS)
    assert result.p_returns_partial < 1e-6
