"""The HTML report: one self-contained file (inline CSS and SVG, no scripts, no network).

Sections follow the review's stages; each explains in plain words what was tested, under which
assumptions, and shows its chart. Text comes from the findings document, so the report and the
JSON never disagree. Long lists scroll inside their box and every list that is cut says
"N of M shown" (the findings file has them all).
"""

from __future__ import annotations

import html

from fairalloc.forensics import charts
from fairalloc.forensics.review import Review

#: Rows of one table shown in the HTML (the findings file lists them all).
HTML_ROWS = 1000

CSS = """
body{font-family:"DejaVu Sans",sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.3em 0;font-size:.88em}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3;position:sticky;top:0}td.n{text-align:right}
.scroll{max-height:24em;overflow:auto;border:1px solid #ddd;margin:.4em 0}
.flag{color:#fff;background:#c0392b;padding:0 .4em;border-radius:3px}
.untested{color:#222;background:#f1c40f;padding:0 .4em;border-radius:3px}
.info{color:#fff;background:#7f8c8d;padding:0 .4em;border-radius:3px}
.note{background:#fff8e1;border-left:4px solid #f1c40f;padding:.5em 1em}
.verdict{font-size:1.15em;padding:.6em 1em;border-radius:4px;border:1px solid #ccc}
.flagged{background:#fdecea}.clean{background:#eafaf1}.not_tested{background:#fff8e1}
.finding{border:1px solid #ddd;border-radius:4px;padding:.5em 1em;margin:.6em 0}
.muted{color:#666;font-size:.9em}svg{max-width:100%;height:auto}
"""

#: Human names of the columns of the report's tables.
COLUMNS = {
    "file": "File", "read": "Rows read", "used": "Rows used", "refused": "Rows refused",
    "reasons": "Why refused", "line": "Line", "column": "Column", "code": "Code",
    "message": "Problem", "group": "Group", "fill": "Fill", "rows": "Allocations",
    "mean_deviation_shares": "Mean departure (shares)",
    "mean_deviation_pct_of_fair": "Mean departure (% of share)",
    "rows_off_by_a_lot_or_more": "Off by a lot or more",
    "order_id": "Order", "account": "Account", "by": "Recorded by", "recorded_at": "Recorded at",
    "deadline": "Deadline", "minutes_after_deadline": "Minutes after deadline",
    "minutes_after_close": "Minutes after close", "severity": "Severity",
    "led_orders_taken_part": "Led orders taken part in", "leads": "Leads",
    "expected_leads": "Expected leads", "p_value": "p", "q_value": "q (FDR)",
    "flagged": "Flagged", "name": "Name", "count": "Records", "share": "Share",
    "scope": "Scope", "records": "Records", "records_in_scope": "Records in scope",
    "account_share_of_allocations": "Account's share of allocations", "expected": "Expected",
    "subset": "Orders", "orders": "Orders tested", "orders_reallocated": "Orders re-dealt",
    "allocations_group": "Group's allocations",
    "excess_shares_rising_orders": "Excess shares, rising orders",
    "excess_shares_other_orders": "Excess shares, other orders", "statistic": "Statistic (≈ money)",
    "allocations": "Allocations", "kind": "Record", "p_text": "p",
}

