"""The HTML report is one self-contained file: no scripts, no external resources."""

from __future__ import annotations

import pathlib
import re
from xml.etree import ElementTree

import fairalloc.forensics
from fairalloc.forensics.report_html import render
from fairalloc.forensics.review import ReviewConfig, run
from fairalloc.forensics.simulate import PERFORMANCE_FAVOURED, CherryPicker, FirmSpec, simulate


def test_report_is_self_contained(tmp_path: pathlib.Path) -> None:
    simulate(FirmSpec(seed=2, orders=100, cherry=CherryPicker()), tmp_path)
    review = run(ReviewConfig(tmp_path / "allocations.csv", tmp_path / "prices.csv",
                              tmp_path / "overrides.csv", favoured=PERFORMANCE_FAVOURED,
                              draws=500))
    page = render(review)
    assert "<script" not in page.lower()
    assert not re.search(r"(src|href)\s*=", page, re.IGNORECASE)
    assert not re.search(r"@import|url\(", page)
    urls = set(re.findall(r"https?://[^\"' ]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}
    svgs = re.findall(r"<svg.*?</svg>", page, re.DOTALL)
    assert len(svgs) >= 5
    for chart in svgs:
        ElementTree.fromstring(chart)  # well-formed XML
    assert "not proof of intent" in page
    assert render(review) == page  # deterministic


def test_demo_writes_report_and_findings(tmp_path: pathlib.Path) -> None:
    path = fairalloc.forensics.demo(tmp_path)
    assert path == tmp_path / "report.html" and path.exists()
    text = (tmp_path / "findings.json").read_text()
    assert '"flagged": true' in text
