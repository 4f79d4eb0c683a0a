"""``fairalloc allocate --policy P --trade T``: allocate one block order's fills."""

from __future__ import annotations

import argparse
from typing import Any

from fairalloc.cli._io import dump_allocation, dump_json, print_allocation, words, write_output


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "allocate",
        help="allocate a trade's fills under a policy",
        description="Allocate a block order's fills to its accounts under a policy; print the allocation.",
    )
    parser.add_argument("--policy", required=True, metavar="FILE", help="policy YAML file")
    parser.add_argument("--trade", required=True, metavar="FILE", help="trade JSON document (trade.schema.json)")
    parser.add_argument("--rotation", metavar="FILE", help="rotation state JSON (for rotation policies)")
    parser.add_argument("--rotation-out", metavar="FILE", help="write the rotation state after this order here")
    parser.add_argument("--fairness", metavar="FILE",
                        help="fairness state JSON: cumulative rounding advantages (policies with a fairness section)")
    parser.add_argument("--fairness-out", metavar="FILE", help="write the fairness state after this order here")
    parser.add_argument("--explain", action="store_true", help="explain every account's number")
    parser.add_argument("--format", choices=("json", "table"), default="json", help="output format")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the allocation here (atomically)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # imported here, not at the top: every command's parser is built at start-up, and the others
    # should not pay for the trade models and numpy
    from fairalloc import allocate, load_policy, load_trade
    from fairalloc.fairness import FairnessState
    from fairalloc.load import read_text
    from fairalloc.rotation import RotationState
    from fairalloc.trade import parse_json

    policy = load_policy(args.policy)
    trade = load_trade(args.trade)
    state = None
    if args.rotation:
        state = RotationState.from_json(parse_json(read_text(args.rotation), args.rotation), args.rotation)
    fairness = None
    if args.fairness:
        fairness = FairnessState.from_json(parse_json(read_text(args.fairness), args.fairness), args.fairness)
    result = allocate(policy, trade, state, file=args.trade, fairness=fairness)
    if args.format == "table":
        print_allocation(result)
        if args.explain:
            print(f"\nbackend: {words(result.backend)}")
            for account in result.accounts:
                explanation = result.explain(account)
                print(f"\n{account.account}:")
                for key, value in explanation.items():
                    print(f"  {key}: {words(value)}")
        if args.output:
            write_output(dump_allocation(result, explain=args.explain), args.output)
    else:
        write_output(dump_allocation(result, explain=args.explain), args.output)
    if args.rotation_out and result.rotation_after is not None:
        write_output(dump_json(result.rotation_after.to_json()), args.rotation_out)
    if args.fairness_out and result.fairness_after is not None:
        write_output(dump_json(result.fairness_after.to_json()), args.fairness_out)
    return 0
