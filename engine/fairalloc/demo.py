"""The README's main job, end to end on the embedded defaults: ``make demo``.

Validates every shipped policy, then allocates each example trade under the policy of the same
name (``examples/<policy-id>.trade.json``, with ``<policy-id>.state.json`` as the rotation state
where there is one), prints each allocation as a table and writes the contract documents, with
explanations, to ``out/``; then records the example trade day in the embedded SQLite ledger
(``out/ledger.db``: intent, order, fills, allocation, override, CCO review, verify, replay,
export); and ends with a forensic review of a simulated firm-year, printing the path of the
HTML report.

The example policies and trades are those of the source tree in a checkout, else the copies an
installed wheel ships in ``fairalloc/demo_data/`` (:func:`example_root`); ``out/`` is made in the
current directory. The demo needs the ``ledger`` and ``review`` extras (``fairalloc[all]``) and
says so, before writing anything, when they are missing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from fairalloc import allocate, load_policy, load_trade
from fairalloc.cli._extras import require_extras
from fairalloc.cli._io import dump_json, print_allocation, report_error, write_output
from fairalloc.errors import FairallocError
from fairalloc.load import read_text
from fairalloc.rotation import RotationState
from fairalloc.trade import parse_json

SHIPPED = "demo_data"  # the folder of the package an installed wheel holds policies/ and examples/ in


def example_root() -> Path:
    """Where ``policies/`` and ``examples/`` are, relative to the current directory when that is
    shorter (``make demo`` in a checkout prints ``policies/...``, as a user would type it).

    The source tree wins when it is there, as for the grammar: an editable install has no
    shipped copy, and a checkout's examples are the ones being edited."""
    package = Path(__file__).resolve().parent
    source_tree = package.parents[1]
    root = source_tree if (source_tree / "policies").is_dir() else package / SHIPPED
    relative = os.path.relpath(root)
    return Path(relative) if not relative.startswith("..") else root


def main(root: Path | None = None, out: Path = Path("out")) -> int:
    require_extras("the demo (python -m fairalloc.demo)", "ledger", "review")
    root = example_root() if root is None else root
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
        report_error(error, "text")
        sys.exit(int(error.exit_code))
