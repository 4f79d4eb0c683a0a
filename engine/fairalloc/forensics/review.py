"""The forensic review pipeline: history → returns → intent → timing → rotation → overrides.

:func:`run` reads the history files (stage ``history``), computes first-day returns (``returns``),
runs each analysis and turns its results into ranked :class:`~fairalloc.forensics.findings.Finding`
records plus the full analysis details, the findings document and the data the HTML charts need.
Everything random draws from generators seeded by ``ReviewConfig.seed``, in a fixed order, so the
same inputs and seed give the same document.
"""

from __future__ import annotations

import datetime as dt
import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from fairalloc.errors import Code, Diagnostic, InputError, Location
from fairalloc.forensics import groups, history, intent, overrides, rotation, timing
from fairalloc.forensics.charts import Histogram, minutes_histogram, returns_histogram
from fairalloc.forensics.findings import Finding, document, rank
from fairalloc.forensics.returns import (
    FirstDay,
    OrderMoves,
    exact_sum,
    first_day,
    money_text,
    order_moves,
    pool_of,
)
from fairalloc.forensics.tests_stats import (
    DEFAULT_WORK_BUDGET,
    MonteCarlo,
    PoolResult,
    WithinOrder,
    benjamini_hochberg,
    pool_test,
    within_order_paths,
    within_order_test,
)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
STAGES = ("read history", "first-day returns", "return tests", "intent", "timing", "rotation",
          "overrides")
NOT_PROOF = "a statistical pattern, not proof of intent"
#: Re-allocations drawn for the chance band of the cumulative-advantage chart, and the share of
#: the work budget the band may spend (it is a picture, not a test).
CHART_DRAWS = 1000
CHART_BUDGET_SHARE = 10
#: Points of the allocated-against-fair scatter (a deterministic sample of the rows).
SCATTER_POINTS = 2000
#: Findings reported from an each-account scan (all tests are in the analysis table).
SCAN_FINDINGS = 5

WITHIN_ORDER_METHOD: dict[str, object] = {
    "test": "within-order re-allocation (permutation) test, one-sided",
    "null_hypothesis": "within each order, which account received which departure from its "
                       "pro-rata share is unrelated to how the order did by the close",
    "statistic": "sum over the group's allocations of (allocated − exact pro-rata share) × the "
                 "order's mean price × (the order's signed first-day return − the mean over the "
                 "tested orders): the group's first-day gain beyond its pro-rata share "
                 "(≈ money, a float statistic)",
    "assumptions": [
        "the departures of the accounts in one order are exchangeable without favouritism "
        "(rounding a pro-rata split moves every account by less than one lot, whatever its size)",
        "where an order lacks the intended, order_quantity or order_filled column, the allocated "
        "quantities themselves are re-dealt",
        "an account that received nothing and has no row cannot be re-dealt",
    ],
    "p_value": "Monte Carlo: (k + 1) / (N + 1) for k of N re-allocations at least as large; an "
               "upper bound when k = 0. Each draw re-deals every tested order independently.",
}
POOL_METHOD: dict[str, object] = {
    "test": "re-labelling test of which allocations the group received (mean return by Monte "
            "Carlo; winners by the exact one-sided Fisher test), Bonferroni-combined",
    "null_hypothesis": "which of the pool's allocations went to the group is unrelated to how "
                       "they did by the close",
    "assumptions": [
        "the pool is the group and every account that traded alongside it",
        "allocations are exchangeable units; accounts in one order share its move, so when group "
        "accounts always trade together the evidence is overstated — read with the within-order "
        "test",
    ],
    "p_value": "2 × min(Monte Carlo (k + 1)/(N + 1), Fisher exact p), capped at 1",
}
INTENT_METHOD: dict[str, object] = {
    "test": "order-level permutation test of the group's own excess share against the sign of "
            "the order's first-day return, one-sided",
    "null_hypothesis": "the group's departures from the pro-rata share are unrelated to whether "
                       "the order rose or fell by the close",
    "assumptions": [
        "the firm's partial-fill policy is pro rata to the pre-trade intent",
        "departures smaller than the order's lot (gcd of its quantities) are rounding and count "
        "as none",
        "an order without a row of the group counts as no excess",
    ],
    "p_value": "Monte Carlo: (k + 1) / (N + 1) over shuffles of the outcomes among the orders; "
               "an upper bound when k = 0",
}


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
    policy: pathlib.Path | None = None


