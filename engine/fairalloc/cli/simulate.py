"""``fairalloc simulate``: write a synthetic firm-year in the allocation-history format.

Optionally with an injected cherry-picker (who benefits, how often, how strongly, whether memos
are back-dated) — for demos, documentation and power tests. Exit status 0, or 7 when the output
folder cannot be written.
"""

from __future__ import annotations

import argparse
import pathlib

from fairalloc.errors import ExitCode
from fairalloc.forensics.simulate import PERFORMANCE_FAVOURED, CherryPicker, FirmSpec, simulate


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="write a synthetic firm-year of allocation history (optionally with a cherry-picker)",
        description="Synthetic firm-year in the allocation-history format (docs/forensics.md).",
    )
    parser.add_argument("out", type=pathlib.Path, help="folder to write the CSV files into")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--year", type=int, default=2025)
    parser.add_argument("--accounts", type=int, default=12)
    parser.add_argument("--orders", type=int, default=250)
    parser.add_argument("--participation", type=float, default=0.6,
                        help="chance that an account takes part in an order")
    parser.add_argument("--partial-share", type=float, default=0.3,
                        help="share of orders only partly filled")
    parser.add_argument("--symbols", type=int, default=40)
    parser.add_argument("--cherry-picker", action="store_true",
                        help="inject a portfolio manager who allocates after seeing the close")
    parser.add_argument("--favoured", default=PERFORMANCE_FAVOURED,
                        help="who the cherry-picker favours (expression over account attributes)")
    parser.add_argument("--rate", type=float, default=1.0,
                        help="share of eligible orders he intervenes in (how often)")
    parser.add_argument("--strength", type=float, default=1.0,
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
    firm = simulate(spec, args.out)
    print(f"wrote {firm.rows:,} allocations in {firm.orders:,} orders to {args.out}")
    if cherry is not None:
        print(f"cherry-picker intervened in {len(firm.biased_orders)} orders")
    return int(ExitCode.OK)
