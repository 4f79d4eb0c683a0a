"""Stage 6: overrides and memos — who gets them, who writes them, why, and how those accounts did.

Overrides are the legitimate door for deviating from the pre-trade statement; a cherry-picker
walks through it too. This stage counts overrides by account, by person and by reason code and
*tests* their concentration: if overrides fell on allocations without regard to the account, each
would land on account ``a`` with probability ``a``'s share of the allocation rows, so the number
on ``a`` is binomial. The same holds within one person's overrides and within one reason code.
Each count is tested with the exact one-sided binomial test (``scipy.stats.binomtest``); all the
account, person × account and reason × account tests are scanned together under
Benjamini–Hochberg control. The favoured group's share is tested the same way on its own.
The first-day returns of overridden allocations are compared with the rest by the review.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fairalloc.forensics.history import Allocations, Overrides
from fairalloc.forensics.tests_stats import benjamini_hochberg, binomial_upper_tail

Bool = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]

METHOD: dict[str, object] = {
    "test": "exact one-sided binomial test per account, per person × account and per reason "
            "code × account; Benjamini–Hochberg across all of them",
    "null_hypothesis": "an override or memo lands on an account with probability equal to the "
                       "account's share of the allocation rows, independently of the others",
    "assumptions": [
        "every allocation row is equally likely to need an override",
        "records naming an unknown account are counted but not tested",
    ],
    "p_value": "exact: scipy.stats.binomtest, alternative 'greater'",
}


def _ranked(counts: dict[str, int]) -> list[dict[str, object]]:
    total = sum(counts.values())
    return [
        {"name": name, "count": count, "share": round(count / total, 4) if total else 0.0}
        for name, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def _count(names: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return counts


def _scan(
    overrides: Overrides, allocations: Allocations, share: npt.NDArray[np.float64], alpha: float,
) -> list[dict[str, object]]:
    """Binomial tests of account concentration overall, per person and per reason code."""
    known = overrides.account >= 0
    accounts = len(allocations.accounts)
    slices: list[tuple[str, str, Bool]] = [("account", "", known)]
    people = np.array(overrides.recorded_by, dtype=object)
    reasons = np.array([r or "(none)" for r in overrides.reason_code], dtype=object)
    for person in sorted(set(overrides.recorded_by)):
        slices.append(("person", person, known & (people == person)))
    for reason in sorted(set(reasons.tolist())):
        slices.append(("reason_code", str(reason), known & (reasons == reason)))
    tests: list[dict[str, object]] = []
    for scope, name, rows in slices:
        counts = np.bincount(overrides.account[rows], minlength=accounts)
        total = int(rows.sum())
        for a in range(accounts):
            k = int(counts[a])
            tests.append({
                "scope": scope, "name": name, "account": allocations.accounts[a],
                "records": k, "records_in_scope": total,
                "account_share_of_allocations": round(float(share[a]), 4),
                "expected": round(total * float(share[a]), 3),
                "p_value": binomial_upper_tail(k, total, float(share[a])) if k else 1.0,
            })
    q = benjamini_hochberg(np.array([float(str(t["p_value"])) for t in tests], dtype=np.float64))
    for test, value in zip(tests, q.tolist(), strict=True):
        test["q_value"] = value
        test["flagged"] = bool(value <= alpha)
    return tests


def concentration(
    overrides: Overrides, allocations: Allocations, favoured_accounts: Bool, alpha: float,
) -> dict[str, object]:
    """Override counts by account, person and reason code, with their concentration tests."""
    by_account = _count([allocations.accounts[c] if c >= 0 else "(unknown account)"
                         for c in overrides.account.tolist()])
    by_reason = _count([r or "(none)" for r in overrides.reason_code])
    known = overrides.account >= 0
    rows = max(len(allocations), 1)
    share = np.bincount(allocations.account, minlength=len(allocations.accounts)) / rows
    fav_overrides = int(favoured_accounts[overrides.account[known]].sum())
    fav_share = float(favoured_accounts[allocations.account].sum()) / rows
    tests = _scan(overrides, allocations, share, alpha)
    return {
        "records": int(overrides.account.size),
        "records_unknown_account": int((~known).sum()),
        "by_account": _ranked(by_account),
        "by_person": _ranked(_count(list(overrides.recorded_by))),
        "by_reason_code": _ranked(by_reason),
        "favoured_records": fav_overrides,
        "favoured_share_of_overrides": round(fav_overrides / max(int(known.sum()), 1), 4),
        "favoured_share_of_allocations": round(fav_share, 4),
        "favoured_p_value": binomial_upper_tail(fav_overrides, int(known.sum()), fav_share),
        "method": METHOD,
        "tests": sorted(tests, key=lambda t: (float(str(t["q_value"])), float(str(t["p_value"])),
                                             str(t["scope"]), str(t["name"]), str(t["account"]))),
    }


def overridden_rows(overrides: Overrides, allocations: Allocations) -> Bool:
    """Allocation rows that an override or memo refers to (same order and account)."""
    keys = allocations.order.astype(np.int64) * max(len(allocations.accounts), 1) + allocations.account
    known = (overrides.order >= 0) & (overrides.account >= 0)
    wanted = (
        overrides.order[known].astype(np.int64) * max(len(allocations.accounts), 1)
        + overrides.account[known]
    )
    return np.isin(keys, np.unique(wanted))
