"""Allocation speed: one block over 100,000 accounts, 10,000 blocks of 20, policy loading,
and whole ``fairalloc`` processes (validate; allocate of the 100,000-account trade, JSON in and out).

Prints medians; the figures in docs/performance.md come from this script.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fairalloc import allocate, load_policy, load_trade, policy_from_text

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


def median_seconds(action: Callable[[], object], repeat: int,
                   clock: Callable[[], float] = time.perf_counter) -> float:
    """Median seconds of ``action`` by ``clock``: wall time, or ``time.process_time`` for this
    process's CPU time, which other jobs on a shared machine disturb far less."""
    times = []
    for _ in range(repeat):
        start = clock()
        action()
        times.append(clock() - start)
    return statistics.median(times)


TIERED_POLICY = BIG_POLICY.replace(
    "    restricted: {type: boolean, default: false}\n",
    "    restricted: {type: boolean, default: false}\n    tier: {type: number, default: 3}\n",
).replace("method: pro_rata\n", "method: pro_rata\npro_rata:\n  priority: 'account.tier'\n")
"""The benchmark's policy with priority tiers (``pro_rata.priority``): the issue's bar is this
block within 1.5x of the plain block's time."""


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


def tiers_against_plain(accounts: int = 100_000, rounds: int = 7) -> tuple[float, float, float, float]:
    """Median CPU and wall seconds of the plain and the tiered block, measured in interleaved
    rounds (plain, tiered, plain, ...) so that load on a shared machine falls on both alike:
    (plain CPU, tiered CPU, plain wall, tiered wall)."""
    plain_policy, tiered_policy = policy_from_text(BIG_POLICY), policy_from_text(TIERED_POLICY)
    plain_document, tiered_document_ = trade_document(accounts), tiered_document(accounts)
    assert tiered_policy.priority is not None
    allocate(plain_policy, load_trade(plain_document))  # warm up both
    allocate(tiered_policy, load_trade(tiered_document_))
    times: dict[str, list[tuple[float, float]]] = {"plain": [], "tiered": []}
    for _ in range(rounds):
        for name, policy, document in (("plain", plain_policy, plain_document),
                                       ("tiered", tiered_policy, tiered_document_)):
            trade = load_trade(document)  # a fresh trade object: nothing is reused between runs
            cpu, wall = time.process_time(), time.perf_counter()
            allocate(policy, trade)
            times[name].append((time.process_time() - cpu, time.perf_counter() - wall))
    cpu_of = {name: statistics.median(t[0] for t in runs) for name, runs in times.items()}
    wall_of = {name: statistics.median(t[1] for t in runs) for name, runs in times.items()}
    return cpu_of["plain"], cpu_of["tiered"], wall_of["plain"], wall_of["tiered"]


def tier_rows() -> list[tuple[str, str, str]]:
    plain_cpu, tiered_cpu, plain_wall, tiered_wall = tiers_against_plain()
    return [("1 block x 100,000 accounts with 3 priority tiers (library)",
             f"{tiered_wall * 1000:.0f} ms (cpu {tiered_cpu * 1000:.0f} ms)", ""),
            ("  tiered / plain, interleaved rounds",
             f"{tiered_cpu / plain_cpu:.2f}x cpu, {tiered_wall / plain_wall:.2f}x wall", "<= 1.5x")]


def run_cli(*args: str) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one whole ``fairalloc`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fairalloc", *args], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    policy = policy_from_text(BIG_POLICY)
    rows: list[tuple[str, str, str]] = []

    document = trade_document(100_000)
    allocate(policy, load_trade(document))  # warm up (imports, the rules' columnar forms)
    # a fresh trade object for every run: nothing read from a statement is reused between runs
    fresh = iter([load_trade(document) for _ in range(12)])
    seconds = median_seconds(lambda: allocate(policy, next(fresh)), 7)
    cpu = median_seconds(lambda: allocate(policy, next(fresh)), 5, time.process_time)
    rows.append(("1 block x 100,000 accounts, lots of 100, 2 rules/account (library)",
                 f"{seconds * 1000:.0f} ms (cpu {cpu * 1000:.0f} ms)", "<= 100 ms"))
    fresh = iter([load_trade(document) for _ in range(5)])
    seconds = median_seconds(lambda: allocate(policy, next(fresh)).document(), 5)
    rows.append(("  the same, including the contract document", f"{seconds * 1000:.0f} ms", ""))
    accounts = document["statement"]["accounts"]
    shuffled = dict(document, statement=dict(document["statement"],
                                             accounts=random.Random(7).sample(accounts, len(accounts))))
    shuffled = json.loads(json.dumps(shuffled))  # objects laid out in statement order, as a parser makes them
    fresh = iter([load_trade(shuffled) for _ in range(5)])
    seconds = median_seconds(lambda: allocate(policy, next(fresh)), 5)
    rows.append(("  the same, statement not in account-id order", f"{seconds * 1000:.0f} ms", ""))
    fresh = iter([load_trade(document) for _ in range(3)])
    seconds = median_seconds(lambda: allocate(policy, next(fresh)).document(explain=True), 3)
    rows.append(("  the same, with --explain for every account", f"{seconds * 1000:.0f} ms", ""))

    rows.extend(tier_rows())

    small = [load_trade(trade_document(20, seed)) for seed in range(10_000)]
    start = time.perf_counter()
    for trade in small:
        allocate(policy, trade)
    per_second = len(small) / (time.perf_counter() - start)
    rows.append(("10,000 blocks x 20 accounts (library)", f"{per_second:,.0f} blocks/s", ">= 5,000 blocks/s"))

    shipped = ROOT / "policies" / "us-equity-pro-rata.yaml"
    load_policy(shipped)
    seconds = median_seconds(lambda: load_policy(shipped), 50)
    rows.append(("load + validate a shipped policy (warm)", f"{seconds * 1000:.1f} ms", "<= 20 ms"))

    with tempfile.TemporaryDirectory() as folder:
        trade_path = Path(folder) / "big.json"
        trade_path.write_text(json.dumps(trade_document(100_000)))
        policy_path = Path(folder) / "big.yaml"
        policy_path.write_text(BIG_POLICY)
        runs = [run_cli("validate", str(shipped)) for _ in range(5)]
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        rows.append(("`fairalloc validate` whole process", f"{wall:.2f} s (cpu {cpu:.2f} s)", "<= 0.5 s"))
        runs = [run_cli("allocate", "--policy", str(policy_path), "--trade", str(trade_path), "-o",
                        str(Path(folder) / "out.json")) for _ in range(3)]
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        rows.append(("`fairalloc allocate` 100,000 accounts, JSON in and out", f"{wall:.2f} s (cpu {cpu:.2f} s)",
                     "<= 2 s"))

    print(f"load average before/after: {load_before} / {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'median':>18}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>18}  {target}")


if __name__ == "__main__":
    main()
