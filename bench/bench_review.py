"""Forensic review speed: a synthetic history of 10 million allocation rows, reviewed end to end.

Prints the generation time, the review time (read + validate + all analyses + JSON + HTML) and
peak memory. ``FAIRALLOC_BENCH_ROWS`` changes the size (default 10,000,000).
"""

from __future__ import annotations

import json
import os
import pathlib
import resource
import tempfile
import time

from fairalloc.forensics.findings import dumps
from fairalloc.forensics.review import ReviewConfig, run
from fairalloc.forensics.simulate import PERFORMANCE_FAVOURED, CherryPicker, FirmSpec, simulate
from fairalloc.forensics.write import write_outputs

ACCOUNTS = 100
PARTICIPATION = 0.5


def main() -> None:
    rows = int(os.environ.get("FAIRALLOC_BENCH_ROWS", "10000000"))
    orders = max(1, round(rows / (ACCOUNTS * PARTICIPATION)))
    with tempfile.TemporaryDirectory() as folder:
        out = pathlib.Path(folder)
        start = time.perf_counter()
        firm = simulate(
            FirmSpec(seed=1, accounts=ACCOUNTS, orders=orders, participation=PARTICIPATION,
                     symbols=500, cherry=CherryPicker(rate=0.2)),
            out / "history",
        )
        generated = time.perf_counter() - start
        size = firm.allocations.stat().st_size / 2**20
        print(f"generated {firm.rows:,} allocation rows ({size:,.0f} MiB CSV) in {generated:.1f} s")
        stages: list[str] = []
        start = time.perf_counter()
        cpu = time.process_time()
        mark = [start]

        def advance(stage: str) -> None:
            now = time.perf_counter()
            stages.append(f"{stage} {now - mark[0]:.1f} s")
            mark[0] = now

        review = run(ReviewConfig(firm.allocations, firm.prices, firm.overrides,
                                  favoured=PERFORMANCE_FAVOURED), advance)
        write_outputs(review, out / "review")
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        flagged = sum(f.flagged for f in review.findings)
        document = json.loads(dumps(review.document))
        draws = [c["monte_carlo"]["draws"] for c in document["analyses"]["returns"]["comparisons"]
                 if c.get("tested")]
        print(f"reviewed {firm.rows:,} rows in {elapsed:.1f} s wall, {cpu:.1f} s CPU "
              f"({firm.rows / elapsed:,.0f} rows/s), peak RSS {peak:.1f} GiB, "
              f"{flagged} findings flagged, Monte Carlo draws made {draws}")
        print("stages (wall): " + "; ".join(stages))
        print("load average during the run (1/5/15 min): "
              + " ".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
