"""Synthetic firm-years in the allocation-history format, with an optional cherry-picker.

Used for demos, for the documentation's power curve and for the tests that hold the review to its
bars (false positives on fair firms, detection of the source document's scenario).

The fair firm: accounts with attributes (one proprietary performance-fee account, one more
performance-fee account, one employee account, the rest asset-based fees); block orders on random
trading days, each with a random set of participating accounts and a pre-trade intent; some blocks
only partly filled; fills allocated pro rata to intent (largest remainder, in whole shares or in
round lots of ``lot`` shares) and recorded minutes after the last fill — for the blocks whose
last fill comes in the final minutes of the session (``close_share`` of them), that is up to 19
minutes after the close, as at a real firm, and within a policy deadline at the end of the day.
``small_employee`` gives the employee account intents of one or two round lots, so that a
round-lot split often rounds its share up to a whole lot or down to nothing. Prices follow a random walk with a realistic daily
volatility (by default 1–3 % a day per symbol); the execution price sits between the previous close and the
day's close.

The cherry-picker (:class:`CherryPicker`) waits for the close: on an eligible order he intervenes
with probability ``rate``; if the order rose by the close the favoured accounts take a larger
share (``strength`` = 1: filled first, up to intent), if it fell they take a smaller one
(``strength`` = 1: none at all). He records those allocations after the close and writes an
override memo ("market conditions", "client suitability"), unless ``backdate`` is set, in which
case the timestamps are forged to look contemporaneous.
"""

from __future__ import annotations

import datetime as dt
import pathlib
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import polars as pl

from fairalloc.forensics import groups
from fairalloc.forensics.output import atomic_write_with

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

MARKET_TZ = ZoneInfo("America/New_York")
_MICROS = 1_000_000
_MINUTE = 60 * _MICROS
PERFORMANCE_FAVOURED = 'attr.fee_basis == "performance"'


@dataclass(frozen=True, slots=True)
class CherryPicker:
    """Who benefits, how often, how strongly, and whether the memos are back-dated."""

    favoured: str = PERFORMANCE_FAVOURED
    rate: float = 1.0
    strength: float = 1.0
    partial_only: bool = True
    backdate: bool = False


@dataclass(frozen=True, slots=True)
class FirmSpec:
    """Size and shape of one simulated firm-year."""

    seed: int = 1
    year: int = 2025
    accounts: int = 12
    orders: int = 250
    participation: float = 0.6
    partial_share: float = 0.3
    symbols: int = 40
    overrides_share: float = 0.03
    volatility: tuple[float, float] = (0.01, 0.03)
    lot: int = 1
    small_employee: bool = False
    close_share: float = 0.1
    cherry: CherryPicker | None = None


@dataclass
class SimulatedFirm:
    """Paths written and the ground truth a test can compare the review against."""

    allocations: pathlib.Path
    prices: pathlib.Path
    overrides: pathlib.Path
    rows: int
    orders: int
    biased_orders: list[str] = field(default_factory=list)


def trading_days(year: int) -> list[dt.date]:
    """Weekdays of the year (exchange holidays are not modelled)."""
    day = dt.date(year, 1, 1)
    days = []
    while day.year == year:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def _account_table(count: int) -> pl.DataFrame:
    names = [f"ACC-{i + 1:03d}" for i in range(count)]
    fee = ["performance" if i in (0, 1) else "asset" for i in range(count)]
    proprietary = ["true" if i == 0 else "false" for i in range(count)]
    employee = ["true" if i == 2 else "false" for i in range(count)]
    return pl.DataFrame(
        {
            "account": names,
            "attr.fee_basis": fee,
            "attr.proprietary": proprietary,
            "attr.employee": employee,
        }
    )


def _close_micros(day: dt.date) -> int:
    close = dt.datetime.combine(day, dt.time(16, 0), MARKET_TZ)
    return int(close.timestamp()) * _MICROS


