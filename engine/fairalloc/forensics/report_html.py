"""The HTML report: one self-contained file (inline CSS and SVG, no scripts, no network).

Sections follow the review's stages; each explains in plain words what was tested, under which
assumptions, and shows its chart. Text comes from the findings document, so the report and the
JSON never disagree.
"""

from __future__ import annotations

import html

import numpy as np

from fairalloc.forensics import svg
from fairalloc.forensics.review import Review

CSS = """
body{font-family:sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}.flag{color:#fff;background:#c0392b;padding:0 .4em;border-radius:3px}
.note{background:#fff8e1;border-left:4px solid #f1c40f;padding:.5em 1em}
.finding{border:1px solid #ddd;border-radius:4px;padding:.5em 1em;margin:.6em 0}
.muted{color:#666;font-size:.9em}svg{max-width:100%;height:auto}
"""

EXPLAIN = {
    "returns": (
        "First-day return test (the method of the SEC's economists). Each allocation's return is "
        "the move from the account's price to the trade date's close, signed by side. The test "
        "compares the favoured accounts' allocations with those of the other accounts that traded "
        "in the same orders: the difference in mean return and in the share of winning "
        "allocations. The Monte Carlo re-allocation shuffles which allocations went to which "
        "group, keeping the group sizes, and counts how often chance alone does as well for the "
        "favoured group; its p-value is (k + 1) / (N + 1), so it can never fall below 1 / (N + 1). "
        "The normal approximation to the same re-allocation distribution (exact mean and "
        "variance) and an exact binomial test on winners reach further into the tail. "
        "Assumptions: without favouritism, which allocation went to which account is unrelated "
        "to how it did by the close; allocations are compared as separate units although the "
        "accounts in one order share its price move, so when several favoured accounts always "
        "trade together the p-value can look smaller than it should."
    ),
    "intent": (
        "Allocation against intent. The fair quantity of an allocation is its pre-trade intended "
        "quantity scaled to the fill (pro rata). The table shows deviations by group and by fill; "
        "the test asks whether the favoured group's excess share of the fill lines up with how "
        "the order did by the close, by shuffling order returns among orders. Assumption: the "
        "firm's policy is pro rata on partial fills; other documented policies will show as "
        "deviations and should be read with the overrides."
    ),
    "timing": (
        "Timing. Allocations, overrides and memos recorded after the trade date's close, or on a "
        "later day, were recorded when the price move was known; each is listed with who recorded "
        "it and how late. Records more than the grace period after the last fill are listed "
        "separately. Assumption: timestamps are as exported; back-dated records cannot be seen "
        "by this test."
    ),
    "rotation": (
        "Rotation. In a partly filled order the account whose fill ratio is clearly the highest "
        "led. With equal turns, each participant of a led order is equally likely to lead; "
        "accounts leading far more often are flagged with false-discovery-rate control across "
        "accounts. Orders split pro rata have no leader."
    ),
    "overrides": (
        "Overrides and memos: counts by account, person and reason code, the favoured group's "
        "share of them, and the first-day returns of the overridden allocations against the "
        "rest (same re-allocation test as above)."
    ),
}


