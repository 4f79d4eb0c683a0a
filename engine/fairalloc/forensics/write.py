"""Writing a review's outputs: ``findings.json`` and ``report.html``, each all-or-nothing."""

from __future__ import annotations

import pathlib

from fairalloc.forensics.findings import dumps
from fairalloc.forensics.output import atomic_write_bytes
from fairalloc.forensics.report_html import render
from fairalloc.forensics.review import Review

FINDINGS_NAME = "findings.json"
REPORT_NAME = "report.html"


def write_outputs(review: Review, out_dir: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """Write the findings JSON and the HTML report into ``out_dir``; return their paths."""
    json_path = out_dir / FINDINGS_NAME
    html_path = out_dir / REPORT_NAME
    json_text = dumps(review.document)
    html_text = render(review)
    atomic_write_bytes(json_path, json_text.encode("utf-8"))
    atomic_write_bytes(html_path, html_text.encode("utf-8"))
    return json_path, html_path
