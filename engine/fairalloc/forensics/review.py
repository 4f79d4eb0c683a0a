"""The forensic review pipeline: history → returns → intent → timing → rotation → overrides.

:func:`run` reads the history files (stage ``history``), computes first-day returns (``returns``),
runs each analysis and turns its results into ranked :class:`~fairalloc.forensics.findings.Finding`
records plus the full analysis details, the findings document and the data the HTML charts need.
Everything random draws from one ``numpy.random.Generator`` seeded by ``ReviewConfig.seed``, in a
fixed order, so the same inputs and seed give the same document.
"""

from __future__ import annotations

import datetime as dt
import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from fairalloc.errors import Diagnostic, InputError, Location
from fairalloc.forensics import groups, history, intent, overrides, rotation, timing
from fairalloc.forensics.findings import Finding, document, rank
from fairalloc.forensics.returns import (
    FirstDay,
    exact_sum,
    first_day,
    money_text,
    peers,
    pool_of,
)
from fairalloc.forensics.tests_stats import (
    DEFAULT_WORK_BUDGET,
    ReallocationResult,
    benjamini_hochberg,
    binomial_upper_tail,
    normal_upper_tail,
    reallocation_test,
)

F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]
STAGES = ("read history", "first-day returns", "return tests", "intent", "timing", "rotation",
          "overrides")
NOT_PROOF = "a statistical pattern, not proof of intent"


@dataclass(frozen=True, slots=True)
class ReviewConfig:
    """What to review and how. Defaults are the documented ones."""

    allocations: pathlib.Path
    prices: pathlib.Path
    overrides: pathlib.Path | None = None
    favoured: str = groups.EACH_ACCOUNT
    seed: int = 1
    draws: int = 100_000
    alpha: float = 0.001
    strict: bool = False
    market_timezone: str = "America/New_York"
    market_close: str = "16:00"
    grace_minutes: int = 30
    work_budget: int = DEFAULT_WORK_BUDGET


@dataclass
class ChartData:
    """Arrays the HTML report draws (statistics, not money)."""

    group_label: str = ""
    returns_favoured: F64 = field(default_factory=lambda: np.zeros(0))
    returns_rest: F64 = field(default_factory=lambda: np.zeros(0))
    advantage_days: list[str] = field(default_factory=list)
    advantage_bps: F64 = field(default_factory=lambda: np.zeros(0))
    fair: F64 = field(default_factory=lambda: np.zeros(0))
    allocated: F64 = field(default_factory=lambda: np.zeros(0))
    fair_favoured: Bool = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    delays: F64 = field(default_factory=lambda: np.zeros(0))
    delays_favoured: Bool = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    rotation: list[dict[str, object]] = field(default_factory=list)


@dataclass
class Review:
    """Result of :func:`run`: ranked findings, the findings document and chart data."""

    config: ReviewConfig
    findings: list[Finding]
    document: dict[str, object]
    charts: ChartData


def _market(config: ReviewConfig) -> timing.Market:
    try:
        tz = ZoneInfo(config.market_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            Diagnostic(
                "forensics.bad_timezone",
                f"unknown time zone {config.market_timezone!r}",
                Location(file="--market-timezone"),
                "use an IANA name such as America/New_York or Europe/London",
            )
        ) from None
    try:
        close = dt.time.fromisoformat(config.market_close)
    except ValueError:
        raise InputError(
            Diagnostic(
                "forensics.bad_close_time",
                f"market close {config.market_close!r} is not a time HH:MM",
                Location(file="--market-close"),
            )
        ) from None
    return timing.Market(tz, close, config.grace_minutes)


def _bps(value: float) -> str:
    return f"{value * 1e4:+.1f} bps"


