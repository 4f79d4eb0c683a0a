"""The terminal summary of a review: inputs read/used/refused, then findings ranked."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from fairalloc.forensics.review import Review

#: Refused rows printed on the terminal (the findings file lists up to 50 per input file).
LISTED = 5


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.2g}"


def print_summary(review: Review, console: Console) -> None:
    """Print the ranked findings table and the input accounting on ``console``."""
    doc = review.document
    inputs = doc["inputs"]
    assert isinstance(inputs, dict)
    files = Table(title="Inputs", title_justify="left")
    for column in ("file", "read", "used", "refused", "why refused"):
        files.add_column(column, justify="right" if column in ("read", "used", "refused") else "left")
    for entry in inputs["files"]:
        reasons = ", ".join(f"{k} ×{v}" for k, v in entry["reasons"].items()) or "—"
        files.add_row(entry["file"], f"{entry['read']:,}", f"{entry['used']:,}",
                      f"{entry['refused']:,}", reasons)
    console.print(files)
    refusals = [r for entry in inputs["files"] for r in entry["refusals"]]
    for refusal in refusals[:LISTED]:
        console.print(
            f"  refused {refusal['file']}:{refusal['line']}:{refusal['column']}: "
            f"[{refusal['code']}] {refusal['message']}",
            markup=False, highlight=False,
        )
    refused = sum(int(entry["refused"]) for entry in inputs["files"])
    if refused > LISTED:
        console.print(f"  … {refused:,} rows refused in all; the first 50 of each file are "
                      "listed in findings.json and the report")
    without = int(inputs["allocations_without_close"])
    if without:
        console.print(f"{without:,} allocations have no closing price and are left out of the "
                      "return tests.")
    config = review.config
    console.print(
        f"favoured: {config.favoured}   seed: {config.seed}   Monte Carlo draws: {config.draws:,}"
        f"   alpha: {config.alpha:g}"
    )
    table = Table(title="Findings, ranked", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("flag")
    table.add_column("finding")
    table.add_column("status")
    table.add_column("p", justify="right")
    table.add_column("q (FDR)", justify="right")
    for i, finding in enumerate(review.findings, start=1):
        status = ("not tested" if not finding.tested
                  else finding.severity if finding.severity else "")
        p = _p(finding.p_value)
        table.add_row(
            str(i),
            "[bold red]FLAG[/]" if finding.flagged else "",
            finding.title,
            status,
            f"≤ {p}" if finding.p_value_is_upper_bound else p,
            _p(finding.q_value),
        )
    console.print(table)
    flagged = sum(f.flagged for f in review.findings)
    verdict = review.document["verdict"]
    assert isinstance(verdict, dict)
    words = {"flagged": "flagged", "clean": "clean: every test ran, none flagged",
             "not_tested": "NOT a clean result: a test could not run"}[str(verdict["status"])]
    console.print(
        f"{flagged} of {len(review.findings)} findings flagged; verdict {words}. Findings "
        "describe statistical patterns and control gaps; they are evidence to look into, not "
        "proof of intent."
    )