def _e(value: object) -> str:
    """Escaped cell text; floats to three significant digits, booleans as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    return html.escape(str(value))


def _table(rows: list[dict[str, object]], columns: list[str]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(row.get(c, ''))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render(review: Review) -> str:
    """The complete HTML document of a review."""
    doc = review.document
    charts = review.charts
    settings = doc["settings"]
    inputs = doc["inputs"]
    analyses = doc["analyses"]
    assert isinstance(settings, dict) and isinstance(inputs, dict) and isinstance(analyses, dict)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>fairalloc forensic review</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Forensic review of allocations</h1>",
        "<p class='note'>Statistics are evidence of a pattern, not proof of intent. A flagged "
        "finding is a reason to look at the records and ask for explanations.</p>",
        f"<p class='muted'>favoured group: <code>{_e(settings['favoured'])}</code> · seed "
        f"{_e(settings['seed'])} · Monte Carlo draws {_e(settings['draws'])} · alpha "
        f"{_e(settings['alpha'])} · market {_e(settings['market_timezone'])} close "
        f"{_e(settings['market_close'])}</p>",
        "<h2>Inputs</h2>",
        _table(
            [
                {**f, "reasons": "; ".join(f"{k} ×{v}" for k, v in f["reasons"].items()) or "—"}
                for f in inputs["files"]
            ],
            ["file", "read", "used", "refused", "reasons"],
        ),
        f"<p>{_e(inputs['allocations_without_close'])} allocations have no closing price and are "
        "left out of the return tests.</p>",
    ]
    refusals = [r for f in inputs["files"] for r in f["refusals"]]
    if refusals:
        parts.append("<p>First refused rows:</p>")
        parts.append(_table(refusals[:50], ["file", "line", "column", "code", "message"]))
    parts.append("<h2>Findings, ranked</h2>")
    for finding in doc["findings"]:  # type: ignore[attr-defined]
        badge = "<span class='flag'>FLAG</span> " if finding["flagged"] else ""
        p = "" if finding["p_value"] is None else f" · p = {finding['p_value']:.3g}"
        q = "" if finding["q_value"] is None else f" · q = {finding['q_value']:.3g}"
        parts.append(
            f"<div class='finding'><b>{finding['rank']}. {badge}{_e(finding['title'])}</b>"
            f"<span class='muted'>{p}{q}</span><p>{_e(finding['statement'])}</p></div>"
        )
    parts += ["<h2>First-day returns</h2>", f"<p>{EXPLAIN['returns']}</p>"]
    parts.append(
        svg.histogram(
            "First-day return by group (bps)",
            [(charts.group_label or "favoured", charts.returns_favoured * 1e4),
             ("other accounts", charts.returns_rest * 1e4)],
            "first-day return (basis points)",
        )
    )
    x = np.arange(charts.advantage_bps.size, dtype=np.float64)
    parts.append(
        svg.lines(
            "Cumulative excess first-day return of the favoured group",
            x, [("", charts.advantage_bps)], "trade date",
            "bps above same-day others, summed", x_names=charts.advantage_days,
        )
    )
    parts += ["<h2>Allocation against intent</h2>", f"<p>{EXPLAIN['intent']}</p>"]
    intent = analyses.get("intent", {})
    parts.append(
        _table(intent.get("deviation", []),
               ["group", "fill", "rows", "mean_deviation_shares", "mean_deviation_pct_of_fair",
                "rows_off_by_a_share_or_more"])
    )
    parts.append(
        svg.scatter("Allocated against fair (pro-rata) quantity", charts.fair, charts.allocated,
                    charts.fair_favoured, "fair quantity", "allocated quantity",
                    (charts.group_label or "favoured", "other accounts"))
    )
    parts += ["<h2>Timing</h2>", f"<p>{EXPLAIN['timing']}</p>"]
    delays = charts.delays
    parts.append(
        svg.histogram("Minutes from last fill to allocation record",
                      [(charts.group_label or "favoured", delays[charts.delays_favoured]),
                       ("other accounts", delays[~charts.delays_favoured])],
                      "minutes after the last fill")
    )
    timing = analyses.get("timing", {})
    for kind in ("allocations", "overrides"):
        listing = timing.get(kind)
        if not listing:
            continue
        for category in ("later_day", "after_close", "after_last_fill"):
            entry = listing[category]
            parts.append(f"<p><b>{_e(kind)}, {_e(category.replace('_', ' '))}:</b> "
                         f"{entry['count']} records</p>")
            if entry["listed"]:
                parts.append(_table(entry["listed"][:25],
                                    ["order_id", "account", "by", "minutes_late"]))
    parts += ["<h2>Rotation</h2>", f"<p>{EXPLAIN['rotation']}</p>"]
    rows = charts.rotation
    parts.append(
        svg.bars("Leads in partly filled orders", [str(r["account"]) for r in rows],
                 np.array([float(str(r["leads"])) for r in rows]),
                 np.array([float(str(r["expected_leads"])) for r in rows]), "orders led")
    )
    parts.append(_table(rows, ["account", "led_orders_taken_part", "leads", "expected_leads",
                               "p_value", "q_value", "flagged"]))
    overrides = analyses.get("overrides")
    if overrides:
        parts += ["<h2>Overrides and memos</h2>", f"<p>{EXPLAIN['overrides']}</p>"]
        for key in ("by_account", "by_person", "by_reason_code"):
            parts.append(f"<p><b>{_e(key.replace('_', ' '))}</b></p>")
            parts.append(_table(overrides[key][:15], ["name", "count", "share"]))
    parts.append("<p class='muted'>Generated by fairalloc review. Same inputs and seed give the "
                 "same findings.</p></body></html>")
    return "\n".join(parts)
