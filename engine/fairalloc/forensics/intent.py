"""Stage 3: allocations against pre-trade intent.

The pre-trade allocation statement says how much each account should get. When a block is only
partly filled, the firm's usual policy is a pro-rata split of the fill, so an account's *fair*
quantity is ``intended × order_filled / order_quantity``. This stage measures the deviation from
that fair quantity by group, singles out partial fills, and asks the cherry-picking question:
do the favoured accounts get more than their share on orders that rose by the close and less on
those that fell?

That last test works order by order. For each order, the favoured group's excess is measured as
the share of the fill the *other* accounts did not get (their fair quantity minus what they
received, divided by the fill) — this also sees an order where the favoured account was dropped
entirely, which leaves no row of its own. The statistic ``Σ excess × sign(order return)`` (a
winner counts +1, a loser −1, whatever the size of the move, so a few volatile symbols cannot
dominate) is compared with its distribution when the outcomes are shuffled among the orders
(Monte Carlo, plus the exact-moment normal approximation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fairalloc.forensics.history import MISSING, Allocations
from fairalloc.forensics.returns import FirstDay
from fairalloc.forensics.tests_stats import permutation_product_test

F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]
#: Deviations smaller than this many shares are whole-share rounding, not deviations.
ROUNDING = 1.0


@dataclass(frozen=True, slots=True)
class IntentLink:
    """Result of the excess-on-winners test for one favoured group."""

    orders: int
    mean_excess_winning: float  # share of the fill, orders that rose by the close
    mean_excess_losing: float
    statistic: float
    z: float
    draws: int
    hits: int
    p_normal: float
    excess_value: float  # money value of favoured deviations at the close (float, rounded later)

    @property
    def p_mc(self) -> float:
        return (self.hits + 1) / (self.draws + 1)

    @property
    def p_value(self) -> float:
        """Monte Carlo p while resolved (>= 10 hits), else the normal approximation."""
        if self.draws > 0 and self.hits >= 10:
            return self.p_mc
        return self.p_normal


def fair_quantities(allocations: Allocations) -> tuple[Bool, F64]:
    """Rows that carry intent data, and their pro-rata fair quantity (a float statistic)."""
    has = (
        (allocations.intended != MISSING)
        & (allocations.order_quantity != MISSING)
        & (allocations.order_filled != MISSING)
        & (allocations.order_quantity > 0)
    )
    fair = np.where(
        has,
        allocations.intended * allocations.order_filled.astype(np.float64)
        / np.where(has, allocations.order_quantity, 1),
        np.nan,
    )
    return has, fair


def deviation_table(
    allocations: Allocations, first: FirstDay, favoured_rows: Bool, has: Bool, fair: F64
) -> list[dict[str, object]]:
    """Deviation from fair quantity by group and by fill (partial / complete)."""
    table: list[dict[str, object]] = []
    deviation = allocations.quantity - np.where(has, fair, 0.0)
    for group, in_group in (("favoured", favoured_rows), ("rest", ~favoured_rows)):
        for fill, in_fill in (("partial", first.partial), ("complete", ~first.partial)):
            rows = has & in_group & in_fill
            count = int(rows.sum())
            if count == 0:
                table.append({"group": group, "fill": fill, "rows": 0})
                continue
            dev = deviation[rows]
            table.append(
                {
                    "group": group,
                    "fill": fill,
                    "rows": count,
                    "mean_deviation_shares": round(float(dev.mean()), 4),
                    "mean_deviation_pct_of_fair": round(
                        float((dev / np.maximum(fair[rows], 1.0)).mean() * 100), 4
                    ),
                    "rows_off_by_a_share_or_more": int((np.abs(dev) >= ROUNDING).sum()),
                }
            )
    return table


def order_excess(
    allocations: Allocations, first: FirstDay, favoured_rows: Bool, has: Bool, fair: F64
) -> tuple[F64, F64, F64]:
    """Per eligible order: the favoured group's excess share of the fill and the order's return.

    Returns (excess, order return, row-level excess quantity of the favoured rows).
    Eligible: every row has intent data and a close, the fill is positive, and either a favoured
    account has a row or the other rows' intent falls short of the order's quantity.
    Row deviations under one share (the rounding of a whole-share pro-rata split) count as zero,
    so a firm that allocates pro rata shows no excess at all.
    """
    orders = len(allocations.order_ids)
    order = allocations.order
    rows_per_order = np.bincount(order, minlength=orders)
    complete = np.bincount(order, weights=(has & first.has_close), minlength=orders)
    rest = ~favoured_rows
    shortfall = np.where(rest & has, fair - allocations.quantity, 0.0)
    # Whole-share rounding of a pro-rata split moves less than one share: not a deviation.
    shortfall[np.abs(shortfall) < ROUNDING] = 0.0
    rest_shortfall = np.bincount(order, weights=shortfall, minlength=orders)
    rest_intent = np.bincount(
        order, weights=np.where(rest & has, allocations.intended, 0).astype(np.float64),
        minlength=orders,
    )
    fav_present = np.bincount(order, weights=favoured_rows, minlength=orders) > 0
    filled = np.zeros(orders)
    order_qty = np.zeros(orders)
    filled[order[has]] = allocations.order_filled[has]
    order_qty[order[has]] = allocations.order_quantity[has]
    weight = allocations.quantity.astype(np.float64)
    returns = np.where(first.has_close, first.returns, 0.0)
    order_return = np.bincount(order, weights=returns * weight, minlength=orders) / np.maximum(
        np.bincount(order, weights=weight, minlength=orders), 1.0
    )
    eligible = (
        (rows_per_order > 0)
        & (complete == rows_per_order)
        & (filled > 0)
        & (fav_present | (rest_intent < order_qty))
    )
    excess = rest_shortfall / np.maximum(filled, 1.0)
    row_excess = np.where(favoured_rows & has, allocations.quantity - fair, 0.0)
    row_excess[np.abs(row_excess) < ROUNDING] = 0.0
    return excess[eligible], order_return[eligible], row_excess


def intent_link(
    allocations: Allocations,
    first: FirstDay,
    favoured_rows: Bool,
    draws: int,
    rng: np.random.Generator,
    work_budget: int,
) -> IntentLink | None:
    """Test whether the favoured group's excess share lines up with the orders' first-day returns."""
    has, fair = fair_quantities(allocations)
    excess, order_return, row_excess = order_excess(
        allocations, first, favoured_rows, has, fair
    )
    if excess.size < 2:
        return None
    statistic, z, made, hits, p_normal = permutation_product_test(
        excess, np.sign(order_return), draws, rng, work_budget
    )
    winning = order_return > 0
    move = np.where(
        first.has_close, first.money / np.maximum(allocations.quantity, 1), 0
    ).astype(np.float64)
    value = float((row_excess * move).sum()) / 10**first.scale
    return IntentLink(
        orders=int(excess.size),
        mean_excess_winning=float(excess[winning].mean()) if winning.any() else 0.0,
        mean_excess_losing=float(excess[~winning].mean()) if (~winning).any() else 0.0,
        statistic=statistic,
        z=z,
        draws=made,
        hits=hits,
        p_normal=p_normal,
        excess_value=value,
    )
