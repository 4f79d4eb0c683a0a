"""Stage 3: allocations against pre-trade intent.

The pre-trade allocation statement says how much each account should get. When a block is only
partly filled, the firm's usual policy is a pro-rata split of the fill, so an account's *fair*
quantity is ``intended × order_filled / order_quantity``. This stage measures the deviation from
that fair quantity by group, singles out partial fills, and asks the cherry-picking question:
do the favoured accounts get more than their share on orders that rose by the close and less on
those that fell?

That last test works order by order on the favoured accounts' *own* rows: per order, the sum of
their departures from the pro-rata share, as a share of the fill. Departures smaller than the
order's lot (the greatest common divisor of its allocated quantities: 100 for a firm allocating
in round lots, 1 for whole shares) are what rounding the split can produce and count as none.
An order where no favoured account has a row has an excess of zero (who got nothing cannot be
told from the rows, so another account's absence is never counted for or against the group):
this is what keeps the test from blaming a group for another group's gains. The statistic ``Σ excess × sign(order return)`` (a
winner counts +1, a loser −1, whatever the size of the move) is compared with its distribution
when the outcomes are shuffled among the orders (Monte Carlo).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fairalloc.forensics.history import MISSING, Allocations
from fairalloc.forensics.returns import FirstDay
from fairalloc.forensics.tests_stats import MonteCarlo, permutation_product_test

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class IntentLink:
    """Result of the excess-on-winners test for one favoured group."""

    orders: int
    mean_excess_winning: float  # share of the fill, orders that rose by the close
    mean_excess_losing: float
    statistic: float
    monte_carlo: MonteCarlo
    excess_value: float  # money value of favoured deviations at the close (float, rounded later)

    @property
    def p_value(self) -> float:
        return self.monte_carlo.p


def order_lots(allocations: Allocations) -> I64:
    """Per order, the rounding unit of its split: the gcd of its allocated quantities (one
    unbuffered ``gcd`` pass over the rows, in any order: the gcd does not depend on it)."""
    lots = np.zeros(len(allocations.order_ids), dtype=np.int64)
    np.gcd.at(lots, allocations.order, allocations.quantity)
    return np.maximum(lots, 1)


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
    lot = order_lots(allocations)[allocations.order]
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
                    "rows_off_by_a_lot_or_more": int((np.abs(dev) >= lot[rows]).sum()),
                }
            )
    return table


def order_excess(
    allocations: Allocations, first: FirstDay, favoured_rows: Bool, has: Bool, fair: F64
) -> tuple[F64, F64, F64]:
    """Per eligible order: the favoured rows' own excess share of the fill and the order's return.

    Returns (excess, order return, row-level excess quantity of the favoured rows). Eligible:
    every row has intent data and a close and the fill is positive. An order without a favoured
    row has no excess (zero): it still takes part in the shuffle of outcomes.
    Departures smaller than the order's lot count as zero, so a firm that allocates pro rata,
    in whole shares or in round lots, shows no excess at all.
    """
    orders = len(allocations.order_ids)
    order = allocations.order
    rows_per_order = np.bincount(order, minlength=orders)
    complete = np.bincount(order[has & first.has_close], minlength=orders)
    row_excess = np.subtract(allocations.quantity, fair)
    row_excess[~(favoured_rows & has)] = 0.0
    row_excess[np.abs(row_excess) < order_lots(allocations)[order]] = 0.0
    fav_excess = np.bincount(order, weights=row_excess, minlength=orders)
    filled = np.zeros(orders)
    filled[order[has]] = allocations.order_filled[has]
    weight = allocations.quantity.astype(np.float64)
    returns = np.where(first.has_close, first.returns, 0.0)
    returns *= weight
    order_return = np.bincount(order, weights=returns, minlength=orders) / np.maximum(
        np.bincount(order, weights=weight, minlength=orders), 1.0
    )
    eligible = (rows_per_order > 0) & (complete == rows_per_order) & (filled > 0)
    excess = fav_excess / np.maximum(filled, 1.0)
    return excess[eligible], order_return[eligible], row_excess


def intent_link(
    allocations: Allocations,
    first: FirstDay,
    favoured_rows: Bool,
    draws: int,
    rng: np.random.Generator,
    work_budget: int,
) -> IntentLink | None:
    """Test whether the favoured group's excess share lines up with the orders' first-day returns.

    ``None`` when fewer than two orders are eligible (the test cannot run)."""
    has, fair = fair_quantities(allocations)
    excess, order_return, row_excess = order_excess(
        allocations, first, favoured_rows, has, fair
    )
    if excess.size < 2:
        return None
    statistic, monte_carlo = permutation_product_test(
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
        monte_carlo=monte_carlo,
        excess_value=value,
    )
