"""The calibration and power bars.

The full studies (200 simulated firm-years each) take minutes on two cores, so they run only
when ``FAIRALLOC_CALIBRATION=1`` is set (also: ``python -m fairalloc.forensics.power --bars``).
The fast tests below hold the same bars on a few years each and still fail when the review
loses its calibration or its power.
"""

from __future__ import annotations

import os

import pytest

from fairalloc.forensics.power import (
    PROPRIETARY,
    EMPLOYEE,
    half_steering_spec,
    innocent_spec,
    review_year,
    round_lot_spec,
    scenario_spec,
)
from fairalloc.forensics.simulate import PERFORMANCE_FAVOURED, FirmSpec

DRAWS = 2000  # the bound 1/2001 is below the default alpha of 0.001
FULL = pytest.mark.skipif(os.environ.get("FAIRALLOC_CALIBRATION") != "1",
                          reason="set FAIRALLOC_CALIBRATION=1 for the 200-year studies")


def _partial_p(spec: FirmSpec, favoured: str = PERFORMANCE_FAVOURED) -> float:
    return review_year(spec, DRAWS, favoured=favoured).p.get("returns.favoured.partial", 1.0)


def test_a_few_fair_round_lot_years_are_clean() -> None:
    for seed in (2_000, 2_001):
        result = review_year(round_lot_spec(seed), DRAWS, favoured=EMPLOYEE)
        assert not result.flagged and result.status == "clean", result.flagged_ids


def test_half_steering_is_found_in_a_few_years() -> None:
    assert all(_partial_p(half_steering_spec(4_000 + y)) < 0.001 for y in range(3))


def test_innocent_group_in_a_few_years() -> None:
    for seed in (6_000, 6_001):
        result = review_year(innocent_spec(seed), DRAWS, favoured=PROPRIETARY)
        assert not [i for i in result.flagged_ids if i.startswith(("returns.", "intent."))]


@pytest.mark.slow
@FULL
def test_fair_firm_years_are_clean_in_99_percent() -> None:
    years = 200
    fair = [review_year(FirmSpec(seed=1_000 + y), DRAWS) for y in range(years)]
    assert sum(r.flagged for r in fair) <= years // 100
    assert sum(r.status == "clean" for r in fair) >= 0.99 * years
    lots = [review_year(round_lot_spec(2_000 + y), DRAWS, favoured=EMPLOYEE) for y in range(years)]
    assert sum(r.flagged for r in lots) <= years // 100


@pytest.mark.slow
@FULL
def test_steering_is_found() -> None:
    years = 200
    half = [_partial_p(half_steering_spec(4_000 + y)) for y in range(years)]
    assert sum(p < 0.001 for p in half) >= 0.90 * years
    source = [_partial_p(scenario_spec(5_000 + y)) for y in range(years)]
    assert sum(p < 0.001 for p in source) >= 0.99 * years


@pytest.mark.slow
@FULL
def test_an_innocent_group_is_never_flagged() -> None:
    for y in range(100):
        result = review_year(innocent_spec(6_000 + y), DRAWS, favoured=PROPRIETARY)
        assert not [i for i in result.flagged_ids if i.startswith(("returns.", "intent."))]
