"""Benchmark: ``fairalloc diff --impact`` over 10,000 recorded trades (``python -m bench impact``).

Generates 10,000 US-equity block trades (2 to 12 accounts, 1 to 3 fills, some performance-fee and
proprietary accounts, partial and complete fills, spread over a year of trade dates), writes a
second version of ``policies/us-equity-pro-rata.yaml`` that changes the minimum, the remainder
rule and adds a zero rule, and times the command end to end in a fresh process — reading every
trade file, compiling both policies, replaying and writing the Markdown and JSON reports.
The figures go in ``docs/performance.md`` (section "Policy review").
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import harness

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "us-equity-pro-rata.yaml"
TRADES = 10_000
NEW_RULE = """  - id: performance-fee-partial-fill
    when: 'account.fee_basis == "performance" and fill.ratio < 50%'
    action: zero
    reason: Performance-fee accounts stand aside when less than half the block fills.

"""


def new_version(text: str) -> str:
    """Version 2 of the US equity policy: minimum 500, odd lots to the smallest account, one new rule."""
    return (text.replace("version: 1", "version: 2")
            .replace("  absolute: 100", "  absolute: 500")
            .replace("  remainder: largest_remainder", "  remainder: smallest_account")
            .replace("overrides:", NEW_RULE + "overrides:"))


def _account(rng: random.Random, index: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"account": f"ACCT-{index:03d}", "intended": rng.choice([200, 500, 1000, 2500, 5000, 20000])}
    roll = rng.random()
    if roll < 0.15:
        entry["attributes"] = {"fee_basis": "performance"}
    elif roll < 0.2:
        entry["attributes"] = {"proprietary": True}
    return entry


def trade_document(rng: random.Random, number: int) -> dict[str, Any]:
    """One plausible block order with its statement and fills."""
    day = dt.date(2026, 1, 2) + dt.timedelta(days=number % 365)
    accounts = [_account(rng, i) for i in rng.sample(range(400), rng.randint(2, 12))]
    total = sum(entry["intended"] for entry in accounts)
    filled = total if rng.random() < 0.2 else rng.randint(1, total)
    pieces = sorted(rng.sample(range(1, filled), min(rng.randint(0, 2), filled - 1)))
    bounds = [0, *pieces, filled]
    fills = [{"id": f"F-{k + 1}", "quantity": bounds[k + 1] - bounds[k], "price": f"{rng.randint(500, 50000) / 100:.2f}",
              "executed_at": f"{day.isoformat()}T14:{31 + k:02d}:00Z"} for k in range(len(bounds) - 1)]
    return {
        "order": {"id": f"BLK-{number:05d}", "symbol": rng.choice(["XYZ", "ABC", "QRS"]), "side": "buy",
                  "quantity": total, "trade_date": day.isoformat(), "entered_at": f"{day.isoformat()}T14:30:00Z",
                  "security": {"asset_class": "equity"}},
        "statement": {"recorded_at": f"{day.isoformat()}T14:29:00Z", "recorded_by": "pm.bench", "accounts": accounts},
        "fills": fills,
    }


def generate_trades(folder: Path, count: int, seed: int = 2026) -> None:
    """Write ``count`` trade documents into ``folder`` (deterministic for a seed)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        (folder / f"{number:05d}.json").write_text(json.dumps(trade_document(rng, number)), encoding="utf-8")


def _summary(markdown: str) -> dict[str, str]:
    """The impact summary table of the Markdown report, as label → value."""
    rows = [line.strip("|").split("|") for line in markdown.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): cells[1].strip() for cells in rows if len(cells) == 2}


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        started = time.perf_counter()
        generate_trades(work / "trades", TRADES)
        print(f"generated {TRADES} trades in {time.perf_counter() - started:.1f} s")
        (work / "v2.yaml").write_text(new_version(POLICY.read_text(encoding="utf-8")), encoding="utf-8")
        command = [sys.executable, "-m", "fairalloc", "diff", str(POLICY), str(work / "v2.yaml"),
                   "--impact", str(work / "trades"), "--format", "table", "--no-progress",
                   "--markdown", str(work / "impact.md")]
        harness.banner()
        timing = harness.timed_process(command, stdout=subprocess.DEVNULL, cwd=ROOT)
        summary = _summary((work / "impact.md").read_text(encoding="utf-8"))
        print(f"diff --impact over {TRADES} trades: {timing.wall:.1f} s wall, {timing.cpu:.1f} s CPU over "
              f"{os.cpu_count()} core(s) (target: under 30 s wall)")
        print(f"  orders changed {summary['orders whose allocation changes']}, account allocations changed "
              f"{summary['account allocations that change']}, shares added {summary['shares added to accounts']}, "
              f"taken {summary['shares taken from accounts']}")
        harness.closing()


if __name__ == "__main__":
    main()