EXPLAIN = {
    "returns": (
        "First-day returns (the method of the SEC's economists), at full power. Each order's "
        "first-day return is the move from the price to the trade date's close, signed by side. "
        "The main test re-deals, within each order, the accounts' departures from their "
        "pro-rata share of the fill (the allocated quantities themselves where the pre-trade "
        "statement is missing) at random among the accounts that took part, many times, and "
        "asks how often chance alone gives the group a first-day gain at least as large. It is "
        "one-sided: a group that did not benefit is never flagged. Partly filled orders, where "
        "steering pays, are tested on their own. A second test asks which allocations the group "
        "received (mean return by re-labelling, winners by Fisher's exact test)."
    ),
    "intent": (
        "Allocation against intent. The fair quantity of an allocation is its pre-trade intended "
        "quantity scaled to the fill (pro rata). The table shows departures by group and fill; "
        "departures smaller than the order's lot are rounding. The test asks whether the group's "
        "own excess share lines up with how the order did by the close, by shuffling outcomes "
        "among orders. Assumption: the firm's policy is pro rata on partial fills."
    ),
    "timing": (
        "Timing, judged against the policy. Each allocation, override and memo is compared with "
        "the policy's deadline plus a grace period. Records after the close but within the "
        "policy are counted and shown; records after the deadline within the grace are listed; "
        "records beyond it are late, and late allocations on orders that also carry a memo "
        "recorded after the close are the most serious. Only late records count against the "
        "firm. Timestamps are as exported: back-dated records cannot be seen by this test."
    ),
    "rotation": (
        "Rotation. In a partly filled order an account leads when it received more than its "
        "exact pro-rata share by at least the order's lot and the order's highest fill ratio, so "
        "rounding a round-lot split is never a lead. With equal turns each participant of a led "
        "order is equally likely to lead; the number of leads is then Poisson-binomial and its "
        "exact tail is the p-value, with false-discovery-rate control across accounts."
    ),
    "overrides": (
        "Overrides and memos: counts by account, person and reason code, and exact binomial "
        "tests of whether they concentrate on an account beyond its share of the allocations "
        "(overall, within each person's records, within each reason code; false-discovery-rate "
        "control across all of them)."
    ),
}

VERDICT = {
    "flagged": "Flagged: at least one finding calls for a look at the records.",
    "clean": "Clean: every test ran and none was flagged.",
    "not_tested": "Not a clean result: nothing was flagged, but at least one test could not "
                  "run (listed below).",
}


