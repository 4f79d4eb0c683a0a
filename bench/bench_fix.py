"""FIX 4.4 throughput: messages framed and read, and orders of 20 accounts parsed, allocated and
written as 35=J, per second; a whole ``fairalloc fix allocate`` process; and the same orders
recorded through the ledger (``fix record``'s steps, the ones ``fix serve`` takes per message).

Each order is a 35=D with 20 NoAllocs entries and two 35=8 trades (three messages). Bounded:
2,000 orders, 6,000 messages, the median of three runs (60 orders through the ledger, once).
Prints wall and CPU time, the machine and the load average (:mod:`bench.harness`).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from bench import harness
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
ROUNDS = 3
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
            _, spent = harness.timed(lambda: record_messages(ledger, messages, accounts=None))
            wall, cpu = wall + spent.wall, cpu + spent.cpu
    return wall, cpu


def row(name: str, timing: harness.Timing, count: int, orders: int | None = None) -> tuple[str, str, str]:
    detail = f"{count / timing.cpu:,.0f} msg per cpu-s"
    if orders is not None:
        detail += f", {orders / timing.wall:,.0f} orders/s"
    return name, f"{count / timing.wall:,.0f} msg/s", f"{detail}; wall {timing.wall:.2f} s, cpu {timing.cpu:.2f} s"


def main() -> None:
    harness.banner()
    data = messages_file()
    count = data.count(b"\n")
    policy = load_policy(POLICY)
    allocate_messages(policy, read_messages(messages_file(20), "warm.fix"), file="warm.fix")  # warm up
    rows = [row(f"frame + read {count:,} messages (library)",
                harness.median(harness.repeat(lambda: read_messages(data, "bench.fix"), ROUNDS)), count)]
    results: list[object] = []
    timings = harness.repeat(lambda: results.append(allocate_messages(policy, read_messages(data, "bench.fix"),
                                                                      file="bench.fix")), ROUNDS)
    assert all(len(r) == ORDERS for r in results if isinstance(r, list))
    rows.append(row(f"read, map, allocate, write 35=J: {ORDERS:,} orders x {ACCOUNTS} accounts (library)",
                    harness.median(timings), count, ORDERS))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.fix"
        path.write_bytes(data)
        command = harness.python("-m", "fairalloc", "fix", "allocate", "--policy", str(POLICY),
                                 "--messages", str(path), "-o", str(Path(folder) / "out.fix"))
        whole = harness.median([harness.timed_process(command) for _ in range(ROUNDS)])
    rows.append(row(f"`fairalloc fix allocate` whole process, {count:,} messages", whole, count))
    with tempfile.TemporaryDirectory() as folder:
        wall, cpu = recorded(folder)
    rows.append(row(f"record through the ledger (SQLite): {RECORDED} orders, {3 * RECORDED} messages",
                    harness.Timing(wall, cpu), 3 * RECORDED, RECORDED))
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark (median of ' + str(ROUNDS) + ' runs; the ledger once)':<{width}}  {'wall rate':>14}  "
          "detail (goal >= 2,000 msg per cpu-s)")
    for name, rate, detail in rows:
        print(f"{name:<{width}}  {rate:>14}  {detail}")
    harness.closing()


if __name__ == "__main__":
    main()