@dataclass
class ChartData:
    """Arrays the HTML report draws (statistics, not money)."""

    group_label: str = ""
    returns: Histogram = field(default_factory=lambda: returns_histogram({}))  # "<group>, <fill>"
    advantage_days: list[dt.date] = field(default_factory=list)
    advantage: F64 = field(default_factory=lambda: np.zeros(0))
    band_low: F64 = field(default_factory=lambda: np.zeros(0))
    band_high: F64 = field(default_factory=lambda: np.zeros(0))
    band_draws: int = 0
    fair: F64 = field(default_factory=lambda: np.zeros(0))
    allocated: F64 = field(default_factory=lambda: np.zeros(0))
    fair_favoured: Bool = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    fair_partial: Bool = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    minutes: Histogram = field(  # minutes after the close, "favoured" and "others"
        default_factory=lambda: minutes_histogram(np.zeros(0), np.zeros(0, dtype=np.bool_), 0.0))
    deadline_minutes: float = 0.0
    rotation: list[dict[str, object]] = field(default_factory=list)


@dataclass
class Review:
    """Result of :func:`run`: ranked findings, the findings document and chart data."""

    config: ReviewConfig
    findings: list[Finding]
    document: dict[str, object]
    charts: ChartData

    @property
    def exit_code(self) -> int:
        """1 flagged, 8 a test could not run (and nothing flagged), 0 clean."""
        verdict = self.document["verdict"]
        assert isinstance(verdict, dict)
        return int(verdict["exit_code"])


def _zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            Diagnostic(
                Code.FORENSICS_BAD_TIMEZONE, f"unknown time zone {name!r}", Location(file=where),
                "use an IANA name such as America/New_York or Europe/London",
            )
        ) from None


def _market(config: ReviewConfig) -> timing.Market:
    tz = _zone(config.market_timezone, "--market-timezone")
    try:
        close = dt.time.fromisoformat(config.market_close)
    except ValueError:
        raise InputError(
            Diagnostic(
                Code.FORENSICS_BAD_CLOSE_TIME,
                f"market close {config.market_close!r} is not a time HH:MM",
                Location(file="--market-close"),
            )
        ) from None
    deadline = timing.Deadline(0, close, tz, "the market close (no --policy given)")
    if config.policy is not None:
        from fairalloc import load_policy

        policy = load_policy(config.policy)
        if policy.deadline is not None:
            deadline = timing.Deadline(
                policy.deadline.days_after_trade_date, policy.deadline.time,
                _zone(policy.deadline.timezone, str(config.policy)), f"policy {policy.ref}",
            )
        else:
            deadline = timing.Deadline(0, close, tz, f"the market close (policy {policy.ref} "
                                                    "sets no deadline)")
    return timing.Market(tz, close, config.grace_minutes, deadline)


def _bps(value: float) -> str:
    return f"{value * 1e4:+.1f} bps"