def _e(value: object) -> str:
    """Escaped cell text; floats to three significant digits, booleans as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def _table(rows: list[dict[str, object]], columns: list[str], what: str = "rows") -> str:
    """A table in a scrolling box; says "N of M shown" when it cuts the list."""
    shown = rows[:HTML_ROWS]
    head = "".join(f"<th>{_e(COLUMNS.get(c, c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(
            f"<td class='n'>{_e(row.get(c, ''))}</td>"
            if isinstance(row.get(c), int | float) and not isinstance(row.get(c), bool)
            else f"<td>{_e(row.get(c, ''))}</td>"
            for c in columns
        ) + "</tr>"
        for row in shown
    )
    note = (f"<p class='muted'>{len(shown):,} of {len(rows):,} {what} shown; all are in "
            "findings.json.</p>" if len(shown) < len(rows) else "")
    return f"<div class='scroll'><table><tr>{head}</tr>{body}</table></div>{note}"


def _p_text(row: dict[str, object]) -> str:
    """p of a Monte Carlo comparison, with ≤ where it is a bound."""
    mc = row.get("monte_carlo")
    bound = isinstance(mc, dict) and bool(mc.get("p_is_upper_bound"))
    return f"{'≤ ' if bound else ''}{float(str(row['p_value'])):.3g}"


def _finding(finding: dict[str, object]) -> str:
    if not finding["tested"]:
        badge = "<span class='untested'>NOT TESTED</span> "
    elif finding["flagged"]:
        badge = "<span class='flag'>FLAG</span> "
    elif finding.get("severity") == "info":
        badge = "<span class='info'>INFO</span> "
    else:
        badge = ""
    p = finding["p_value"]
    sign = "≤" if finding.get("p_value_is_upper_bound") else "="
    stats = "" if p is None else f" · p {sign} {float(str(p)):.3g}"
    if finding["q_value"] is not None:
        stats += f" · q = {float(str(finding['q_value'])):.3g}"
    if finding.get("severity"):
        stats += f" · severity {_e(finding['severity'])}"
    method = finding.get("method") or {}
    assert isinstance(method, dict)
    details = ""
    if method:
        items = "".join(
            f"<li><b>{_e(str(k).replace('_', ' '))}:</b> "
            + (_e("; ".join(str(x) for x in v)) if isinstance(v, list) else _e(v)) + "</li>"
            for k, v in method.items()
        )
        details = f"<details><summary>Method</summary><ul>{items}</ul></details>"
    return (f"<div class='finding'><b>{finding['rank']}. {badge}{_e(finding['title'])}</b>"
            f"<span class='muted'>{stats}</span><p>{_e(finding['statement'])}</p>{details}</div>")


def render(review: Review) -> str:
    """The complete HTML document of a review."""
    doc = review.document
    chart = review.charts
    settings, inputs, analyses, verdict = (doc["settings"], doc["inputs"], doc["analyses"],
                                           doc["verdict"])
    assert isinstance(settings, dict) and isinstance(inputs, dict)
    assert isinstance(analyses, dict) and isinstance(verdict, dict)
    findings = doc["findings"]
    assert isinstance(findings, list)
    group = chart.group_label or "favoured group"
    deadline = settings["deadline"]
    assert isinstance(deadline, dict)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>fairalloc forensic review</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Forensic review of allocations</h1>",
        f"<p class='verdict {verdict['status']}'>{_e(VERDICT[str(verdict['status'])])} "
        f"<span class='muted'>(exit status {verdict['exit_code']})</span></p>",
        "<p class='note'>Statistics are evidence of a pattern, not proof of intent. A flagged "
        "finding is a reason to look at the records and ask for explanations.</p>",
        f"<p class='muted'>Favoured group: <code>{_e(settings['favoured'])}</code> · seed "
        f"{_e(settings['seed'])} · Monte Carlo draws {_e(settings['draws'])} · alpha "
        f"{_e(settings['alpha'])} · market {_e(settings['market_timezone'])}, close "
        f"{_e(settings['market_close'])} · deadline: {_e(deadline['source'])}, grace "
        f"{_e(settings['grace_minutes'])} minutes</p>",
        "<h2>Inputs</h2>",
        _table(
            [{**f, "reasons": "; ".join(f"{k} ×{v}" for k, v in f["reasons"].items()) or "—"}
             for f in inputs["files"]],
            ["file", "read", "used", "refused", "reasons"], "files",
        ),
        f"<p>{_e(inputs['allocations_without_close'])} allocations have no closing price and are "
        "left out of the return tests.</p>",
    ]
    refusals = [r for f in inputs["files"] for r in f["refusals"]]
    refused = sum(int(f["refused"]) for f in inputs["files"])
    if refusals:
        parts.append(f"<p>Refused rows: {len(refusals):,} of {refused:,} shown (the first 50 of "
                     "each file).</p>")
        parts.append(_table(refusals, ["file", "line", "column", "code", "message"]))
    flagged = sum(bool(f["flagged"]) for f in findings)
    parts.append(f"<h2>Findings, ranked</h2><p>{flagged} of {len(findings)} findings flagged.</p>")
    parts += [_finding(f) for f in findings]
    parts += _returns_section(review, group)
    parts += _intent_section(review, group)
    parts += _timing_section(review, group)
    parts += _rotation_section(review)
    parts += _overrides_section(review)
    parts.append("<p class='muted'>Generated by fairalloc review. Same inputs and seed give the "
                 "same findings and the same report, byte for byte.</p></body></html>")
    return "\n".join(parts)


def _returns_section(review: Review, group: str) -> list[str]:
    chart = review.charts
    returns = review.document["analyses"]["returns"]  # type: ignore[index]
    parts = ["<h2>First-day returns</h2>", f"<p>{EXPLAIN['returns']}</p>",
             charts.return_histograms(chart.returns, group),
             charts.cumulative_advantage(chart.advantage_days, chart.advantage, chart.band_low,
                                         chart.band_high, chart.band_draws, group),
             "<p class='muted'>The red line is the group's first-day gain beyond its pro-rata "
             "share, summed over the year; the grey band is where 99 % of the random within-order "
             "re-allocations stay. A fair year wanders inside the band.</p>"]
    columns = ["subset", "orders", "orders_reallocated", "allocations_group",
               "excess_shares_rising_orders", "excess_shares_other_orders", "statistic",
               "p_text"]
    if returns.get("mode") == "each-account":
        parts.append(_table(returns.get("accounts", []),
                            ["account", "subset", "allocations", "statistic", "p_value",
                             "q_value"], "tests"))
    else:
        rows = [{**c, "p_text": _p_text(c)} for c in returns.get("comparisons", [])
                if c.get("tested")]
        parts.append(_table(rows, columns, "comparisons"))
    return parts


def _intent_section(review: Review, group: str) -> list[str]:
    chart = review.charts
    analysis = review.document["analyses"].get("intent", {})  # type: ignore[attr-defined]
    parts = ["<h2>Allocation against intent</h2>", f"<p>{EXPLAIN['intent']}</p>"]
    if not analysis.get("deviation"):
        return [*parts, f"<p>{_e(analysis.get('reason', 'not tested'))}</p>"]
    parts.append(_table(analysis["deviation"],
                        ["group", "fill", "rows", "mean_deviation_shares",
                         "mean_deviation_pct_of_fair", "rows_off_by_a_lot_or_more"]))
    parts.append(charts.intent_scatter(chart.fair, chart.allocated, chart.fair_favoured,
                                       chart.fair_partial, group))
    return parts


def _timing_section(review: Review, group: str) -> list[str]:
    chart = review.charts
    timing = review.document["analyses"].get("timing", {})  # type: ignore[attr-defined]
    parts = ["<h2>Timing</h2>", f"<p>{EXPLAIN['timing']}</p>",
             charts.timing_histogram(chart.minutes, chart.deadline_minutes, group)]
    record_columns = ["order_id", "account", "by", "recorded_at", "deadline",
                      "minutes_after_deadline", "minutes_after_close", "severity"]
    for kind in ("allocations", "overrides"):
        listing = timing.get(kind)
        if not listing:
            continue
        counts = listing["counts"]
        parts.append(f"<h3>{_e(kind.capitalize())}</h3>")
        parts.append(_table([{"severity": k.replace("_", " "), "count": v}
                             for k, v in counts.items()], ["severity", "count"], "severities"))
        after = listing["after_deadline"]
        parts.append(f"<p><b>After the deadline:</b> {len(after):,} records.</p>")
        if after:
            parts.append(_table(after, record_columns, "records"))
        within = listing["after_close_within_policy"]
        parts.append(f"<p><b>After the close, within the policy:</b> {within['count']:,} "
                     f"records; {within['shown']:,} of {within['count']:,} shown.</p>")
        if within["listed"]:
            parts.append(_table(within["listed"], record_columns, "records"))
    return parts


def _rotation_section(review: Review) -> list[str]:
    rows = review.charts.rotation
    analysis = review.document["analyses"].get("rotation", {})  # type: ignore[attr-defined]
    parts = ["<h2>Rotation</h2>", f"<p>{EXPLAIN['rotation']}</p>"]
    if not rows:
        return [*parts, f"<p>{_e(analysis.get('reason', 'no led orders'))}</p>"]
    svg, shown = charts.rotation_bars(rows)
    parts.append(svg)
    parts.append(f"<p class='muted'>{shown:,} of {len(rows):,} accounts shown in the chart (those "
                 "furthest above their expected leads); all are in the table.</p>")
    parts.append(_table(rows, ["account", "led_orders_taken_part", "leads", "expected_leads",
                               "p_value", "q_value", "flagged"], "accounts"))
    return parts


def _overrides_section(review: Review) -> list[str]:
    overrides = review.document["analyses"].get("overrides")  # type: ignore[attr-defined]
    if not overrides:
        return []
    parts = ["<h2>Overrides and memos</h2>", f"<p>{EXPLAIN['overrides']}</p>"]
    for key, title in (("by_account", "By account"), ("by_person", "By person"),
                       ("by_reason_code", "By reason code")):
        parts.append(f"<h3>{title}</h3>")
        parts.append(_table(overrides[key], ["name", "count", "share"], "names"))
    parts.append("<h3>Concentration tests</h3>")
    tests = [t for t in overrides["tests"] if int(t["records"]) > 0]
    parts.append(f"<p class='muted'>{len(tests):,} tests with at least one record of "
                 f"{len(overrides['tests']):,} run.</p>")
    parts.append(_table(tests, ["scope", "name", "account", "records", "records_in_scope",
                                "account_share_of_allocations", "expected", "p_value",
                                "q_value", "flagged"], "tests"))
    return parts
