"""Allocation speed: one block over 100,000 accounts, 10,000 blocks of 20, policy loading,
and whole ``fairalloc`` processes (validate; allocate of the 100,000-account trade, JSON in and out).

Prints medians of wall and CPU time, the machine and the load average (``bench/harness.py``);
the figures in docs/performance.md come from this script.
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import harness
from fairalloc import Policy, Trade, allocate, load_policy, load_trade, policy_from_text

ROOT = Path(__file__).resolve().parent.parent

BIG_POLICY = """
fairalloc: 1
id: bench-large
version: 1
effective: 2026-01-01
owner: bench
attributes:
  account:
    type: {type: string, values: [institutional, retail], default: retail}
    restricted: {type: boolean, default: false}
method: pro_rata
rounding:
  lot: 100
  method: largest_remainder
rules:
  - id: restricted
    when: 'account.restricted'
    action: exclude
    reason: restricted account
  - id: small-institutional
    when: 'account.type == "institutional" and allocation < 1% * account.intended and fill.ratio < 0.5'
    action: flag
    reason: institutional account received a sliver of a poorly filled order
"""


COSTS = """
costs:
  basis: quantity
  residual: largest_remainder
  by_cost:
    sec_fee: {basis: notional}
"""
"""Commissions by quantity and an SEC fee by notional, on top of BIG_POLICY."""


def with_costs(document: dict[str, Any]) -> dict[str, Any]:
    """The same block with a commission on each fill and an SEC fee on the order."""
    costly: dict[str, Any] = json.loads(json.dumps(document))
    costly["order"]["costs"] = {"sec_fee": "123.47"}
    for fill in costly["fills"]:
        fill["costs"] = {"commission": "2741.13"}
    return costly


def trade_document(accounts: int, seed: int = 1) -> dict[str, Any]:
    """A block over ``accounts`` accounts, partially filled, with attributes the rules read."""
    intended = [100 * (1 + (i * 7919 + seed) % 50) for i in range(accounts)]
    total = sum(intended)
    filled = (total * 37 // 100) // 100 * 100 + 37
    return {
        "order": {"id": f"B-{seed}", "symbol": "XYZ", "side": "buy", "quantity": total, "trade_date": "2026-03-02",
                  "entered_at": "2026-03-02T14:30:00Z"},
        "statement": {
            "recorded_at": "2026-03-02T14:00:00Z", "recorded_by": "pm",
            "accounts": [
                {"account": f"ACC{i:06d}", "intended": q,
                 "attributes": {"type": "institutional" if i % 3 == 0 else "retail", "restricted": i % 97 == 0}}
                for i, q in enumerate(intended)
            ],
        },
        "fills": [
            {"id": "F1", "quantity": filled // 2, "price": "99.95", "executed_at": "2026-03-02T14:31:00Z"},
            {"id": "F2", "quantity": filled - filled // 2, "price": "100.075", "executed_at": "2026-03-02T14:40:00Z"},
        ],
    }


def measured(action: Callable[[], object], repeat: int) -> str:
    """Median wall and CPU time of ``repeat`` runs of ``action``, as a table cell."""
    timing = harness.median(harness.repeat(action, repeat))
    return f"{timing.wall * 1000:.0f} ms (cpu {timing.cpu * 1000:.0f} ms)"


TIERED_POLICY = BIG_POLICY.replace(
    "    restricted: {type: boolean, default: false}\n",
    "    restricted: {type: boolean, default: false}\n    tier: {type: number, default: 3}\n",
).replace("method: pro_rata\n", "method: pro_rata\npro_rata:\n  priority: 'account.tier'\n")
"""The benchmark's policy with priority tiers (``pro_rata.priority``); with :data:`COSTS` added,
the issue's bar is that block within 1.5x of the plain block's time."""


def tiered_document(accounts: int) -> dict[str, Any]:
    """:func:`trade_document` with three tiers: every 10th account tier 1, every 3rd tier 2, the
    rest tier 3 (default); the fill covers tier 1 and runs short in tier 2."""
    document = trade_document(accounts)
    for i, account in enumerate(document["statement"]["accounts"]):
        if i % 10 == 0:
            account["attributes"]["tier"] = 1
        elif i % 3 == 0:
            account["attributes"]["tier"] = 2
    return document


def tiers_and_costs_against_plain(accounts: int = 100_000,
                                  rounds: int = 5) -> tuple[harness.Timing, harness.Timing, float, float, float]:
    """The plain block and the block with priority tiers and shared costs (TIERED_POLICY + COSTS),
    in interleaved rounds (the order alternating), each run on a freshly loaded trade after the
    previous run's garbage is collected; the median timings of the plain block and of the tiered
    block with costs, and the latter's CPU-time ratio to the former in the same round (median,
    min, max)."""
    plain_policy, combined_policy = policy_from_text(BIG_POLICY), policy_from_text(TIERED_POLICY + COSTS)
    assert combined_policy.priority is not None and combined_policy.pricing.costs is not None
    plain_document, combined_document = trade_document(accounts), with_costs(tiered_document(accounts))
    candidates = ((plain_policy, plain_document), (combined_policy, combined_document))
    for policy, document in candidates:  # warm up (imports, the rules' columnar forms)
        allocate(policy, load_trade(document))
    plain: list[harness.Timing] = []
    combined: list[harness.Timing] = []
    for number in range(rounds):
        order = list(zip(candidates, (plain, combined)))
        for (policy, document), times in order[number % 2:] + order[:number % 2]:
            times.append(_one_allocation(policy, load_trade(document)))
    each = [b.cpu / max(a.cpu, 1e-9) for a, b in zip(plain, combined)]
    return harness.median(plain), harness.median(combined), statistics.median(each), min(each), max(each)


def _one_allocation(policy: Policy, trade: Trade) -> harness.Timing:
    gc.collect()  # the previous run's garbage is collected before, not during, this one
    return harness.timed(lambda: allocate(policy, trade))[1]


def tier_and_cost_rows() -> list[tuple[str, str, str]]:
    plain, middle, ratio, low, high = tiers_and_costs_against_plain()
    return [("1 block x 100,000 accounts, 3 priority tiers, commissions and an SEC fee shared (library)",
             f"{middle.wall * 1000:.0f} ms (cpu {middle.cpu * 1000:.0f} ms; plain cpu {plain.cpu * 1000:.0f} ms)", ""),
            ("  tiers and costs / plain, CPU time in interleaved rounds", f"{ratio:.2f}x ({low:.2f}-{high:.2f})",
             "<= 1.5x")]


def run_cli(*args: str) -> harness.Timing:
    """Wall-clock and CPU (user + system) seconds of one whole ``fairalloc`` process."""
    return harness.timed_process(harness.python("-m", "fairalloc", *args), stdout=subprocess.DEVNULL)


def main() -> None:
    harness.banner()
    policy = policy_from_text(BIG_POLICY)
    rows: list[tuple[str, str, str]] = []

    document = trade_document(100_000)
    allocate(policy, load_trade(document))  # warm up (imports, the rules' columnar forms)
    # a fresh trade object for every run: nothing read from a statement is reused between runs
    fresh = iter([load_trade(document) for _ in range(7)])
    rows.append(("1 block x 100,000 accounts, lots of 100, 2 rules/account (library)",
                 measured(lambda: allocate(policy, next(fresh)), 7), "<= 100 ms"))
    fresh = iter([load_trade(document) for _ in range(5)])
    rows.append(("  the same, including the contract document",
                 measured(lambda: allocate(policy, next(fresh)).document(), 5), ""))
    accounts = document["statement"]["accounts"]
    shuffled = dict(document, statement=dict(document["statement"],
                                             accounts=random.Random(7).sample(accounts, len(accounts))))
    shuffled = json.loads(json.dumps(shuffled))  # objects laid out in statement order, as a parser makes them
    fresh = iter([load_trade(shuffled) for _ in range(5)])
    rows.append(("  the same, statement not in account-id order", measured(lambda: allocate(policy, next(fresh)), 5), ""))
    fresh = iter([load_trade(document) for _ in range(3)])
    rows.append(("  the same, with --explain for every account",
                 measured(lambda: allocate(policy, next(fresh)).document(explain=True), 3), ""))

    rows.extend(tier_and_cost_rows())

    small = [load_trade(trade_document(20, seed)) for seed in range(10_000)]
    _, timing = harness.timed(lambda: [allocate(policy, trade) for trade in small])
    rows.append(("10,000 blocks x 20 accounts (library)",
                 f"{len(small) / timing.wall:,.0f} blocks/s (cpu {len(small) / timing.cpu:,.0f})", ">= 5,000 blocks/s"))

    shipped = ROOT / "policies" / "us-equity-pro-rata.yaml"
    load_policy(shipped)
    timing = harness.median(harness.repeat(lambda: load_policy(shipped), 50))
    rows.append(("load + validate a shipped policy (warm)",
                 f"{timing.wall * 1000:.1f} ms (cpu {timing.cpu * 1000:.1f} ms)", "<= 20 ms"))

    with tempfile.TemporaryDirectory() as folder:
        trade_path = Path(folder) / "big.json"
        trade_path.write_text(json.dumps(trade_document(100_000)))
        policy_path = Path(folder) / "big.yaml"
        policy_path.write_text(BIG_POLICY)
        timing = harness.median([run_cli("validate", str(shipped)) for _ in range(5)])
        rows.append(("`fairalloc validate` whole process", f"{timing.wall:.2f} s (cpu {timing.cpu:.2f} s)", "<= 0.5 s"))
        timing = harness.median([run_cli("allocate", "--policy", str(policy_path), "--trade", str(trade_path), "-o",
                                         str(Path(folder) / "out.json")) for _ in range(3)])
        rows.append(("`fairalloc allocate` 100,000 accounts, JSON in and out",
                     f"{timing.wall:.2f} s (cpu {timing.cpu:.2f} s)", "<= 2 s"))

    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'median':>18}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>18}  {target}")
    harness.closing()


if __name__ == "__main__":
    main()