def _p_text(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-300 else "< 1e-300"


def _mc_text(mc: MonteCarlo) -> str:
    """How a Monte Carlo p-value reads: a value, or a bound when no draw was as extreme."""
    if mc.draws == 0:
        return "no re-allocation could be drawn within the work budget (p = 1)"
    if mc.is_bound:
        return f"no re-allocation of {mc.draws:,} was as extreme: p ≤ {mc.p:.2g}"
    return f"{mc.hits:,} of {mc.draws:,} re-allocations were as extreme: p = {mc.p:.2g}"


def _not_tested(fid: str, analysis: str, title: str, why: str) -> Finding:
    return Finding(
        id=fid, analysis=analysis, title=title, tested=False, flagged=False,
        statement=f"This test could not run: {why}. The review cannot give a clean bill on it.",
        evidence={"reason": why},
    )


# --- the within-order re-allocation test ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WithinInputs:
    """Rows of one subset prepared for the within-order test."""

    rows: I64  # allocation row indices
    order: I64  # order code per row
    value: F64  # contribution to the statistic
    deviation: F64  # shares beyond the exact pro-rata share (or the quantity itself)
    rising: Bool  # per row: the order rose by the close (signed by side)
    orders: int
    intent_orders: int


def _within_inputs(moves: OrderMoves, subset: Bool) -> WithinInputs:
    idx = np.flatnonzero(subset & moves.closed[moves.order])
    order = moves.order[idx].astype(np.int64)
    tested_orders = np.flatnonzero(np.bincount(order, minlength=moves.closed.shape[0]))
    centre = float(moves.order_return[tested_orders].mean()) if tested_orders.size else 0.0
    order_return = moves.order_return[order]
    value = moves.deviation[idx] * moves.order_price[order] * (order_return - centre)
    return WithinInputs(
        rows=idx, order=order, value=value, deviation=moves.deviation[idx],
        rising=order_return > 0, orders=int(tested_orders.size),
        intent_orders=int(moves.intent[tested_orders].sum()),
    )


def _within_details(
    label: str, inputs: WithinInputs, in_group: Bool, result: WithinOrder, index: int,
    draws_requested: int,
) -> dict[str, object]:
    mc = result.result(index)
    sd = float(result.sd[index])
    return {
        "subset": label,
        "tested": True,
        "orders": inputs.orders,
        "orders_reallocated": result.orders,
        "orders_with_pre_trade_intent": inputs.intent_orders,
        "allocations_group": int(in_group.sum()),
        "excess_shares_rising_orders": round(float(inputs.deviation[in_group & inputs.rising].sum()), 3),
        "excess_shares_other_orders": round(float(inputs.deviation[in_group & ~inputs.rising].sum()), 3),
        "statistic": round(float(result.observed[index]), 2),
        "permutation_mean": round(float(result.mean[index]), 2),
        "permutation_sd": round(sd, 2),
        "z": round((float(result.observed[index]) - float(result.mean[index])) / sd, 3) if sd > 0 else 0.0,
        "monte_carlo": {**mc.to_json(), "draws_requested": draws_requested},
        "p_value": mc.p,
    }


def _within_finding(fid: str, who: str, details: dict[str, object], mc: MonteCarlo,
                    config: ReviewConfig, q: float | None = None) -> Finding:
    subset = "partly filled orders" if details["subset"] == "partial" else "all orders"
    decisive = q if q is not None else mc.p
    statement = (
        f"On {subset}, {who} received {float(str(details['excess_shares_rising_orders'])):+,.0f} "
        f"shares against its pro-rata share on orders that rose by the close and "
        f"{float(str(details['excess_shares_other_orders'])):+,.0f} on the others "
        f"({details['orders']} orders, {details['orders_reallocated']} of them re-dealt). Its "
        f"first-day gain beyond the pro-rata share is ≈ {float(str(details['statistic'])):,.2f}. "
        f"Re-dealing each order's departures at random among its accounts "
        f"(seed {config.seed}): {_mc_text(mc)}"
        + (f"; q = {_p_text(q)} after false-discovery-rate control" if q is not None else "")
        + f". This is {NOT_PROOF}."
    )
    return Finding(
        id=fid, analysis="returns",
        title=f"First-day returns, within-order re-allocation: {who} ({subset})",
        statement=statement, flagged=decisive <= config.alpha, p_value=mc.p, q_value=q,
        p_value_is_upper_bound=mc.is_bound, evidence=details, method=WITHIN_ORDER_METHOD,
    )


def _subsets(first: FirstDay, rows: int) -> list[tuple[str, Bool]]:
    everything = np.ones(rows, dtype=np.bool_)
    return [("all", everything), ("partial", first.partial)]


def _group_within(
    allocations: history.Allocations, first: FirstDay, moves: OrderMoves, fav_accounts: Bool,
    who: str, config: ReviewConfig, rng: np.random.Generator,
) -> tuple[list[Finding], list[dict[str, object]]]:
    findings: list[Finding] = []
    comparisons: list[dict[str, object]] = []
    favoured_rows = fav_accounts[allocations.account]
    for label, subset in _subsets(first, len(allocations)):
        if label == "partial" and not first.partial.any():
            comparisons.append({"subset": label, "tested": False,
                                "reason": "no partly filled orders in the history"})
            continue
        inputs = _within_inputs(moves, subset)
        in_group = favoured_rows[inputs.rows]
        fid = f"returns.favoured.{label}"
        title = f"First-day returns, within-order re-allocation: {who} ({label})"
        why = None
        if not fav_accounts.any():
            why = f"the favoured group ({config.favoured}) matches no account"
        elif inputs.orders == 0:
            why = "no order has a closing price for every allocation"
        elif not in_group.any():
            why = "the favoured group has no allocation in the orders with closing prices"
        elif in_group.all():
            why = "every allocation with a closing price belongs to the favoured group"
        if why is not None:
            comparisons.append({"subset": label, "tested": False, "reason": why})
            if label == "all" or fav_accounts.any():
                findings.append(_not_tested(fid, "returns", title, why))
            continue
        labels = np.where(in_group, 0, -1).astype(np.int64)
        result = within_order_test(inputs.value, inputs.order, labels, 1, config.draws, rng,
                                   config.work_budget)
        details = _within_details(label, inputs, in_group, result, 0, config.draws)
        comparisons.append(details)
        findings.append(_within_finding(fid, who, details, result.result(0), config))
    return findings, comparisons


def _scan_within(
    allocations: history.Allocations, first: FirstDay, moves: OrderMoves, config: ReviewConfig,
    rng: np.random.Generator,
) -> tuple[list[Finding], dict[str, object], int]:
    """Each account's within-order test, all orders and partly filled orders; BH over all."""
    accounts = len(allocations.accounts)
    tests: list[tuple[int, str, dict[str, object], MonteCarlo]] = []
    for label, subset in _subsets(first, len(allocations)):
        if label == "partial" and not first.partial.any():
            continue
        inputs = _within_inputs(moves, subset)
        if inputs.orders == 0:
            continue
        labels = allocations.account[inputs.rows].astype(np.int64)
        result = within_order_test(inputs.value, inputs.order, labels, accounts, config.draws,
                                   rng, config.work_budget)
        present = np.bincount(labels, minlength=accounts)
        for a in range(accounts):
            if present[a] == 0 or present[a] == labels.size:
                continue
            details = _within_details(label, inputs, labels == a, result, a, config.draws)
            tests.append((a, label, details, result.result(a)))
    if not tests:
        why = "no order has a closing price for every allocation and two or more accounts"
        return [_not_tested("returns.scan", "returns", "First-day returns: each account", why)], {
            "mode": "each-account", "tests": 0, "reason": why}, -1
    p = np.array([t[3].p for t in tests], dtype=np.float64)
    q = benjamini_hochberg(p)
    order = sorted(range(len(tests)), key=lambda i: (q[i], p[i], tests[i][0], tests[i][1]))
    findings = [
        _within_finding(
            f"returns.account.{allocations.accounts[tests[i][0]]}.{tests[i][1]}",
            f"account {allocations.accounts[tests[i][0]]}", tests[i][2], tests[i][3], config,
            float(q[i]),
        )
        for i in order[:SCAN_FINDINGS]
    ]
    table = [
        {"account": allocations.accounts[tests[i][0]], "subset": tests[i][1],
         "allocations": tests[i][2]["allocations_group"], "statistic": tests[i][2]["statistic"],
         "p_value": float(p[i]), "p_value_is_upper_bound": tests[i][3].is_bound,
         "q_value": float(q[i])}
        for i in order
    ]
    scan = {
        "mode": "each-account",
        "tests": len(tests),
        "method": WITHIN_ORDER_METHOD,
        "multiple_testing": "Benjamini–Hochberg false discovery rate control over all "
                            "account × subset tests; flagged where q <= alpha",
        "accounts": table,
    }
    return findings, scan, tests[order[0]][0]


# --- the pool comparison (which allocations a group received) ----------------------------------


def _money(first: FirstDay, allocations: history.Allocations, rows: Bool) -> dict[str, str]:
    notional = exact_sum(allocations.quantity[rows] * allocations.price[rows])
    return {
        "first_day_pnl": money_text(exact_sum(first.money[rows]), first.scale),
        "notional": money_text(notional, allocations.price_scale),
    }


def _pool(
    label: str, allocations: history.Allocations, first: FirstDay, favoured_rows: Bool,
    pool_rows: Bool, config: ReviewConfig, rng: np.random.Generator,
) -> tuple[dict[str, object], PoolResult | None]:
    rows = pool_rows & first.has_close
    result = pool_test(first.returns[rows], favoured_rows[rows], config.draws, rng,
                       config.work_budget)
    if result is None:
        return {"subset": label, "tested": False, "reason": "one of the groups is empty"}, None
    return {
        "subset": label,
        "tested": True,
        "allocations_favoured": result.n_favoured,
        "allocations_rest": result.n_rest,
        "mean_return_favoured_bps": round(result.mean_favoured * 1e4, 3),
        "mean_return_rest_bps": round(result.mean_rest * 1e4, 3),
        "difference_bps": round((result.mean_favoured - result.mean_rest) * 1e4, 3),
        "win_share_favoured": round(result.win_share_favoured, 4),
        "win_share_rest": round(result.win_share_rest, 4),
        "favoured": _money(first, allocations, rows & favoured_rows),
        "rest": _money(first, allocations, rows & ~favoured_rows),
        "monte_carlo": {**result.monte_carlo.to_json(), "draws_requested": config.draws},
        "p_fisher_wins": result.p_fisher_wins,
        "p_value": result.p_value,
    }, result


def _pool_finding(fid: str, who: str, details: dict[str, object], result: PoolResult,
                  config: ReviewConfig, analysis: str = "returns") -> Finding:
    subset = "partly filled orders" if details["subset"] == "partial" else "all orders"
    p = result.p_value
    bound = result.monte_carlo.p <= result.p_fisher_wins and result.monte_carlo.is_bound
    statement = (
        f"On {subset}, allocations to {who} averaged a first-day return of "
        f"{_bps(result.mean_favoured)} against {_bps(result.mean_rest)} for the other accounts "
        f"trading alongside them; {result.win_share_favoured:.0%} of theirs were winners against "
        f"{result.win_share_rest:.0%}. Mean return by re-labelling the pool's allocations "
        f"(seed {config.seed}): {_mc_text(result.monte_carlo)}; winners by the exact Fisher "
        f"test: p = {_p_text(result.p_fisher_wins)}; combined (Bonferroni) p "
        f"{'≤' if bound else '='} {_p_text(p)}. This is {NOT_PROOF}."
    )
    return Finding(
        id=fid, analysis=analysis,
        title=f"First-day returns, which allocations: {who} vs the rest ({subset})",
        statement=statement, flagged=p <= config.alpha, p_value=p, p_value_is_upper_bound=bound,
        evidence=details, method=POOL_METHOD,
    )


def _return_stage(
    analyses: dict[str, object], allocations: history.Allocations, first: FirstDay,
    moves: OrderMoves, config: ReviewConfig, rng: np.random.Generator,
) -> tuple[list[Finding], Bool, str]:
    """Return tests: the favoured group (within-order and pool, all and partly filled orders) or
    the each-account within-order scan.

    Returns the findings, the accounts the later stages treat as favoured (in a scan, the account
    ranked first) and how the statements name them.
    """
    accounts = len(allocations.accounts)
    if config.favoured.strip() == groups.EACH_ACCOUNT:
        findings, scan, best = _scan_within(allocations, first, moves, config, rng)
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
    ).reshape(accounts)
    who = f"the favoured group ({config.favoured})"
    findings, comparisons = _group_within(allocations, first, moves, fav_accounts, who, config,
                                         rng)
    pools: list[dict[str, object]] = []
    if fav_accounts.any():
        pool = pool_of(fav_accounts, allocations.order, allocations.account)
        pool_rows = pool[allocations.account]
        favoured_rows = fav_accounts[allocations.account]
        for label, subset in _subsets(first, len(allocations)):
            details, result = _pool(label, allocations, first, favoured_rows, pool_rows & subset,
                                    config, rng)
            pools.append(details)
            if result is not None:
                findings.append(_pool_finding(f"returns.pool.favoured.{label}", who, details,
                                              result, config))
    analyses["returns"] = {
        "mode": "favoured-group",
        "favoured_accounts": [a for a, f in zip(allocations.accounts, fav_accounts, strict=True) if f],
        "method": WITHIN_ORDER_METHOD,
        "comparisons": comparisons,
        "pool_method": POOL_METHOD,
        "pool_comparisons": pools,
    }
    return findings, fav_accounts, who


