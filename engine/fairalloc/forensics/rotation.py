"""Stage 5: rotation fairness — how often each account was first in line.

When a block is only partly filled, someone's order may be filled first: under a rotation policy
every account should take its turn; under pro rata nobody should lead. The *leaders* of a partly
filled order are the accounts that received more than their exact pro-rata share by at least the
order's lot (the gcd of its allocated quantities) and whose fill ratio (allocated ÷ intended) is
the order's highest (within one percentage point); an order where everybody would lead has none. Conditioning on the lot is
what keeps rounding from looking like favour: a firm that splits pro rata in round lots of 100
gives a small account 100 shares where its exact share is 50, but that is within one lot of its
share and no lead.

Test (per account): the null hypothesis is equal turns — in each led order every participant is
equally likely to be the leader, independently across orders. An account's number of leads is
then Poisson-binomial (one Bernoulli(leaders/participants) per led order it took part in); the p-value
is its exact upper tail, computed once per account from the counts of its distinct chances
(:func:`~fairalloc.forensics.tests_stats.binomial_sum_upper_tail`). Accounts are scanned
together, so the false discovery rate is controlled (Benjamini–Hochberg).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fairalloc.forensics.history import MISSING, Allocations
from fairalloc.forensics.intent import order_lots
from fairalloc.forensics.returns import FirstDay
from fairalloc.forensics.tests_stats import benjamini_hochberg, binomial_sum_upper_tail

Bool = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]

#: A leader's fill ratio must exceed the next account's by more than this.
LEAD_MARGIN = 0.01

METHOD: dict[str, object] = {
    "test": "exact Poisson-binomial test of leads per account, Benjamini–Hochberg across accounts",
    "null_hypothesis": "equal turns: in each led partly filled order every participant is equally "
                       "likely to be among its leaders, independently across orders",
    "assumptions": [
        "a lead is an allocation above the exact pro-rata share by at least the order's lot "
        "(gcd of its allocated quantities) with the order's highest fill ratio (within one "
        "percentage point)",
        "needs the intended, order_quantity and order_filled columns",
    ],
    "p_value": "exact: upper tail of the Poisson-binomial distribution, summed from its "
               "probability mass function (computed by FFT of the distribution exponentially "
               "tilted to the observed count, in log space)",
}


def leaders(allocations: Allocations, first: FirstDay) -> tuple[Bool, Bool, I64]:
    """Which rows led their order, which rows belong to led orders, and leaders per order.

    In a partly filled order the leaders are the accounts above their exact pro-rata share by at
    least the order's lot whose fill ratio is within ``LEAD_MARGIN`` of the order's highest; an
    order where every participant would lead, or nobody does, has no leader.
    """
    orders = len(allocations.order_ids)
    has = (
        (allocations.intended != MISSING) & (allocations.intended > 0)
        & (allocations.order_quantity != MISSING) & (allocations.order_quantity > 0)
        & (allocations.order_filled != MISSING) & first.partial
    )
    order = allocations.order
    rows_per = np.bincount(order, minlength=orders)
    complete = (np.bincount(order[has], minlength=orders) == rows_per) & (rows_per >= 2)
    rows = np.flatnonzero(complete[order])  # every row of such an order has the columns
    at = order[rows]
    quantity, intended = allocations.quantity[rows], allocations.intended[rows]
    exact = (intended * allocations.order_filled[rows].astype(np.float64)
             / allocations.order_quantity[rows])
    ratio = quantity / intended
    top = np.full(orders, -np.inf)
    np.maximum.at(top, at, ratio)
    lot = order_lots(allocations)[at]
    leads = (quantity - exact >= lot - 1e-9) & (ratio >= top[at] - LEAD_MARGIN)
    count = np.bincount(at, weights=leads, minlength=orders).astype(np.int64)
    count[count == rows_per] = 0
    led = count[at] > 0
    lead = np.zeros(len(allocations), dtype=np.bool_)
    lead[rows[leads & led]] = True
    led_rows = np.zeros(len(allocations), dtype=np.bool_)
    led_rows[rows[led]] = True
    return lead, led_rows, count


def rotation(allocations: Allocations, first: FirstDay, alpha: float) -> dict[str, object]:
    """Leads per account against equal turns: exact one-sided p-values, BH-adjusted."""
    lead, led_rows, count = leaders(allocations, first)
    accounts = len(allocations.accounts)
    led = np.flatnonzero(led_rows)
    at, account = allocations.order[led], allocations.account[led]
    participants = np.bincount(at, minlength=len(allocations.order_ids))
    chance = count[at] / participants[at]
    expected = np.bincount(account, weights=chance, minlength=accounts)
    taken = np.bincount(account, minlength=accounts)
    leads = np.bincount(allocations.account[lead], minlength=accounts).astype(np.int64)
    chances, chance_code = np.unique(chance, return_inverse=True)
    distinct = chances.shape[0]
    trials = np.bincount(account.astype(np.int64) * distinct
                         + chance_code.reshape(-1), minlength=accounts * distinct)
    trials = trials.reshape(accounts, distinct)
    p = np.array(
        [binomial_sum_upper_tail(int(leads[a]), chances, trials[a]) for a in range(accounts)],
        dtype=np.float64,
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
    return {"orders_with_a_leader": int((count > 0).sum()), "method": METHOD, "accounts": table}


def has_intent(allocations: Allocations) -> bool:
    """Whether the history carries the pre-trade statement the rotation and intent tests need."""
    return bool(((allocations.intended != MISSING) & (allocations.order_quantity != MISSING)
                 & (allocations.order_filled != MISSING)).any())
