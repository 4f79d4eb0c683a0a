"""Forensic review speed: a synthetic history of 10 million allocation rows, reviewed end to end.

Prints the generation time, then the review's wall and CPU time (read + validate + all analyses +
JSON + HTML), its stages, the system part of the CPU time and the minor page faults, the peak
resident memory of the process and the load average of the machine. Environment:

* ``FAIRALLOC_BENCH_ROWS`` — the size (default 10,000,000);
* ``FAIRALLOC_BENCH_FORMAT`` — ``csv`` (default) or ``parquet``: the simulated CSV files are
  converted (untimed) to Parquet with typed columns (DECIMAL prices, zoned TIMESTAMPs, integers)
  and the review reads those;
* ``FAIRALLOC_BENCH_HISTORY`` — a folder to keep the simulated history in and to reuse on the
  next run (generating 10 million rows takes minutes); by default a temporary folder.

Run it in a process of its own (``python -m bench review``): the peak memory is the process's.
"""

from __future__ import annotations

import os
import pathlib
import resource
import tempfile
import time

import polars as pl

from fairalloc.forensics.review import ReviewConfig, run
from fairalloc.forensics.simulate import PERFORMANCE_FAVOURED, CherryPicker, FirmSpec, simulate
from fairalloc.forensics.write import write_outputs

ACCOUNTS = 100
PARTICIPATION = 0.5
NAMES = ("allocations", "prices", "overrides")
TIMESTAMPS = ("allocated_at", "executed_at", "recorded_at")
INTEGERS = ("quantity", "intended", "order_quantity", "order_filled")
DECIMALS = {"price": 2, "close": 2}  # the simulator writes cents


def _history(folder: pathlib.Path, rows: int) -> None:
    """Simulate the history into ``folder`` unless it is already there."""
    if all((folder / f"{name}.csv").exists() for name in NAMES):
        print(f"reusing the history in {folder}")
        return
    orders = max(1, round(rows / (ACCOUNTS * PARTICIPATION)))
    start = time.perf_counter()
    firm = simulate(
        FirmSpec(seed=1, accounts=ACCOUNTS, orders=orders, participation=PARTICIPATION,
                 symbols=500, cherry=CherryPicker(rate=0.2)),
        folder,
    )
    size = firm.allocations.stat().st_size / 2**20
    print(f"generated {firm.rows:,} allocation rows ({size:,.0f} MiB CSV) in "
          f"{time.perf_counter() - start:.1f} s")


def _to_parquet(folder: pathlib.Path) -> None:
    """Typed Parquet copies of the CSV files, written by a streaming query (not timed)."""
    for name in NAMES:
        target = folder / f"{name}.parquet"
        if target.exists():
            continue
        source = pl.scan_csv(folder / f"{name}.csv", infer_schema=False)
        casts = []
        for column in source.collect_schema():
            if column in DECIMALS:
                casts.append(pl.col(column).cast(pl.Decimal(18, DECIMALS[column])))
            elif column in TIMESTAMPS:
                casts.append(pl.col(column).str.to_datetime("%+", time_zone="UTC", time_unit="us"))
            elif column in INTEGERS:
                casts.append(pl.col(column).cast(pl.Int64))
            else:
                casts.append(pl.col(column))
        source.select(casts).sink_parquet(target)
    size = (folder / "allocations.parquet").stat().st_size / 2**20
    print(f"converted to Parquet ({size:,.0f} MiB allocations)")


def main() -> None:
    rows = int(os.environ.get("FAIRALLOC_BENCH_ROWS", "10000000"))
    form = os.environ.get("FAIRALLOC_BENCH_FORMAT", "csv")
    kept = os.environ.get("FAIRALLOC_BENCH_HISTORY")
    with tempfile.TemporaryDirectory() as scratch:
        folder = pathlib.Path(kept) if kept else pathlib.Path(scratch) / "history"
        _history(folder, rows)
        if form == "parquet":
            _to_parquet(folder)
        files = [folder / f"{name}.{form}" for name in NAMES]
        stages: list[str] = []
        mark = [time.perf_counter(), time.process_time()]

        def advance(stage: str) -> None:
            now = (time.perf_counter(), time.process_time())
            stages.append(f"{stage} {now[0] - mark[0]:.1f} s / {now[1] - mark[1]:.1f} s")
            mark[:] = now

        start, cpu = time.perf_counter(), time.process_time()
        before = resource.getrusage(resource.RUSAGE_SELF)
        review = run(ReviewConfig(files[0], files[1], files[2], favoured=PERFORMANCE_FAVOURED),
                     advance)
        write_outputs(review, pathlib.Path(scratch) / "review")
        advance("findings.json and report.html")
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_SELF)
        peak = after.ru_maxrss / 2**20
        flagged = sum(f.flagged for f in review.findings)
        inputs = review.document["inputs"]
        assert isinstance(inputs, dict)
        read = inputs["files"][0]["read"]
        print(f"reviewed {read:,} allocation rows ({form}) in {elapsed:.1f} s wall, {cpu:.1f} s "
              f"CPU; peak RSS {peak:.2f} GiB; {flagged} findings flagged")
        print("stages (wall / CPU): " + "; ".join(stages))
        print(f"of the CPU time, system time (the kernel's: mostly mapping fresh memory) "
              f"{after.ru_stime - before.ru_stime:.1f} s, "
              f"{after.ru_minflt - before.ru_minflt:,} minor page faults")
        print("load average at the end (1/5/15 min): "
              + " ".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
