"""FIX 4.4 throughput: messages framed and read, and orders of 20 accounts parsed, allocated and
written as 35=J, per second; a whole ``fairalloc fix allocate`` process; and the same orders
recorded through the ledger (``fix record``'s steps, the ones ``fix serve`` takes per message).

Each order is a 35=D with 20 NoAllocs entries and two 35=8 trades (three messages). Bounded:
2,000 orders, 6,000 messages (60 orders through the ledger). Prints wall and CPU time and the
load average.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fairalloc import load_policy
from fairalloc.fix import allocate_messages
from fairalloc.fix.codec import encode, read_messages

ROOT = Path(__file__).resolve().parent.parent
ORDERS = 2_000
ACCOUNTS = 20
RECORDED = 60
"""Orders recorded through the ledger, in batches of :data:`BATCH` whose messages are stamped just
before they are recorded (the ledger refuses times more than the policy's clock skew away)."""
BATCH = 2
POLICY = ROOT / "policies" / "us-equity-pro-rata.yaml"


def messages_file(orders: int = ORDERS, at: dt.datetime | None = None, first: int = 0) -> bytes:
    """``orders`` orders of :data:`ACCOUNTS` accounts, each filled 60% in two trades, entered at
    ``at`` (2026-03-02 14:30 UTC by default), numbered from ``first``."""
    start = at or dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.timezone.utc)
    trade_date = start.strftime("%Y%m%d")
    entered = start.strftime("%Y%m%d-%H:%M:%S")
    executed = [(start + dt.timedelta(seconds=1 if at else 60 * k)).strftime("%Y%m%d-%H:%M:%S")
                for k in (1, 2)]
    lines = []
    for n in range(first, first + orders):
        order = f"B-{n}"
        intended = [100 * (1 + (i * 7919 + n) % 50) for i in range(ACCOUNTS)]
        total = sum(intended)
        first_qty = second_qty = total * 3 // 10 // 100 * 100
        head = [(49, "OMS"), (56, "BRK"), (34, str(3 * n + 1)), (52, entered)]
        body = [(11, order), (75, trade_date), (78, str(ACCOUNTS))]
        for i, quantity in enumerate(intended):
            body += [(79, f"ACC{i:03d}"), (80, str(quantity))]
        body += [(55, "XYZ"), (167, "CS"), (54, "1"), (60, entered), (38, str(total)), (40, "1")]
        lines.append(encode("D", head, body))
        fills = ((first_qty, "99.95", first_qty), (second_qty, "100.075", first_qty + second_qty))
        for k, (quantity, price, cum) in enumerate(fills):
            report = [(37, "X" + order), (11, order), (17, f"{order}-F{k}"), (150, "F"), (39, "1"), (55, "XYZ"),
                      (54, "1"), (32, str(quantity)), (31, price), (151, str(total - cum)), (14, str(cum)),
                      (6, price), (60, executed[k])]
            lines.append(encode("8", [(49, "BRK"), (56, "OMS"), (34, str(3 * n + 2 + k)), (52, executed[0])],
                                report))
    return b"".join(line + b"\n" for line in lines)


def recorded(folder: str) -> tuple[float, float]:
    """(wall, CPU) seconds to record :data:`RECORDED` orders through the ledger (SQLite)."""
    from fairalloc.fix.record import record_messages
    from fairalloc.ledger import workflow
    from fairalloc.ledger.store import Ledger

    with Ledger(f"sqlite:///{folder}/bench.db", create=True) as ledger:
        me = ledger.actor()
        workflow.initialise(ledger, me, me.name)
        workflow.set_role(ledger, me, me.name, "trader", grant=True)
        workflow.publish_policy(ledger, me, load_policy(POLICY))
        wall = cpu = 0.0
        for first in range(0, RECORDED, BATCH):
            messages = read_messages(messages_file(BATCH, dt.datetime.now(dt.timezone.utc), first), "bench.fix")
            spent = timed(lambda: record_messages(ledger, messages, accounts=None))
            wall, cpu = wall + spent[0], cpu + spent[1]
    return wall, cpu


def timed(action: object) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    assert callable(action)
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    data = messages_file()
    count = data.count(b"\n")
    policy = load_policy(POLICY)
    allocate_messages(policy, read_messages(messages_file(20), "warm.fix"), file="warm.fix")  # warm up
    rows = []
    wall, cpu = timed(lambda: read_messages(data, "bench.fix"))
    rows.append((f"frame + read {count:,} messages (library)", f"{count / wall:,.0f} msg/s",
                 f"{count / cpu:,.0f} msg per cpu-s; wall {wall:.2f} s, cpu {cpu:.2f} s"))
    results: list[object] = []
    wall, cpu = timed(lambda: results.extend(allocate_messages(policy, read_messages(data, "bench.fix"),
                                                               file="bench.fix")))
    assert len(results) == ORDERS
    rows.append((f"read, map, allocate, write 35=J: {ORDERS:,} orders x {ACCOUNTS} accounts (library)",
                 f"{count / wall:,.0f} msg/s", f"{count / cpu:,.0f} msg per cpu-s, {ORDERS / wall:,.0f} orders/s; "
                 f"wall {wall:.2f} s, cpu {cpu:.2f} s"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.fix"
        path.write_bytes(data)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fairalloc", "fix", "allocate", "--policy", str(POLICY),
                        "--messages", str(path), "-o", str(Path(folder) / "out.fix")], check=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rows.append((f"`fairalloc fix allocate` whole process, {count:,} messages", f"{count / wall:,.0f} msg/s",
                 f"{count / cpu:,.0f} msg per cpu-s; wall {wall:.2f} s, cpu {cpu:.2f} s"))
    with tempfile.TemporaryDirectory() as folder:
        wall, cpu = recorded(folder)
    count = 3 * RECORDED
    rows.append((f"record through the ledger (SQLite): {RECORDED} orders, {count} messages",
                 f"{count / wall:,.0f} msg/s", f"{count / cpu:,.0f} msg per cpu-s, {RECORDED / wall:,.0f} orders/s; "
                 f"wall {wall:.2f} s, cpu {cpu:.2f} s"))
    print(f"load average before/after: {load_before} / {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'wall rate':>14}  detail (goal >= 2,000 msg/s)")
    for name, rate, detail in rows:
        print(f"{name:<{width}}  {rate:>14}  {detail}")


if __name__ == "__main__":
    main()
