"""Writing a review's outputs: ``findings.json`` and ``report.html``, each all-or-nothing."""

from __future__ import annotations

import pathlib

from fairalloc.forensics.findings import json_pieces
from fairalloc.forensics.output import atomic_write_bytes, atomic_write_with
from fairalloc.forensics.report_html import render
from fairalloc.forensics.review import Review

FINDINGS_NAME = "findings.json"
REPORT_NAME = "report.html"


def write_outputs(review: Review, out_dir: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """Write the findings JSON and the HTML report into ``out_dir``; return their paths."""
    json_path = out_dir / FINDINGS_NAME
    html_path = out_dir / REPORT_NAME
    html_text = render(review)

    def write_json(temp: pathlib.Path) -> None:
        # In pieces: the listings of a large history run to hundreds of megabytes of text.
        with temp.open("wb") as handle:
            for piece in json_pieces(review.document):
                handle.write(piece.encode("utf-8"))

    atomic_write_with(json_path, write_json)
    atomic_write_bytes(html_path, html_text.encode("utf-8"))
    return json_path, html_path
