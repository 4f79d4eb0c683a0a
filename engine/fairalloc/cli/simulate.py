"""``fairalloc simulate``: write a synthetic firm-year in the allocation-history format.

Optionally with an injected cherry-picker (who benefits, how often, how strongly, whether memos
are back-dated) — for demos, documentation and power tests. Exit status 0, or 7 when the output
folder cannot be written.
"""

from __future__ import annotations

import argparse
import pathlib

from collections.abc import Callable

from fairalloc.errors import Diagnostic, ExitCode, FileAccessError, Location
from fairalloc.forensics.simulate import PERFORMANCE_FAVOURED, CherryPicker, FirmSpec, simulate


def _within(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number of ``kind`` from ``low`` to ``high``, else a usage error (exit 2):
    a firm with no accounts or orders, a share above 1 or year 0 has no simulation."""
    def parse(text: str) -> float:
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not from {low:g} to {high:g}")
        return value
    parse.__name__ = kind.__name__
    return parse


_COUNT = _within(int, 1, 10**7)
_SHARE = _within(float, 0, 1)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="write a synthetic firm-year of allocation history (optionally with a cherry-picker)",
        description="Synthetic firm-year in the allocation-history format (docs/forensics.md).",
    )
    parser.add_argument("out", type=pathlib.Path, help="folder to write the CSV files into")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--year", type=_within(int, 1900, 9998), default=2025)
    parser.add_argument("--accounts", type=_COUNT, default=12)
    parser.add_argument("--orders", type=_COUNT, default=250)
    parser.add_argument("--participation", type=_SHARE, default=0.6,
                        help="chance that an account takes part in an order")
    parser.add_argument("--partial-share", type=_SHARE, default=0.3,
                        help="share of orders only partly filled")
    parser.add_argument("--symbols", type=_COUNT, default=40)
    parser.add_argument("--cherry-picker", action="store_true",
                        help="inject a portfolio manager who allocates after seeing the close")
    parser.add_argument("--favoured", default=PERFORMANCE_FAVOURED,
                        help="who the cherry-picker favours (expression over account attributes)")
    parser.add_argument("--rate", type=_SHARE, default=1.0,
                        help="share of eligible orders he intervenes in (how often)")
    parser.add_argument("--strength", type=_SHARE, default=1.0,
                        help="0..1, how far he moves from pro rata (how strongly)")
    parser.add_argument("--all-fills", action="store_true",
                        help="intervene in completely filled orders too, not only partial fills")
    parser.add_argument("--backdate", action="store_true",
                        help="forge contemporaneous timestamps on his allocations and memos")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    cherry = (
        CherryPicker(favoured=args.favoured, rate=args.rate, strength=args.strength,
                     partial_only=not args.all_fills, backdate=args.backdate)
        if args.cherry_picker
        else None
    )
    spec = FirmSpec(seed=args.seed, year=args.year, accounts=args.accounts, orders=args.orders,
                    participation=args.participation, partial_share=args.partial_share,
                    symbols=args.symbols, cherry=cherry)
    if args.out.exists() and not args.out.is_dir():
        raise FileAccessError(Diagnostic("file-unwritable", f"cannot write into {args.out}: it is a file, not a folder",
                                         Location(str(args.out))))
    firm = simulate(spec, args.out)
    print(f"wrote {firm.rows:,} allocations in {firm.orders:,} orders to {args.out}")
    if cherry is not None:
        print(f"cherry-picker intervened in {len(firm.biased_orders)} orders")
    return int(ExitCode.OK)