def run(config: ReviewConfig, advance: Callable[[str], None] | None = None) -> Review:
    """Run the whole review. ``advance(stage)`` is called as each stage finishes (progress bar)."""
    step = advance or (lambda _stage: None)
    market = _market(config)
    hist = history.load(config.allocations, config.prices, config.overrides, config.strict)
    allocations = hist.allocations
    step(STAGES[0])
    first = first_day(allocations, hist.closes)
    step(STAGES[1])
    rng = np.random.default_rng(config.seed)
    analyses: dict[str, object] = {}
    charts = ChartData()
    moves = order_moves(allocations, first)
    findings, fav_accounts, who = _return_stage(analyses, allocations, first, moves, config, rng)
    favoured_rows = fav_accounts[allocations.account]
    _return_charts(charts, who, allocations, first, moves, favoured_rows, config)
    del moves  # its per-row arrays are not needed by the later stages
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
    doc = document(_settings(config, market), _inputs(hist, first), ranked, analyses)
    return Review(config, ranked, doc, charts)


def _rotation(
    analyses: dict[str, object], charts: ChartData, allocations: history.Allocations,
    first: FirstDay, alpha: float,
) -> list[Finding]:
    """Rotation balance per account; one finding per account flagged after FDR control."""
    if not rotation.has_intent(allocations):
        analyses["rotation"] = {"tested": False, "reason": "the history has no intended, "
                                "order_quantity and order_filled columns"}
        return []
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
                    f"Account {row['account']} received more than its pro-rata share by at "
                    f"least a lot, and the highest fill, in {row['leads']} partly filled orders "
                    f"where equal turns would give about {row['expected_leads']}; exact chance "
                    f"of at least this many leads {_p_text(p)} (Poisson-binomial; false "
                    f"discovery rate controlled across accounts, q = {_p_text(q)}). "
                    f"This is {NOT_PROOF}."
                ),
                flagged=True,
                p_value=p,
                q_value=q,
                evidence=row,
                method=rotation.METHOD,
            )
        )
    return findings


