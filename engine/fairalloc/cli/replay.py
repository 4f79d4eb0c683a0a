"""``fairalloc replay``: recompute recorded allocations and report identical or what differs."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from fairalloc.cli._ledger import add_format_option, add_ledger_option, emit_json, open_ledger
from fairalloc.errors import ExitCode
from fairalloc.ledger.replay import replay_many, replay_order


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("replay", help="recompute recorded allocations from the ledger")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("order_id", nargs="?", help="one allocated order")
    target.add_argument("--date", type=dt.date.fromisoformat, help="every order of a trade date")
    target.add_argument("--all", action="store_true", help="every allocated order")
    add_ledger_option(parser)
    add_format_option(parser)
    parser.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        if args.order_id:
            results = [replay_order(ledger, args.order_id)]
        else:
            results = replay_many(ledger, None if args.all else args.date)
    if args.format == "json":
        emit_json([{"order_id": r.order_id, "identical": r.identical,
                    "differences": [{"pointer": d.pointer, "recorded": d.recorded,
                                     "recomputed": d.recomputed} for d in r.differences]}
                   for r in results])
    else:
        for result in results:
            print(f"{result.order_id}: {'identical' if result.identical else 'DIFFERS'}")
            for d in result.differences:
                print(f"  {d.pointer}: recorded {json.dumps(d.recorded)}, "
                      f"recomputed {json.dumps(d.recomputed)}")
        same = sum(r.identical for r in results)
        print(f"{same} of {len(results)} allocations identical")
    return int(ExitCode.OK if all(r.identical for r in results) else ExitCode.CHECK_FAILED)
