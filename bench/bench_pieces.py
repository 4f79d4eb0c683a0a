"""Fill pieces: what the search for a closer split (``price.allocation: fill``) costs over the
proportional split alone, on blocks of 100,000 accounts in lots of 100 with 2 and 5 fill prices,
and one whole allocation of such a block at fill price.

Prints, per block, the medians of wall and CPU time of ``split`` without and with the search in
interleaved rounds and their CPU-time ratio, what the search achieved (``closeness``, the largest
deviation and the sum of deviations before and after), the machine and the load average
(``bench/harness.py``); docs/performance.md quotes these figures.
"""

from __future__ import annotations

import datetime as dt
import gc
from fractions import Fraction

from bench import harness
from bench.bench_allocate import BIG_POLICY, trade_document
from fairalloc import allocate, load_trade, policy_from_text
from fairalloc.money import Column, split

FILL_POLICY = BIG_POLICY.replace("method: pro_rata\n", "method: pro_rata\nprice:\n  allocation: fill\n")


def block(accounts: int, fills: int) -> tuple[list[int], tuple[Column, ...]]:
    """Allocations of 1 to 50 lots of 100 (as in bench_allocate) over ``fills`` equal fills at
    prices between 99.95 and 100.44."""
    units = [100 * (1 + (i * 7919 + 1) % 50) for i in range(accounts)]
    total = sum(units)
    sizes = [total // fills // 100 * 100] * (fills - 1)
    sizes.append(total - sum(sizes))
    prices = [Fraction(9995 + (c * 37) % 50, 100) for c in range(fills)]
    return units, tuple(Column(f"F{c}", dt.date(2026, 3, 2), None, size, price)
                        for c, (size, price) in enumerate(zip(sizes, prices)))


def spread(units: list[int], columns: tuple[Column, ...], pieces: dict[int, list[tuple[int, int]]]) -> str:
    """The largest deviation from the block's average and the sum of all, to six decimals."""
    whole = sum((c.units * c.price for c in columns), Fraction(0)) / sum(c.units for c in columns)
    deviations = [abs(sum((u * columns[c].price for c, u in pieces[k]), Fraction(0)) / units[k] - whole)
                  for k in range(len(units))]
    return f"largest {float(max(deviations)):.6f}, sum {float(sum(deviations)):.6f}"


def main() -> None:
    harness.banner()
    for fills in (2, 5):
        units, columns = block(100_000, fills)

        def proportional() -> object:
            gc.collect()
            return split(units, columns, 100, False)

        def searched() -> object:
            gc.collect()
            return split(units, columns, 100, True)

        runs = harness.interleave({"proportional": proportional, "with the search": searched}, rounds=3)
        print(f"\n100,000 accounts, {fills} fills: split")
        print(harness.report(runs, "proportional"))
        before, after = split(units, columns, 100, False), split(units, columns, 100, True)
        print(f"  proportional: {spread(units, columns, before.pieces)}")
        print(f"  with the search ({after.closeness}): {spread(units, columns, after.pieces)}")
    policy = policy_from_text(FILL_POLICY)
    document = trade_document(100_000)
    allocate(policy, load_trade(document))  # warm up
    fresh = iter([load_trade(document) for _ in range(3)])
    timing = harness.median(harness.repeat(lambda: allocate(policy, next(fresh)), 3))
    print(f"\n1 block x 100,000 accounts at fill price, 2 fills (library): {timing.wall * 1000:.0f} ms "
          f"(cpu {timing.cpu * 1000:.0f} ms), median of 3")
    harness.closing()


if __name__ == "__main__":
    main()
