"""The review end to end: deterministic JSON, stated methods, direction, could-not-test."""

from __future__ import annotations

import json
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairalloc.forensics.findings import SCHEMA, dumps
from fairalloc.forensics.power import review_year
from fairalloc.forensics.review import ReviewConfig, run
from fairalloc.forensics.simulate import PERFORMANCE_FAVOURED, CherryPicker, FirmSpec, simulate


@pytest.fixture(scope="module")
def biased(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("biased")
    simulate(FirmSpec(seed=3, orders=150, cherry=CherryPicker()), folder)
    return folder


def _config(folder: pathlib.Path, **kw: object) -> ReviewConfig:
    return ReviewConfig(folder / "allocations.csv", folder / "prices.csv",
                        folder / "overrides.csv", **kw)  # type: ignore[arg-type]


def test_same_inputs_and_seed_give_identical_json(biased: pathlib.Path) -> None:
    a = dumps(run(_config(biased, favoured=PERFORMANCE_FAVOURED, draws=3000, seed=9)).document)
    b = dumps(run(_config(biased, favoured=PERFORMANCE_FAVOURED, draws=3000, seed=9)).document)
    assert a == b
    doc = json.loads(a)
    assert doc["schema"] == SCHEMA == "fairalloc.forensics.findings/2"
    assert doc["settings"]["seed"] == 9
    assert [f["rank"] for f in doc["findings"]] == list(range(1, len(doc["findings"]) + 1))


def test_every_statistical_finding_states_its_method(biased: pathlib.Path) -> None:
    review = run(_config(biased, favoured=PERFORMANCE_FAVOURED, draws=2000))
    for finding in review.findings:
        if finding.p_value is None:
            continue
        assert {"test", "null_hypothesis", "assumptions", "p_value"} <= set(finding.method)
    partial = next(f for f in review.findings if f.id == "returns.favoured.partial")
    # No draw of 2,000 as extreme: the p-value is the bound 1/2001, said as such.
    assert partial.flagged and partial.p_value_is_upper_bound
    assert partial.p_value == 1 / 2001
    assert "p ≤ 0.0005" in partial.statement and "not proof of intent" in partial.statement
    for finding in review.findings:
        assert "fraud" not in finding.statement.lower()


def test_cherry_picker_is_flagged_in_plain_words(biased: pathlib.Path) -> None:
    review = run(_config(biased, favoured=PERFORMANCE_FAVOURED, draws=2000))
    flagged = {f.id for f in review.findings if f.flagged}
    assert {"returns.favoured.partial", "intent.excess_on_winners",
            "timing.allocations.late", "overrides.concentration"} <= flagged
    assert review.exit_code == 1


def test_an_innocent_group_is_not_blamed(tmp_path: pathlib.Path) -> None:
    simulate(FirmSpec(seed=12, cherry=CherryPicker(favoured="attr.employee")), tmp_path)
    innocent = run(_config(tmp_path, favoured="attr.proprietary", draws=2000))
    blamed = [f.id for f in innocent.findings
              if f.flagged and f.analysis in ("returns", "intent")]
    assert blamed == []
    guilty = run(_config(tmp_path, favoured="attr.employee", draws=2000))
    assert {f.id for f in guilty.findings if f.flagged} >= {"returns.favoured.all"}


def test_each_account_scan_controls_fdr(biased: pathlib.Path) -> None:
    review = run(_config(biased, draws=20_000))
    scan = review.document["analyses"]["returns"]  # type: ignore[index]
    assert scan["mode"] == "each-account" and "Benjamini" in scan["multiple_testing"]
    flagged_accounts = {f.id.split(".")[2] for f in review.findings
                        if f.flagged and f.id.startswith("returns.account.")}
    assert flagged_accounts <= {"ACC-001", "ACC-002"} and flagged_accounts


def test_a_group_matching_nobody_is_not_tested_not_clean(biased: pathlib.Path) -> None:
    review = run(_config(biased, favoured='attr.fee_basis == "none"', draws=200))
    untested = [f for f in review.findings if not f.tested]
    assert untested and untested[0].id == "returns.favoured.all"
    assert "matches no account" in untested[0].statement
    verdict = review.document["verdict"]
    assert verdict["status"] == "flagged"  # type: ignore[index]  # the timing gap remains
    assert "returns.favoured.all" in verdict["not_tested"]  # type: ignore[index]


def test_fair_firm_is_clean(tmp_path: pathlib.Path) -> None:
    simulate(FirmSpec(seed=21, orders=200), tmp_path)
    for favoured in (PERFORMANCE_FAVOURED, "each-account"):
        review = run(_config(tmp_path, favoured=favoured, draws=2000))
        assert [f.id for f in review.findings if f.flagged] == []
        assert review.exit_code == 0


def test_inputs_are_accounted_for(biased: pathlib.Path) -> None:
    doc = run(_config(biased, favoured=PERFORMANCE_FAVOURED, draws=0)).document
    files = doc["inputs"]["files"]  # type: ignore[index]
    assert all(f["read"] == f["used"] + f["refused"] for f in files)


@settings(max_examples=4, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.booleans())
def test_fair_simulations_yield_no_statistical_flags(seed: int, lots: bool) -> None:
    spec = FirmSpec(seed=seed, orders=120, lot=100 if lots else 1, small_employee=lots)
    result = review_year(spec, draws=500, favoured="attr.employee" if lots else PERFORMANCE_FAVOURED)
    assert not result.flagged, result.flagged_ids
    assert result.status == "clean"


def test_no_closing_price_at_all_is_not_a_clean_bill(tmp_path: pathlib.Path) -> None:
    simulate(FirmSpec(seed=4, orders=60), tmp_path)
    (tmp_path / "prices.csv").write_text("symbol,date,close\nNOPE,2025-01-02,1.00\n")
    review = run(_config(tmp_path, favoured=PERFORMANCE_FAVOURED, draws=200))
    assert review.exit_code == 8
    untested = {f.id for f in review.findings if not f.tested}
    assert "returns.favoured.all" in untested
    assert not any(f.flagged for f in review.findings)