def _price_paths(
    rng: np.random.Generator, symbols: int, days: int, band: tuple[float, float]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Closing prices and execution-time prices in cents, per (symbol, day).

    Each symbol's daily volatility is drawn uniformly from ``band``.
    """
    volatility = rng.uniform(band[0], band[1], size=(symbols, 1))
    before = rng.normal(0.0, 1.0, size=(symbols, days)) * volatility * np.sqrt(0.6)
    after = rng.normal(0.0, 1.0, size=(symbols, days)) * volatility * np.sqrt(0.4)
    start = np.log(rng.uniform(20.0, 300.0, size=(symbols, 1)))
    log_close = start + np.cumsum(before + after, axis=1)
    log_exec = log_close - after
    close = np.maximum(np.round(np.exp(log_close) * 100), 1).astype(np.int64)
    execution = np.maximum(np.round(np.exp(log_exec) * 100), 1).astype(np.int64)
    return close, execution


def _pro_rata(order: I64, intended: I64, filled_per_order: I64) -> I64:
    """Whole-share pro-rata split of each order's fill by intent (largest remainder)."""
    total = np.bincount(order, weights=intended).astype(np.int64)
    numerator = intended * filled_per_order[order]
    base = numerator // total[order]
    remainder = numerator - base * total[order]
    leftover = filled_per_order - np.bincount(order, weights=base, minlength=total.size).astype(
        np.int64
    )
    ranking = np.lexsort((np.arange(order.size), -remainder, order))
    starts = np.searchsorted(order[ranking], np.arange(total.size))
    position = np.arange(order.size) - starts[order[ranking]]
    bonus = np.zeros(order.size, dtype=np.int64)
    bonus[ranking] = (position < leftover[order[ranking]]).astype(np.int64)
    return base + bonus


def _cherry_pick(
    quantity: I64, intended: I64, favoured: npt.NDArray[np.bool_], filled: int,
    rose: bool, strength: float,
) -> I64:
    """Re-split one order's fill the cherry-picker's way; others share the rest pro rata."""
    fav_now = int(quantity[favoured].sum())
    fav_intent = int(intended[favoured].sum())
    if rose:
        cap = min(filled, fav_intent)
        target = fav_now + int(round(strength * max(cap - fav_now, 0)))
    else:
        target = int(round(fav_now * (1.0 - strength)))
    target = max(0, min(filled, target))
    result = quantity.copy()
    if fav_now > 0:
        share = quantity[favoured] * target // fav_now
        share[0] += target - int(share.sum())
        result[favoured] = share
    others = ~favoured
    other_intent = intended[others]
    remaining = filled - target
    split = other_intent * remaining // max(int(other_intent.sum()), 1)
    split[: remaining - int(split.sum())] += 1
    result[others] = split
    return result


def _stamp_text(micros: pl.Expr) -> pl.Expr:
    return (
        pl.from_epoch(micros, time_unit="us")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone("America/New_York")
        .dt.to_string("%Y-%m-%dT%H:%M:%S%:z")
    )


def _cents_text(cents: pl.Expr) -> pl.Expr:
    return (cents // 100).cast(pl.String) + "." + (cents % 100).cast(pl.String).str.zfill(2)


def simulate(spec: FirmSpec, out_dir: pathlib.Path) -> SimulatedFirm:
    """Write allocations.csv, prices.csv and overrides.csv of one firm-year into ``out_dir``."""
    rng = np.random.default_rng(spec.seed)
    days = trading_days(spec.year)
    accounts = _account_table(spec.accounts)
    close, execution = _price_paths(rng, spec.symbols, len(days), spec.volatility)
    day_close = np.array([_close_micros(d) for d in days], dtype=np.int64)

    order_day = np.sort(rng.integers(1, len(days), size=spec.orders))
    order_symbol = rng.integers(0, spec.symbols, size=spec.orders)
    order_side = rng.choice(np.array([1, -1, -2]), size=spec.orders, p=[0.8, 0.15, 0.05])
    joins = rng.random((spec.orders, spec.accounts)) < spec.participation
    forced = np.argsort(rng.random((spec.orders, spec.accounts)), axis=1)[:, :2]
    joins[np.arange(spec.orders)[:, None], forced] = True
    order, account = np.nonzero(joins)
    order = order.astype(np.int64)
    intended = rng.integers(1, 50, size=order.size).astype(np.int64) * 100
    if spec.small_employee:
        employee = account == 2
        intended[employee] = rng.integers(1, 3, size=int(employee.sum())) * 100
    order_quantity = np.bincount(order, weights=intended).astype(np.int64)
    partial = rng.random(spec.orders) < spec.partial_share
    fraction = rng.uniform(0.3, 0.9, size=spec.orders)
    filled = np.where(
        partial, np.maximum((order_quantity * fraction // 100).astype(np.int64) * 100, 100),
        order_quantity,
    )
    lot = max(1, spec.lot)
    filled = np.maximum(filled // lot, 1) * lot
    quantity = _pro_rata(order, intended, filled // lot) * lot
    price_cents = execution[order_symbol, order_day]
    close_cents = close[order_symbol, order_day]
    side_sign = np.where(order_side > 0, 1, -1)
    at_close = rng.random(spec.orders) < spec.close_share
    executed = day_close[order_day] - np.where(
        at_close, rng.integers(0, 10, size=spec.orders), rng.integers(30, 375, size=spec.orders)
    ) * _MINUTE
    delay = np.where(at_close[order], rng.integers(10, 20, size=order.size),
                     rng.integers(1, 10, size=order.size))
    allocated = executed[order] + delay * _MINUTE
    allocated_by = np.where(rng.random(order.size) < 0.85, "pm.jones", "ops.lee").astype(object)

    over_order, over_account, over_time, over_by, over_code, over_memo = [], [], [], [], [], []
    picks = rng.random(spec.orders) < spec.overrides_share
    for picked in np.flatnonzero(picks):
        row = int(rng.choice(np.flatnonzero(order == picked)))
        over_order.append(int(picked))
        over_account.append(int(account[row]))
        over_time.append(int(executed[picked] - rng.integers(5, 60) * _MINUTE))
        over_by.append("ops.lee")
        code = str(rng.choice(["MIN_LOT", "CASH", "RESTRICTION"]))
        over_code.append(code)
        over_memo.append({"MIN_LOT": "below minimum lot", "CASH": "insufficient cash",
                          "RESTRICTION": "client restriction"}[code])

    biased: list[int] = []
    if spec.cherry is not None:
        cherry = spec.cherry
        fav_accounts = np.array(
            groups.favoured_accounts(
                cherry.favoured,
                {c.removeprefix("attr."): list(accounts[c]) for c in accounts.columns[1:]},
                spec.accounts,
            )
        )
        is_fav = fav_accounts[account]
        starts = np.searchsorted(order, np.arange(spec.orders + 1))
        intervene = rng.random(spec.orders) < cherry.rate
        for o in range(spec.orders):
            lo, hi = int(starts[o]), int(starts[o + 1])
            fav = is_fav[lo:hi]
            if not intervene[o] or not fav.any() or fav.all():
                continue
            if cherry.partial_only and not partial[o]:
                continue
            rose = side_sign[o] * (close_cents[o] - price_cents[o]) > 0
            quantity[lo:hi] = _cherry_pick(
                quantity[lo:hi], intended[lo:hi], fav, int(filled[o]), bool(rose),
                cherry.strength,
            )
            biased.append(o)
            late = day_close[order_day[o]] + rng.integers(30, 150) * _MINUTE
            if not cherry.backdate:
                allocated[lo:hi] = late + np.arange(hi - lo) * _MICROS
                allocated_by[lo:hi] = "pm.jones"
            for fav_row in np.flatnonzero(fav) + lo:
                over_order.append(o)
                over_account.append(int(account[fav_row]))
                memo_time = (
                    executed[o] - rng.integers(5, 30) * _MINUTE
                    if cherry.backdate
                    else late + rng.integers(30, 120) * _MINUTE
                )
                over_time.append(int(memo_time))
                over_by.append("pm.jones")
                code = "MKT_COND" if rose else "SUITABILITY"
                over_code.append(code)
                over_memo.append("market conditions" if rose else "client suitability")

    keep = quantity > 0
    order_names = np.array([f"BLK-{spec.year}-{o + 1:05d}" for o in range(spec.orders)])
    side_names = np.array(["sell", "buy", "sell_short"])[np.where(order_side == -2, 2, order_side.clip(0, 1))]
    symbol_names = np.array([f"SYM{s:03d}" for s in range(spec.symbols)])
    day_names = np.array([d.isoformat() for d in days])
    frame = pl.DataFrame(
        {
            "order_id": order_names[order],
            "trade_date": day_names[order_day[order]],
            "symbol": symbol_names[order_symbol[order]],
            "side": side_names[order],
            "account": accounts["account"].to_numpy()[account],
            "quantity": quantity,
            "price": price_cents[order],
            "allocated_at": allocated,
            "executed_at": executed[order],
            "intended": intended,
            "order_quantity": order_quantity[order],
            "order_filled": filled[order],
            "allocated_by": allocated_by.astype(str),
        }
    ).filter(pl.Series(keep))
    frame = frame.with_columns(
        _cents_text(pl.col("price")).alias("price"),
        _stamp_text(pl.col("allocated_at")).alias("allocated_at"),
        _stamp_text(pl.col("executed_at")).alias("executed_at"),
    ).join(accounts, on="account", how="left", maintain_order="left")

    symbol_grid, day_grid = np.meshgrid(np.arange(spec.symbols), np.arange(len(days)), indexing="ij")
    prices = pl.DataFrame(
        {
            "symbol": symbol_names[symbol_grid.ravel()],
            "date": day_names[day_grid.ravel()],
            "close": close.ravel(),
        }
    ).with_columns(_cents_text(pl.col("close")).alias("close"))
    overrides = pl.DataFrame(
        {
            "order_id": [str(order_names[o]) for o in over_order],
            "account": [str(accounts["account"][a]) for a in over_account],
            "recorded_at": np.array(over_time, dtype=np.int64),
            "recorded_by": over_by,
            "reason_code": over_code,
            "memo": over_memo,
        },
        schema={"order_id": pl.String, "account": pl.String, "recorded_at": pl.Int64,
                "recorded_by": pl.String, "reason_code": pl.String, "memo": pl.String},
    ).with_columns(_stamp_text(pl.col("recorded_at")).alias("recorded_at"))

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / f"{name}.csv" for name in ("allocations", "prices", "overrides")}
    for name, table in (("allocations", frame), ("prices", prices), ("overrides", overrides)):
        atomic_write_with(paths[name], table.write_csv)
    return SimulatedFirm(
        allocations=paths["allocations"],
        prices=paths["prices"],
        overrides=paths["overrides"],
        rows=frame.height,
        orders=spec.orders,
        biased_orders=[str(order_names[o]) for o in biased],
    )
