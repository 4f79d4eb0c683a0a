"""The review end to end: deterministic JSON, honest wording, scans with FDR control."""

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
    assert doc["schema"] == SCHEMA and doc["settings"]["seed"] == 9
    assert [f["rank"] for f in doc["findings"]] == list(range(1, len(doc["findings"]) + 1))


def test_cherry_picker_is_flagged_in_plain_words(biased: pathlib.Path) -> None:
    review = run(_config(biased, favoured=PERFORMANCE_FAVOURED, draws=2000))
    flagged = {f.id for f in review.findings if f.flagged}
    assert {"returns.favoured.partial", "intent.excess_on_winners",
            "timing.allocations.after_close", "timing.overrides.after_close"} <= flagged
    partial = next(f for f in review.findings if f.id == "returns.favoured.partial")
    assert partial.p_value is not None and partial.p_value < 1e-6
    assert partial.evidence["monte_carlo"]["draws"] == 2000  # type: ignore[index]
    for finding in review.findings:
        text = finding.statement.lower()
        assert "fraud" not in text
        if finding.p_value is not None:
            assert "not proof of intent" in text


def test_each_account_scan_controls_fdr(biased: pathlib.Path) -> None:
    review = run(_config(biased, draws=1000))
    scan = review.document["analyses"]["returns"]  # type: ignore[index]
    assert scan["mode"] == "each-account" and "Benjamini" in scan["multiple_testing"]
    top = review.findings[0]
    assert top.q_value is not None or top.analysis != "returns"
    flagged_accounts = {f.id.split(".")[2] for f in review.findings
                        if f.flagged and f.id.startswith("returns.account.")}
    assert flagged_accounts <= {"ACC-001", "ACC-002"} and flagged_accounts


def test_fair_firm_raises_no_flag(tmp_path: pathlib.Path) -> None:
    simulate(FirmSpec(seed=21, orders=200), tmp_path)
    for favoured in (PERFORMANCE_FAVOURED, "each-account"):
        review = run(_config(tmp_path, favoured=favoured, draws=2000))
        assert [f.id for f in review.findings if f.flagged] == []


def test_inputs_are_accounted_for(biased: pathlib.Path) -> None:
    doc = run(_config(biased, favoured=PERFORMANCE_FAVOURED, draws=0)).document
    files = doc["inputs"]["files"]  # type: ignore[index]
    assert all(f["read"] == f["used"] + f["refused"] for f in files)


@settings(max_examples=6, deadline=None, derandomize=True)
@given(st.integers(0, 10_000))
def test_fair_simulations_yield_no_statistical_flags(seed: int) -> None:
    result = review_year(FirmSpec(seed=seed, orders=120), draws=500)
    assert not result.flagged, result.flagged_ids