def _settings(config: ReviewConfig, market: timing.Market) -> dict[str, object]:
    """The settings block of the findings document."""
    return {
        "seed": config.seed,
        "draws": config.draws,
        "alpha": config.alpha,
        "favoured": config.favoured,
        "market_timezone": config.market_timezone,
        "market_close": config.market_close,
        "grace_minutes": config.grace_minutes,
        "deadline": {
            "source": market.deadline.source,
            "days_after_trade_date": market.deadline.days_after,
            "time": market.deadline.time.isoformat(),
            "timezone": str(market.deadline.tz),
        },
        "policy": str(config.policy) if config.policy is not None else None,
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
    moves: OrderMoves, favoured_rows: Bool, config: ReviewConfig,
) -> None:
    """Return distributions by group and fill, and the cumulative within-order advantage of the
    favoured group on partly filled orders with its chance band."""
    charts.group_label = who
    rows = first.has_close
    series: dict[str, F64] = {}
    for fill, in_fill in (("partly filled", first.partial), ("completely filled", ~first.partial)):
        series[f"favoured, {fill}"] = first.returns[rows & in_fill & favoured_rows]
        series[f"others, {fill}"] = first.returns[rows & in_fill & ~favoured_rows]
    charts.returns = returns_histogram(series)
    del series
    subset = first.partial if first.partial.any() else np.ones(len(allocations), dtype=np.bool_)
    inputs = _within_inputs(moves, subset)
    if inputs.orders == 0 or not favoured_rows.any():
        return
    in_group = favoured_rows[inputs.rows]
    days = allocations.trade_day[inputs.rows]
    unique_days, day_index = np.unique(days, return_inverse=True)
    observed = np.bincount(day_index, weights=np.where(in_group, inputs.value, 0.0),
                           minlength=unique_days.size)
    draws = min(CHART_DRAWS,
                config.work_budget // CHART_BUDGET_SHARE // max(inputs.rows.size, 1))
    chart_rng = np.random.default_rng([config.seed, 1])
    paths = within_order_paths(inputs.value, inputs.order, in_group, day_index.astype(np.int64),
                               unique_days.size, draws, chart_rng)
    cumulative = np.cumsum(paths, axis=1)
    charts.advantage_days = [dt.date(1970, 1, 1) + dt.timedelta(days=int(d)) for d in unique_days]
    charts.advantage = np.cumsum(observed)
    if draws:
        charts.band_low = np.quantile(cumulative, 0.005, axis=0)
        charts.band_high = np.quantile(cumulative, 0.995, axis=0)
    charts.band_draws = draws


def _intent(
    analyses: dict[str, object], charts: ChartData, who: str, allocations: history.Allocations,
    first: FirstDay, favoured_rows: Bool, config: ReviewConfig, rng: np.random.Generator,
) -> list[Finding]:
    has, fair = intent.fair_quantities(allocations)
    if not has.any():
        analyses["intent"] = {"tested": False, "reason": "the history has no intended, "
                              "order_quantity and order_filled columns"}
        return []
    table = intent.deviation_table(allocations, first, favoured_rows, has, fair)
    sample = np.flatnonzero(has)[:: max(1, int(has.sum()) // SCATTER_POINTS)]
    charts.fair = fair[sample]
    charts.allocated = allocations.quantity[sample].astype(np.float64)
    charts.fair_favoured = favoured_rows[sample]
    charts.fair_partial = first.partial[sample]
    link = intent.intent_link(allocations, first, favoured_rows, config.draws, rng,
                              config.work_budget)
    details: dict[str, object] = {"rows_with_intent": int(has.sum()), "deviation": table,
                                  "method": INTENT_METHOD}
    title = f"Allocation against intent: {who} on winning vs losing orders"
    if link is None:
        why = "fewer than two orders have intent data and a close for every allocation"
        details["excess_on_winners"] = {"tested": False, "reason": why}
        analyses["intent"] = details
        return [_not_tested("intent.excess_on_winners", "intent", title, why)]
    mc = link.monte_carlo
    details["excess_on_winners"] = {
        "orders": link.orders,
        "mean_excess_share_winning_orders": round(link.mean_excess_winning, 6),
        "mean_excess_share_losing_orders": round(link.mean_excess_losing, 6),
        "statistic": round(link.statistic, 6),
        "monte_carlo": {**mc.to_json(), "draws_requested": config.draws},
        "p_value": mc.p,
        "excess_value_estimate": f"{link.excess_value:.2f}",
    }
    analyses["intent"] = details
    return [
        Finding(
            id="intent.excess_on_winners",
            analysis="intent",
            title=title,
            statement=(
                f"Measured against the pro-rata share of the pre-trade statement, {who}'s own "
                f"allocations received on average {link.mean_excess_winning:+.1%} of the fill on "
                f"orders that rose by the close and {link.mean_excess_losing:+.1%} on those that "
                f"did not ({link.orders} orders; deviations worth ≈ {link.excess_value:,.2f} at "
                f"the close). Shuffling the outcomes among the orders (seed {config.seed}): "
                f"{_mc_text(mc)}. This is {NOT_PROOF}."
            ),
            flagged=mc.p <= config.alpha,
            p_value=mc.p,
            p_value_is_upper_bound=mc.is_bound,
            evidence=details["excess_on_winners"],  # type: ignore[arg-type]
            method=INTENT_METHOD,
        )
    ]


def _timing(
    analyses: dict[str, object], charts: ChartData, hist: history.History,
    market: timing.Market, favoured_rows: Bool,
) -> list[Finding]:
    allocations = hist.allocations
    memo_after_close = np.zeros(len(allocations.order_ids), dtype=np.bool_)
    over_listing: dict[str, object] | None = None
    if hist.overrides is not None:
        over_listing, _, memo_after_close = timing.override_timing(hist.overrides, allocations,
                                                                   market)
    listing, severity = timing.allocation_timing(allocations, market, memo_after_close)
    charts.deadline_minutes = timing.deadline_minutes_after_close(market)
    charts.minutes = minutes_histogram(timing.minutes_after_close(allocations, market),
                                       favoured_rows, charts.deadline_minutes)
    late = severity >= timing.LATE
    listing["late_share_favoured"] = round(int((late & favoured_rows).sum())
                                           / max(int(favoured_rows.sum()), 1), 4)
    listing["late_share_rest"] = round(int((late & ~favoured_rows).sum())
                                       / max(int((~favoured_rows).sum()), 1), 4)
    details: dict[str, object] = {
        "market_timezone": str(market.tz),
        "market_close": market.close.isoformat("minutes"),
        "deadline": market.deadline.source,
        "grace_minutes": market.grace_minutes,
        "allocations": listing,
    }
    findings = _timing_findings("allocations", "allocation records", listing, market)
    if over_listing is not None:
        details["overrides"] = over_listing
        findings += _timing_findings("overrides", "override and memo records", over_listing,
                                     market)
    analyses["timing"] = details
    return findings


def _timing_findings(kind: str, words: str, listing: dict[str, object],
                     market: timing.Market) -> list[Finding]:
    counts = listing["counts"]
    assert isinstance(counts, dict)
    findings = []
    late = counts["late"] + counts["late_with_memo"]
    method: dict[str, object] = {
        "test": "records judged against the deadline plus grace (no statistics)",
        "deadline": market.deadline.source, "grace_minutes": market.grace_minutes,
        "assumptions": ["timestamps are as exported; back-dated records cannot be seen"],
    }
    if late:
        findings.append(Finding(
            id=f"timing.{kind}.late",
            analysis="timing",
            title=f"Timing: {words} made after the deadline",
            statement=(
                f"{late} {words} were made more than {market.grace_minutes} minutes after the "
                f"deadline ({market.deadline.source})"
                + (f", {counts['late_with_memo']} of them on orders that also carry an override "
                   "or memo recorded after the close" if counts["late_with_memo"] else "")
                + ". Each is listed with who recorded it and how late. Late records are a breach "
                "of the policy and a control gap; they are not by themselves proof of intent."
            ),
            flagged=True,
            severity="critical" if counts["late_with_memo"] else "major",
            evidence={"counts": counts},
            method=method,
        ))
    info = counts["after_close_within_policy"] + counts["within_grace"]
    if info:
        findings.append(Finding(
            id=f"timing.{kind}.after_close",
            analysis="timing",
            title=f"Timing: {words} made after the close, within the policy",
            statement=(
                f"{counts['after_close_within_policy']} {words} were made after the close but by "
                f"the deadline, and {counts['within_grace']} after the deadline within the "
                f"{market.grace_minutes}-minute grace. The policy allows them; they do not count "
                "against the firm."
            ),
            flagged=False,
            severity="info",
            evidence={"counts": counts},
            method=method,
        ))
    return findings


def _overrides(
    analyses: dict[str, object], records: history.Overrides, allocations: history.Allocations,
    first: FirstDay, fav_accounts: Bool, who: str, config: ReviewConfig,
    rng: np.random.Generator,
) -> list[Finding]:
    details = overrides.concentration(records, allocations, fav_accounts, config.alpha)
    overridden = overrides.overridden_rows(records, allocations)
    comparison, result = _pool(
        "all", allocations, first, overridden, np.ones(len(allocations), dtype=np.bool_), config,
        rng,
    )
    details["beneficiaries"] = comparison
    analyses["overrides"] = details
    p_fav = float(str(details["favoured_p_value"]))
    findings = [
        Finding(
            id="overrides.concentration",
            analysis="overrides",
            title=f"Overrides: share of {who}",
            statement=(
                f"{details['records']} override or memo records; {who} received "
                f"{details['favoured_records']} of them "
                f"({float(str(details['favoured_share_of_overrides'])):.0%}) against "
                f"{float(str(details['favoured_share_of_allocations'])):.0%} of all allocations; "
                f"exact binomial p = {_p_text(p_fav)}. This is {NOT_PROOF}."
            ),
            flagged=bool(p_fav <= config.alpha and fav_accounts.any()),
            p_value=p_fav,
            evidence={k: details[k] for k in ("by_account", "by_person", "by_reason_code",
                                              "favoured_records")},
            method=overrides.METHOD,
        )
    ]
    tests = details["tests"]
    assert isinstance(tests, list)
    for test in tests:
        if not test["flagged"]:
            continue
        scope = f"{test['scope']}.{test['name']}." if test["scope"] != "account" else ""
        by = {"account": "all records", "person": f"records by {test['name']}",
              "reason_code": f"records with reason code {test['name']}"}[str(test["scope"])]
        findings.append(Finding(
            id=f"overrides.{test['scope']}.{scope.split('.', 1)[1] if scope else ''}"
               f"{test['account']}",
            analysis="overrides",
            title=f"Overrides concentrated on account {test['account']} ({by})",
            statement=(
                f"Of {test['records_in_scope']} {by}, {test['records']} concern account "
                f"{test['account']}, which has {float(str(test['account_share_of_allocations'])):.1%} "
                f"of the allocations (about {test['expected']} expected); exact binomial p = "
                f"{_p_text(float(str(test['p_value'])))}, q = {_p_text(float(str(test['q_value'])))} "
                f"across all account, person and reason-code tests. This is {NOT_PROOF}."
            ),
            flagged=True, p_value=float(str(test["p_value"])),
            q_value=float(str(test["q_value"])), evidence=test, method=overrides.METHOD,
        ))
    if result is not None:
        findings.append(_pool_finding("overrides.beneficiaries",
                                      "allocations carrying an override or memo",
                                      comparison, result, config, "overrides"))
    return findings
