"""Stage 5: rotation fairness — how often each account was first in line.

When a block is only partly filled, someone's order is filled first: under a rotation policy
every account should take its turn; under pro rata nobody should lead. The *leader* of a partly
filled order is the account whose fill ratio (allocated ÷ intended) is clearly the highest (more
than one percentage point above the next). Orders split pro rata have no leader.

For each account, the expected number of leads if every participant of a led order were equally
likely to lead is ``Σ 1/n`` over the led orders it took part in (``n`` participants). An account
leading far more often than that is reported; accounts are scanned together, so the false
discovery rate is controlled (Benjamini–Hochberg).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from fairalloc.forensics.history import MISSING, Allocations
from fairalloc.forensics.returns import FirstDay
from fairalloc.forensics.tests_stats import benjamini_hochberg, normal_upper_tail

#: A leader's fill ratio must exceed the next account's by more than this.
LEAD_MARGIN = 0.01


def leaders(allocations: Allocations, first: FirstDay) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Leader account per order (-1: none) and which rows belong to led orders."""
    orders = len(allocations.order_ids)
    has = (allocations.intended != MISSING) & (allocations.intended > 0) & first.partial
    rows = np.flatnonzero(has)
    ratio = allocations.quantity[rows] / allocations.intended[rows].astype(np.float64)
    order = allocations.order[rows]
    ranked = np.lexsort((allocations.account[rows], -ratio, order))
    order_sorted = order[ranked]
    ratio_sorted = ratio[ranked]
    starts = np.flatnonzero(np.r_[True, order_sorted[1:] != order_sorted[:-1]])
    counts = np.diff(np.r_[starts, order_sorted.size])
    leader = np.full(orders, -1, dtype=np.int64)
    multi = counts >= 2
    top = starts[multi]
    clear = ratio_sorted[top] - ratio_sorted[top + 1] > LEAD_MARGIN
    winners = top[clear]
    leader[order_sorted[winners]] = allocations.account[rows[ranked[winners]]]
    led_rows = np.zeros(len(allocations), dtype=np.bool_)
    led_rows[rows] = leader[order] >= 0
    return leader, led_rows


def rotation(allocations: Allocations, first: FirstDay, alpha: float) -> dict[str, object]:
    """Leads per account against equal turns, with BH-adjusted one-sided p-values."""
    leader, led_rows = leaders(allocations, first)
    accounts = len(allocations.accounts)
    led_orders = int((leader >= 0).sum())
    participants = np.bincount(allocations.order[led_rows], minlength=len(allocations.order_ids))
    chance = np.zeros(len(allocations), dtype=np.float64)
    chance[led_rows] = 1.0 / participants[allocations.order[led_rows]]
    expected = np.bincount(allocations.account, weights=chance, minlength=accounts)
    variance = np.bincount(allocations.account, weights=chance * (1 - chance), minlength=accounts)
    taken = np.bincount(allocations.account, weights=led_rows, minlength=accounts)
    leads = np.bincount(leader[leader >= 0], minlength=accounts)
    p = np.array(
        [
            normal_upper_tail((leads[a] - expected[a]) / math.sqrt(variance[a]))
            if variance[a] > 0
            else 1.0
            for a in range(accounts)
        ]
    )
    q = benjamini_hochberg(p)
    table = [
        {
            "account": allocations.accounts[a],
            "led_orders_taken_part": int(taken[a]),
            "leads": int(leads[a]),
            "expected_leads": round(float(expected[a]), 3),
            "p_value": float(p[a]),
            "q_value": float(q[a]),
            "flagged": bool(q[a] <= alpha),
        }
        for a in range(accounts)
    ]
    return {"orders_with_a_leader": led_orders, "accounts": table}
