"""The HTML report: self-contained, byte-stable, complete, and readable in a real browser."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
from xml.etree import ElementTree

import numpy as np
import pytest
from PIL import Image

import fairalloc.forensics
from fairalloc.forensics.report_html import HTML_ROWS, render
from fairalloc.forensics.review import Review, ReviewConfig, run
from fairalloc.forensics.simulate import PERFORMANCE_FAVOURED, CherryPicker, FirmSpec, simulate


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory) -> Review:
    folder = tmp_path_factory.mktemp("report")
    simulate(FirmSpec(seed=2, orders=100, cherry=CherryPicker()), folder)
    return run(ReviewConfig(folder / "allocations.csv", folder / "prices.csv",
                            folder / "overrides.csv", favoured=PERFORMANCE_FAVOURED, draws=500))


def test_report_is_self_contained_and_byte_stable(review: Review) -> None:
    page = render(review)
    assert "<script" not in page.lower()
    # Only references inside the page (an SVG marker used twice): href="#id".
    assert not re.search(r"(src|href)\s*=\s*[\"'](?!#)", page, re.IGNORECASE)
    assert not re.search(r"@import|url\((?!#)", page)  # clip paths: url(#id)
    urls = set(re.findall(r"https?://[^\"' )]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    svgs = re.findall(r"<svg.*?</svg>", page, re.DOTALL)
    assert len(svgs) >= 5
    for chart in svgs:
        ElementTree.fromstring(chart)  # well-formed XML
    assert "not proof of intent" in page
    assert render(review) == page  # byte-stable within a process
    ids = re.findall(r'id="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # charts do not clash


def test_every_late_record_is_listed_and_counts_are_shown(review: Review) -> None:
    timing = review.document["analyses"]["timing"]  # type: ignore[index]
    listing = timing["allocations"]
    late = listing["counts"]["late"] + listing["counts"]["late_with_memo"]
    assert late > 100  # more than the old cap of 100
    assert len(listing["after_deadline"]) == late + listing["counts"]["within_grace"]
    page = render(review)
    assert f"<b>After the deadline:</b> {len(listing['after_deadline']):,} records." in page
    assert "Minutes after deadline" in page and "mean_deviation_shares" not in page


def test_long_tables_say_how_many_they_show(review: Review) -> None:
    rows = [{"account": f"A{i}", "leads": i} for i in range(HTML_ROWS + 5)]
    from fairalloc.forensics.report_html import _table

    text = _table(rows, ["account", "leads"], "accounts")
    assert f"{HTML_ROWS:,} of {HTML_ROWS + 5:,} accounts shown" in text


def test_demo_writes_report_and_findings(tmp_path: pathlib.Path) -> None:
    path = fairalloc.forensics.demo(tmp_path)
    assert path == tmp_path / "report.html" and path.exists()
    doc = json.loads((tmp_path / "findings.json").read_text())
    assert doc["verdict"]["status"] == "flagged" and doc["verdict"]["exit_code"] == 1


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs a headless chromium (apt-get install chromium)")
def test_report_renders_in_a_headless_browser(review: Review, tmp_path: pathlib.Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(review), encoding="utf-8")
    shot = tmp_path / "shot.png"
    assert CHROMIUM is not None
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--screenshot={shot}", "--window-size=1280,9000", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int64)
    assert pixels.shape[:2] == (9000, 1280)
    # The findings' red FLAG badges and the charts' red and blue are drawn, not a blank page.
    red = (pixels[..., 0] > 170) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)
    blue = pixels[..., 2] - pixels[..., 0] > 50  # the charts' blue, also when half transparent
    assert red.sum() > 2000 and blue.sum() > 2000
