"""The README's main job, end to end on the embedded defaults: ``make demo``.

Validates every shipped policy, then allocates each example trade under the policy of the same
name (``examples/<policy-id>.trade.json``, with ``<policy-id>.state.json`` as the rotation state
where there is one), prints each allocation as a table and writes the contract documents, with
explanations, to ``out/``; then records the example trade day in the embedded SQLite ledger
(``out/ledger.db``: intent, order, fills, allocation, override, CCO review, verify, replay,
export); and ends with a forensic review of a simulated firm-year, printing the path of the
HTML report. Run from the repository root.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fairalloc import allocate, load_policy, load_trade
from fairalloc.cli._io import dump_json, print_allocation, write_output
from fairalloc.errors import FairallocError
from fairalloc.load import read_text
from fairalloc.rotation import RotationState
from fairalloc.trade import parse_json


def main(root: Path = Path("."), out: Path = Path("out")) -> int:
    out.mkdir(exist_ok=True)
    policies = sorted((root / "policies").glob("*.yaml"))
    print(f"Validating {len(policies)} policies")
    loaded = {}
    for path in policies:
        policy = load_policy(path)
        loaded[policy.id] = policy
        print(f"  ok  {path}  {policy.ref}  {policy.digest}")
    for policy_id, policy in loaded.items():
        trade_path = root / "examples" / f"{policy_id}.trade.json"
        if not trade_path.exists():
            continue
        state_path = root / "examples" / f"{policy_id}.state.json"
        state = None
        if state_path.exists():
            state = RotationState.from_json(parse_json(read_text(str(state_path)), str(state_path)), str(state_path))
        result = allocate(policy, load_trade(trade_path), state, file=str(trade_path))
        document = result.document(explain=True)
        print()
        print_allocation(result, f"{result.order_id} under {policy.ref}")
        target = out / f"{policy_id}.allocation.json"
        write_output(dump_json(document), str(target))
        print(f"  written {target}")
    from fairalloc.ledger.demo import run as ledger_day

    ledger_day(root, out)

    from fairalloc.forensics import demo as forensic_review

    print("\nForensic review of a simulated firm-year (out/review)")
    report = forensic_review(out / "review")
    print(f"\nThe CCO's report: {report.resolve()}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except FairallocError as error:
        print(error, file=sys.stderr)
        sys.exit(int(error.exit_code))
