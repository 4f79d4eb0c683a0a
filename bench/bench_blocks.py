"""Small blocks of several sizes and policies, from files to document text, beside their limit.

The small-block comparison of ``bench_limits`` (``json``, an integer largest remainder in plain
Python, ``json``) at other block sizes and under a second policy, so that a gain measured on its
20-account blocks can be seen to hold for small statements in general: blocks of 5, 20 and 60
accounts, under the benchmark's policy (an ``exclude`` rule and a ``flag`` rule over two
attributes) and under one that also weighs by an expression over a number attribute, caps some
accounts by a ``cap`` rule over two string attributes, and declares four attributes. Interleaved
rounds, the CPU ratio per round (``bench/harness.py``); ``FAIRALLOC_BENCH_ROUNDS=N`` sets the
rounds (default 5).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from bench import harness
from bench.bench_allocate import BIG_POLICY, trade_document
from bench.bench_limits import baseline_texts
from fairalloc import allocate, load_trade, policy_from_text
from fairalloc.cli._io import dump_allocation
from fairalloc.plan import Policy

ROUNDS = int(os.environ.get("FAIRALLOC_BENCH_ROUNDS", "5"))
SIZES = (5, 20, 60)

WEIGHED_POLICY = BIG_POLICY.replace(
    "    restricted: {type: boolean, default: false}\n",
    "    restricted: {type: boolean, default: false}\n    region: {type: string, default: us}\n"
    "    score: {type: number, default: 1}\n",
).replace("method: pro_rata\n", "method: pro_rata\npro_rata:\n  weight: 'account.intended * account.score'\n") + (
    "  - id: cap-retail-eu\n"
    "    when: 'account.type == \"retail\" and account.region == \"eu\"'\n"
    "    action: cap\n"
    "    quantity: 5000\n"
    "    reason: retail accounts in the EU take at most 5000\n"
)
"""The benchmark's policy with a weight expression, a cap rule and two more attributes."""


def main() -> None:
    harness.banner()
    with tempfile.TemporaryDirectory() as folder:
        for name, text in (("exclude + flag", BIG_POLICY), ("weight + cap + 4 attributes", WEIGHED_POLICY)):
            policy = policy_from_text(text)
            for size in SIZES:
                files = []
                for seed in range(2_000 if size <= 20 else 800):
                    document = trade_document(size, seed)
                    for i, account in enumerate(document["statement"]["accounts"]):
                        if text is WEIGHED_POLICY:
                            account["attributes"].update(region="eu" if (i + seed) % 4 == 0 else "us", score=1 + i % 3)
                    path = Path(folder) / f"{size}-{seed}.json"
                    path.write_text(json.dumps(document))
                    files.append(path)

                def ours(files: list[Path] = files, policy: Policy = policy) -> object:
                    return [dump_allocation(allocate(policy, load_trade(path))) for path in files]

                def limit(files: list[Path] = files) -> object:
                    return baseline_texts(files)

                runs = harness.interleave({"fairalloc": ours, "limit": limit}, rounds=ROUNDS)
                ratio, low, high = runs.ratio("fairalloc", "limit")
                each = {label: harness.median(timings).cpu / len(files) * 1e6 for label, timings in runs.timings.items()}
                print(f"{name}, {len(files):,} blocks of {size} accounts: {each['fairalloc']:.0f} us of CPU a block "
                      f"against {each['limit']:.0f} us, {ratio:.2f}x ({low:.2f}-{high:.2f})", flush=True)
    harness.closing()


if __name__ == "__main__":
    main()