def _p_text(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-300 else "< 1e-300"


def _combined(result: ReallocationResult) -> float:
    """Headline p of a return comparison: two statistics, Bonferroni-combined."""
    return min(1.0, 2.0 * min(result.p_value, result.p_binomial_wins))


def _money(
    first: FirstDay, allocations: history.Allocations, rows: Bool
) -> tuple[dict[str, str], int]:
    """Exact first-day money outcome and notional of a set of rows (text), and the scaled notional."""
    notional = exact_sum(allocations.quantity[rows] * allocations.price[rows])
    return {
        "first_day_pnl": money_text(exact_sum(first.money[rows]), first.scale),
        "notional": money_text(notional, allocations.price_scale),
    }, notional


def _comparison(
    label: str,
    allocations: history.Allocations,
    first: FirstDay,
    favoured_rows: Bool,
    pool_rows: Bool,
    config: ReviewConfig,
    rng: np.random.Generator,
) -> tuple[dict[str, object], ReallocationResult | None]:
    """Return test of favoured rows against the rest of the pool; details for the JSON."""
    rows = pool_rows & first.has_close
    result = reallocation_test(
        first.returns[rows], favoured_rows[rows], config.draws, rng, config.work_budget
    )
    if result is None:
        return {"subset": label, "tested": False, "reason": "one of the groups is empty"}, None
    fav_money, notional = _money(first, allocations, rows & favoured_rows)
    rest_money, _ = _money(first, allocations, rows & ~favoured_rows)
    difference = result.mean_favoured - result.mean_rest
    advantage = round(difference * notional / 10**allocations.price_scale, 2)
    details: dict[str, object] = {
        "subset": label,
        "tested": True,
        "allocations_favoured": result.n_favoured,
        "allocations_rest": result.n_rest,
        "mean_return_favoured_bps": round(result.mean_favoured * 1e4, 3),
        "mean_return_rest_bps": round(result.mean_rest * 1e4, 3),
        "difference_bps": round(difference * 1e4, 3),
        "win_share_favoured": round(result.win_share_favoured, 4),
        "win_share_rest": round(result.win_share_rest, 4),
        "favoured": fav_money,
        "favoured_first_day_pnl": fav_money["first_day_pnl"],
        "rest": rest_money,
        "advantage_money_estimate": f"{advantage:.2f}",
        "monte_carlo": {
            "draws": result.draws,
            "draws_requested": config.draws,
            "as_extreme_mean": result.hits_mean,
            "as_extreme_wins": result.hits_wins,
            "p_mean": result.p_mc_mean,
            "p_wins": result.p_mc_wins,
        },
        "z_mean": round(result.z_mean, 4),
        "p_normal_mean": result.p_normal_mean,
        "p_binomial_wins": result.p_binomial_wins,
        "p_mean": result.p_value,
        "p_value": _combined(result),
    }
    return details, result


def _comparison_finding(
    fid: str, who: str, details: dict[str, object], result: ReallocationResult,
    config: ReviewConfig, q: float | None = None,
) -> Finding:
    p = _combined(result)
    decisive = q if q is not None else p
    subset = "partly filled orders" if details["subset"] == "partial" else "all orders"
    statement = (
        f"On {subset}, allocations to {who} averaged a first-day return of "
        f"{_bps(result.mean_favoured)} against {_bps(result.mean_rest)} for the other accounts "
        f"trading alongside them; {result.win_share_favoured:.0%} of theirs were winners against "
        f"{result.win_share_rest:.0%}. Favoured first-day result "
        f"{details['favoured_first_day_pnl']} (advantage ≈ {details['advantage_money_estimate']} at the difference in mean return). "
        f"If allocations were unrelated to outcomes, a pattern at least this strong would arise "
        f"with probability {_p_text(p)} ({result.draws:,} Monte Carlo re-allocations, seed "
        f"{config.seed}; normal approximation {_p_text(result.p_normal_mean)}; exact binomial on "
        f"winners {_p_text(result.p_binomial_wins)}). This is {NOT_PROOF}."
    )
    return Finding(
        id=fid,
        analysis="returns",
        title=f"First-day returns: {who} vs the rest ({subset})",
        statement=statement,
        flagged=decisive <= config.alpha,
        p_value=p,
        q_value=q,
        evidence=details,
    )


def _scan_accounts(
    allocations: history.Allocations, first: FirstDay, peer_matrix: Bool, config: ReviewConfig,
    rng: np.random.Generator,
) -> tuple[list[Finding], dict[str, object], int]:
    """Each account against its peers, all orders and partly filled orders; BH over all tests."""
    accounts = len(allocations.accounts)
    tests: list[tuple[int, str, float, float, float, int, int]] = []
    for subset, mask in (("all", first.has_close), ("partial", first.has_close & first.partial)):
        account = allocations.account[mask]
        values = first.returns[mask]
        count = np.bincount(account, minlength=accounts).astype(np.float64)
        total = np.bincount(account, weights=values, minlength=accounts)
        squares = np.bincount(account, weights=values * values, minlength=accounts)
        wins = np.bincount(account, weights=values > 0, minlength=accounts)
        for a in range(accounts):
            own = np.zeros(accounts, dtype=np.bool_)
            own[a] = True
            pool = pool_of(own, peer_matrix)
            n = float(count[pool].sum())
            m = float(count[a])
            if m == 0 or m == n:
                continue
            s_pool, q_pool, w_pool = float(total[pool].sum()), float(squares[pool].sum()), float(
                wins[pool].sum()
            )
            mean_f = total[a] / m
            mean_r = (s_pool - total[a]) / (n - m)
            variance = (q_pool - s_pool * s_pool / n) / (n - 1) * (1 / m + 1 / (n - m))
            p_normal = (
                normal_upper_tail((mean_f - mean_r) / np.sqrt(variance)) if variance > 0 else 1.0
            )
            p0 = (w_pool - wins[a]) / (n - m)
            p_binom = binomial_upper_tail(int(wins[a]), int(m), float(p0))
            tests.append(
                (a, subset, min(1.0, 2 * min(p_normal, p_binom)), float(mean_f), float(mean_r),
                 int(m), int(n - m))
            )
    p = np.array([t[2] for t in tests], dtype=np.float64)
    q = benjamini_hochberg(p)
    table = [
        {
            "account": allocations.accounts[t[0]],
            "subset": t[1],
            "allocations": t[5],
            "mean_return_bps": round(t[3] * 1e4, 3),
            "mean_return_peers_bps": round(t[4] * 1e4, 3),
            "p_value": t[2],
            "q_value": float(q[i]),
        }
        for i, t in enumerate(tests)
    ]
    order = sorted(range(len(tests)), key=lambda i: (q[i], p[i], tests[i][0], tests[i][1]))
    findings: list[Finding] = []
    best = tests[order[0]][0] if order else -1
    for i in order[:5]:
        a, subset = tests[i][0], tests[i][1]
        favoured_rows = allocations.account == a
        own = np.zeros(accounts, dtype=np.bool_)
        own[a] = True
        pool_rows = pool_of(own, peer_matrix)[allocations.account]
        if subset == "partial":
            pool_rows = pool_rows & first.partial
        details, result = _comparison(subset, allocations, first, favoured_rows, pool_rows, config, rng)
        if result is None:
            continue
        details["q_value_scan"] = float(q[i])
        findings.append(
            _comparison_finding(
                f"returns.account.{allocations.accounts[a]}.{subset}",
                f"account {allocations.accounts[a]}", details, result, config, float(q[i]),
            )
        )
    scan = {
        "mode": "each-account",
        "tests": len(tests),
        "multiple_testing": "Benjamini–Hochberg false discovery rate control over all "
        "account × subset tests; flagged where q <= alpha",
        "accounts": sorted(table, key=lambda r: (r["q_value"], r["account"], r["subset"])),
    }
    return findings, scan, best


def run(config: ReviewConfig, advance: Callable[[str], None] | None = None) -> Review:
    """Run the whole review. ``advance(stage)`` is called as each stage finishes (progress bar)."""
    step = advance or (lambda _stage: None)
    market = _market(config)
    hist = history.load(config.allocations, config.prices, config.overrides, config.strict)
    allocations = hist.allocations
    step(STAGES[0])
    first = first_day(allocations, hist.closes)
    peer_matrix = peers(allocations.order, allocations.account, len(allocations.accounts))
    step(STAGES[1])
    rng = np.random.default_rng(config.seed)
    analyses: dict[str, object] = {}
    charts = ChartData()
    findings, fav_accounts, who = _return_stage(analyses, allocations, first, peer_matrix,
                                                config, rng)
    favoured_rows = fav_accounts[allocations.account]
    _return_charts(charts, who, allocations, first, favoured_rows)
    step(STAGES[2])
    findings += _intent(analyses, charts, who, allocations, first, favoured_rows, config, rng)
    step(STAGES[3])
    findings += _timing(analyses, charts, hist, market, favoured_rows)
    step(STAGES[4])
    findings += _rotation(analyses, charts, allocations, first, config.alpha)
    step(STAGES[5])
    if hist.overrides is not None:
        findings += _overrides(analyses, hist.overrides, allocations, first, fav_accounts, who,
                               config, rng)
    step(STAGES[6])
    ranked = rank(findings)
    doc = document(_settings(config), _inputs(hist, first), ranked, analyses)
    return Review(config, ranked, doc, charts)


def _return_stage(
    analyses: dict[str, object], allocations: history.Allocations, first: FirstDay,
    peer_matrix: Bool, config: ReviewConfig, rng: np.random.Generator,
) -> tuple[list[Finding], Bool, str]:
    """Return tests: the favoured group (all and partly filled orders) or the each-account scan.

    Returns the findings, the accounts the later stages treat as favoured (in a scan, the account
    ranked first) and how the statements name them.
    """
    accounts = len(allocations.accounts)
    if config.favoured.strip() == groups.EACH_ACCOUNT:
        findings, scan, best = _scan_accounts(allocations, first, peer_matrix, config, rng)
        analyses["returns"] = scan
        fav_accounts = np.zeros(accounts, dtype=np.bool_)
        if best >= 0:
            fav_accounts[best] = True
        return findings, fav_accounts, (
            f"account {allocations.accounts[best]}" if best >= 0 else "no account"
        )
    fav_accounts = np.array(
        groups.favoured_accounts(config.favoured, allocations.attributes, accounts),
        dtype=np.bool_,
    )
    who = f"the favoured group ({config.favoured})"
    pool_rows = pool_of(fav_accounts, peer_matrix)[allocations.account]
    favoured_rows = fav_accounts[allocations.account]
    findings = []
    comparisons = []
    for subset, rows in (("all", pool_rows), ("partial", pool_rows & first.partial)):
        details, result = _comparison(subset, allocations, first, favoured_rows, rows, config, rng)
        comparisons.append(details)
        if result is not None:
            findings.append(
                _comparison_finding(f"returns.favoured.{subset}", who, details, result, config)
            )
    analyses["returns"] = {
        "mode": "favoured-group",
        "favoured_accounts": [
            a for a, f in zip(allocations.accounts, fav_accounts, strict=True) if f
        ],
        "comparisons": comparisons,
    }
    return findings, fav_accounts, who


def _rotation(
    analyses: dict[str, object], charts: ChartData, allocations: history.Allocations,
    first: FirstDay, alpha: float,
) -> list[Finding]:
    """Rotation balance per account; one finding per account flagged after FDR control."""
    result = rotation.rotation(allocations, first, alpha)
    analyses["rotation"] = result
    charts.rotation = list(result["accounts"])  # type: ignore[call-overload]
    findings = []
    for row in charts.rotation:
        if not row["flagged"]:
            continue
        p, q = float(str(row["p_value"])), float(str(row["q_value"]))
        findings.append(
            Finding(
                id=f"rotation.{row['account']}",
                analysis="rotation",
                title=f"Rotation: account {row['account']} led partly filled orders often",
                statement=(
                    f"Account {row['account']} was filled first in {row['leads']} partly "
                    f"filled orders where equal turns would give about "
                    f"{row['expected_leads']}; chance of at least this many leads "
                    f"{_p_text(p)} (false discovery rate controlled across accounts, "
                    f"q = {_p_text(q)}). This is {NOT_PROOF}."
                ),
                flagged=True,
                p_value=p,
                q_value=q,
                evidence=row,
            )
        )
    return findings


def _settings(config: ReviewConfig) -> dict[str, object]:
    """The settings block of the findings document."""
    return {
        "seed": config.seed,
        "draws": config.draws,
        "alpha": config.alpha,
        "favoured": config.favoured,
        "market_timezone": config.market_timezone,
        "market_close": config.market_close,
        "grace_minutes": config.grace_minutes,
        "work_budget": config.work_budget,
        "strict": config.strict,
    }


def _inputs(hist: history.History, first: FirstDay) -> dict[str, object]:
    """Rows read, used and refused per file (with the first refusals), and rows without a close."""
    return {
        "files": [
            {
                "file": t.file,
                "read": t.read,
                "used": t.used,
                "refused": t.refused,
                "reasons": dict(sorted(t.reasons.items())),
                "refusals": [d.to_json() for d in t.listed],
            }
            for t in hist.tallies
        ],
        "allocations_without_close": int((~first.has_close).sum()),
        "price_decimals": hist.allocations.price_scale,
    }


def _return_charts(
    charts: ChartData, who: str, allocations: history.Allocations, first: FirstDay,
    favoured_rows: Bool,
) -> None:
    """Return distributions and the favoured group's cumulative excess return by trade date."""
    rows = first.has_close
    charts.group_label = who
    charts.returns_favoured = first.returns[rows & favoured_rows]
    charts.returns_rest = first.returns[rows & ~favoured_rows]
    days, inverse = np.unique(allocations.trade_day[rows], return_inverse=True)
    fav = favoured_rows[rows]
    values = first.returns[rows]
    fav_sum = np.bincount(inverse, weights=np.where(fav, values, 0.0), minlength=days.size)
    rest_sum = np.bincount(inverse, weights=np.where(~fav, values, 0.0), minlength=days.size)
    fav_n = np.bincount(inverse, weights=fav, minlength=days.size)
    rest_n = np.bincount(inverse, weights=~fav, minlength=days.size)
    rest_mean = np.where(rest_n > 0, rest_sum / np.maximum(rest_n, 1), 0.0)
    # Each favoured allocation's return above the other accounts' mean on the same day, summed.
    advantage = np.cumsum(fav_sum - fav_n * rest_mean)
    charts.advantage_days = [
        (dt.date(1970, 1, 1) + dt.timedelta(days=int(d))).isoformat() for d in days
    ]
    charts.advantage_bps = advantage * 1e4


def _intent(
    analyses: dict[str, object], charts: ChartData, who: str, allocations: history.Allocations,
    first: FirstDay, favoured_rows: Bool, config: ReviewConfig, rng: np.random.Generator,
) -> list[Finding]:
    has, fair = intent.fair_quantities(allocations)
    table = intent.deviation_table(allocations, first, favoured_rows, has, fair)
    sample = np.flatnonzero(has)[:: max(1, int(has.sum()) // 5000)]
    charts.fair = fair[sample]
    charts.allocated = allocations.quantity[sample].astype(np.float64)
    charts.fair_favoured = favoured_rows[sample]
    link = intent.intent_link(allocations, first, favoured_rows, config.draws, rng,
                              config.work_budget)
    details: dict[str, object] = {"rows_with_intent": int(has.sum()), "deviation": table}
    findings: list[Finding] = []
    if link is not None:
        details["excess_on_winners"] = {
            "orders": link.orders,
            "mean_excess_share_winning_orders": round(link.mean_excess_winning, 6),
            "mean_excess_share_losing_orders": round(link.mean_excess_losing, 6),
            "z": round(link.z, 4),
            "monte_carlo": {"draws": link.draws, "as_extreme": link.hits, "p": link.p_mc},
            "p_normal": link.p_normal,
            "p_value": link.p_value,
            "excess_value_estimate": f"{link.excess_value:.2f}",
        }
        findings.append(
            Finding(
                id="intent.excess_on_winners",
                analysis="intent",
                title=f"Allocation against intent: {who} on winning vs losing orders",
                statement=(
                    f"Measured against the pro-rata share of the pre-trade statement, {who} "
                    f"received on average {link.mean_excess_winning:+.1%} of the fill on orders "
                    f"that rose by the close and {link.mean_excess_losing:+.1%} on those that did "
                    f"not ({link.orders} orders; deviations worth ≈ {link.excess_value:,.2f} at "
                    f"the close). If deviations were unrelated to outcomes, a link at least this "
                    f"strong would arise with probability {_p_text(link.p_value)} "
                    f"({link.draws:,} shuffles, seed {config.seed}). This is {NOT_PROOF}."
                ),
                flagged=link.p_value <= config.alpha,
                p_value=link.p_value,
                evidence=details["excess_on_winners"],  # type: ignore[arg-type]
            )
        )
    analyses["intent"] = details
    return findings


def _timing(
    analyses: dict[str, object], charts: ChartData, hist: history.History,
    market: timing.Market, favoured_rows: Bool,
) -> list[Finding]:
    allocations = hist.allocations
    listing, category = timing.allocation_timing(allocations, market)
    charts.delays = timing.delay_minutes(allocations)
    charts.delays_favoured = favoured_rows[allocations.executed_at != history.MISSING]
    serious = (category == 0) | (category == 1)
    fav_total = max(int(favoured_rows.sum()), 1)
    rest_total = max(int((~favoured_rows).sum()), 1)
    listing["late_share_favoured"] = round(int((serious & favoured_rows).sum()) / fav_total, 4)
    listing["late_share_rest"] = round(int((serious & ~favoured_rows).sum()) / rest_total, 4)
    details: dict[str, object] = {
        "market_timezone": str(market.tz),
        "market_close": market.close.isoformat("minutes"),
        "grace_minutes": market.grace_minutes,
        "allocations": listing,
    }
    findings: list[Finding] = []
    findings += _timing_findings("allocations", "allocation records", listing)
    if hist.overrides is not None:
        over_listing, _ = timing.override_timing(hist.overrides, allocations, market)
        details["overrides"] = over_listing
        findings += _timing_findings("overrides", "override and memo records", over_listing)
    analyses["timing"] = details
    return findings


def _timing_findings(kind: str, words: str, listing: dict[str, object]) -> list[Finding]:
    counts = {c: int(listing[c]["count"]) for c in timing.CATEGORIES}  # type: ignore[index]
    findings = []
    late = counts["later_day"] + counts["after_close"]
    if late:
        findings.append(
            Finding(
                id=f"timing.{kind}.after_close",
                analysis="timing",
                title=f"Timing: {words} made after the close",
                statement=(
                    f"{late} {words} were made after the trade date's close "
                    f"({counts['later_day']} of them on a later day), when the day's price move "
                    f"was known. Each is listed with who recorded it and how late. Late records "
                    f"are a control gap; they are not by themselves proof of intent."
                ),
                flagged=True,
                evidence={"counts": counts},
            )
        )
    if counts["after_last_fill"]:
        findings.append(
            Finding(
                id=f"timing.{kind}.after_last_fill",
                analysis="timing",
                title=f"Timing: {words} made well after the last fill",
                statement=(
                    f"{counts['after_last_fill']} {words} were made more than the grace period "
                    f"after the block's last fill but before the close."
                ),
                flagged=False,
                evidence={"counts": counts},
            )
        )
    return findings


def _overrides(
    analyses: dict[str, object], records: history.Overrides, allocations: history.Allocations,
    first: FirstDay, fav_accounts: Bool, who: str, config: ReviewConfig,
    rng: np.random.Generator,
) -> list[Finding]:
    details = overrides.concentration(records, allocations, fav_accounts)
    overridden = overrides.overridden_rows(records, allocations)
    comparison, result = _comparison(
        "all", allocations, first, overridden, np.ones(len(allocations), dtype=np.bool_), config,
        rng,
    )
    details["beneficiaries"] = comparison
    analyses["overrides"] = details
    findings = [
        Finding(
            id="overrides.concentration",
            analysis="overrides",
            title="Overrides: who receives, records and explains them",
            statement=(
                f"{details['records']} override or memo records; {who} received "
                f"{float(str(details['favoured_share_of_overrides'])):.0%} of them against "
                f"{float(str(details['favoured_share_of_allocations'])):.0%} of all allocations. "
                f"Counts by account, person and reason code are in the evidence."
            ),
            flagged=False,
            evidence={k: details[k] for k in ("by_account", "by_person", "by_reason_code")},
        )
    ]
    if result is not None:
        p = _combined(result)
        findings.append(
            Finding(
                id="overrides.beneficiaries",
                analysis="overrides",
                title="Overrides: first-day returns of the overridden allocations",
                statement=(
                    f"Allocations that carry an override or memo averaged "
                    f"{_bps(result.mean_favoured)} on the first day against "
                    f"{_bps(result.mean_rest)} for the others ({result.win_share_favoured:.0%} "
                    f"vs {result.win_share_rest:.0%} winners); probability of a gap at least this "
                    f"large if overrides were unrelated to outcomes: {_p_text(p)}. "
                    f"This is {NOT_PROOF}."
                ),
                flagged=p <= config.alpha,
                p_value=p,
                evidence=comparison,
            )
        )
    return findings
