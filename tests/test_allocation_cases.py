"""The golden allocation corpus (tests/cases/allocations/): every case through both backends.

Each case is a folder with ``policy.yaml``, ``trade.json``, an optional ``state.json`` (the
rotation state), an optional ``fairness.json`` (the fairness state) and ``expected.json``: the explained allocation document, without its
``backend`` entry, as ``dump_json`` writes it. Both backends must give it byte for byte; the
array backend must actually run wherever the policy has an array form. See the folder's README.

After a deliberate change of behaviour, rewrite the expected documents with
``python -m tests.test_allocation_cases`` and review the diff before committing it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from fairalloc import Backend, FairnessState, RotationState, allocate, load_policy, load_trade
from fairalloc.arrayform import ArrayForm
from fairalloc.cli._io import dump_json

from .conftest import CASES

FOLDER = CASES / "allocations"
NAMES = sorted(path.name for path in FOLDER.iterdir() if path.is_dir())


def explained(case: Path, backend: Backend) -> tuple[str, dict[str, Any]]:
    """The case's explained document without ``backend``, as text, and the ``backend`` entry."""
    policy = load_policy(case / "policy.yaml")
    trade = load_trade(case / "trade.json")
    state_file = case / "state.json"
    state = RotationState.from_json(json.loads(state_file.read_text())) if state_file.exists() else None
    fairness_file = case / "fairness.json"
    fairness = FairnessState.from_json(json.loads(fairness_file.read_text())) if fairness_file.exists() else None
    document = allocate(policy, trade, state, file=str(case / "trade.json"), backend=backend,
                        fairness=fairness).document(explain=True)
    used = document.pop("backend")
    return dump_json(document), used


def test_the_corpus_is_there() -> None:
    assert len(NAMES) >= 20
    for name in NAMES:
        assert {"policy.yaml", "trade.json", "expected.json"} <= {p.name for p in (FOLDER / name).iterdir()}


@pytest.mark.parametrize("backend", list(Backend))
@pytest.mark.parametrize("name", NAMES)
def test_each_case_gives_its_expected_document(name: str, backend: Backend) -> None:
    case = FOLDER / name
    text, used = explained(case, backend)
    assert text == (case / "expected.json").read_text(encoding="utf-8")
    has_array_form = isinstance(load_policy(case / "policy.yaml").arrays, ArrayForm)
    assert used["used"] == ("arrays" if backend is Backend.ARRAYS and has_array_form else "records"), used


def test_the_corpus_covers_every_option() -> None:
    """Every method, rounding method, remainder rule, tie-break, action, minimum kind, price
    allocation, cost basis and residual rule is in a case."""
    from fairalloc import options

    seen: set[str] = set()
    for name in NAMES:
        policy = load_policy(FOLDER / name / "policy.yaml")
        seen |= {f"method:{policy.method}", f"tie_break:{policy.tie_break}"}
        if policy.method is options.Method.PRO_RATA:
            seen.add(f"rounding:{policy.rounding_method}")
            if policy.rounding_method is options.RoundingMethod.LARGEST_REMAINDER:
                seen.add(f"remainder:{policy.remainder}")
        seen |= {f"action:{rule.action}" for rule in policy.rules}
        if policy.minimum is not None:
            seen |= {f"minimum:{policy.minimum.kind}", f"denied:{policy.minimum.denied}"}
        seen.add(f"price:{policy.pricing.allocation}")
        costs = policy.pricing.costs
        if costs is not None:
            seen |= {f"residual:{costs.residual}", f"basis:{costs.default.basis}"}
            seen |= {f"basis:{share.basis}" for _, share in costs.by_cost}
        if policy.fairness is not None:
            seen.add(f"over_time:{policy.fairness.over_time}")
    wanted = ({f"method:{m}" for m in options.Method} | {f"rounding:{r}" for r in options.RoundingMethod}
              | {f"remainder:{r}" for r in options.Remainder} | {f"tie_break:{t}" for t in options.TieBreak}
              | {f"action:{a}" for a in options.Action} | {f"minimum:{k}" for k in options.MinimumKind}
              | {f"denied:{d}" for d in options.Denied} | {f"over_time:{o}" for o in options.OverTime}
              | {f"price:{p}" for p in options.PriceAllocation} | {f"residual:{r}" for r in options.Residual}
              | {f"basis:{b}" for b in options.CostBasis})
    assert wanted <= seen, sorted(wanted - seen)


def rewrite() -> None:
    """Write every case's expected document from the record backend (review the diff after)."""
    for name in NAMES:
        text, _ = explained(FOLDER / name, Backend.RECORDS)
        (FOLDER / name / "expected.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    rewrite()
    sys.exit(0)
