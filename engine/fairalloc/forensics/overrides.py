"""Stage 6: overrides and memos — who gets them, who writes them, why, and how those accounts did.

Overrides are the legitimate door for deviating from the pre-trade statement; a cherry-picker
walks through it too. This stage counts overrides by account, by person and by reason code,
compares the favoured group's share of overrides with its share of allocations, and tests the
first-day returns of the overridden allocations against the rest with the same re-allocation test
as the return stage.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fairalloc.forensics.history import Allocations, Overrides

Bool = npt.NDArray[np.bool_]


def _ranked(counts: dict[str, int]) -> list[dict[str, object]]:
    total = sum(counts.values())
    return [
        {"name": name, "count": count, "share": round(count / total, 4) if total else 0.0}
        for name, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def concentration(
    overrides: Overrides, allocations: Allocations, favoured_accounts: Bool
) -> dict[str, object]:
    """Override counts by account, person and reason code; favoured share against allocations."""
    by_account: dict[str, int] = {}
    for code in overrides.account:
        name = allocations.accounts[code] if code >= 0 else "(unknown account)"
        by_account[name] = by_account.get(name, 0) + 1
    by_person: dict[str, int] = {}
    for person in overrides.recorded_by:
        by_person[person] = by_person.get(person, 0) + 1
    by_reason: dict[str, int] = {}
    for reason in overrides.reason_code:
        by_reason[reason or "(none)"] = by_reason.get(reason or "(none)", 0) + 1
    known = overrides.account >= 0
    fav_overrides = int(favoured_accounts[overrides.account[known]].sum())
    fav_rows = int(favoured_accounts[allocations.account].sum())
    return {
        "records": int(overrides.account.size),
        "by_account": _ranked(by_account),
        "by_person": _ranked(by_person),
        "by_reason_code": _ranked(by_reason),
        "favoured_share_of_overrides": round(fav_overrides / max(int(known.sum()), 1), 4),
        "favoured_share_of_allocations": round(fav_rows / max(len(allocations), 1), 4),
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
