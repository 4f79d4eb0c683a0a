"""fairalloc: fair and equitable allocation of block trades, as policy-as-code.

The library API — the CLI, the HTTP service and the ledger are thin shells over it::

    from engine import load_policy, load_trade, allocate

    policy = load_policy("policies/us-equity-pro-rata.yaml")   # load once...
    for path in trade_files:                                     # ...allocate many
        result = allocate(policy, load_trade(path))
        print(result.document(explain=True))

The pipeline, one module per stage: ``load`` (YAML with positions) → ``schema`` (structure) →
``expressions`` (parse, check, compile) → ``compile`` (the policy plan) → ``allocate`` (execute
against fills) → ``result`` (contract document and explanation).

Names are imported on first use (PEP 562), so that ``fairalloc validate`` does not pay for the
trade models and numpy it never uses: a whole ``validate`` process must start in well under a
second.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.allocate import allocate
    from engine.errors import (
        Diagnostic,
        ExitCode,
        FairallocError,
        InputError,
        Location,
        PolicyError,
        RefusedError,
    )
    from engine.plan import Policy
    from engine.result import Allocation
    from engine.rotation import RotationState
    from engine.trade import Trade, load_trade

__all__ = [
    "Allocation",
    "Diagnostic",
    "ExitCode",
    "FairallocError",
    "InputError",
    "Location",
    "Policy",
    "PolicyError",
    "RefusedError",
    "RotationState",
    "Trade",
    "allocate",
    "load_policy",
    "load_trade",
    "policy_from_text",
]

_HOMES = {
    "allocate": "engine.allocate",
    "Allocation": "engine.result",
    "Diagnostic": "engine.errors",
    "ExitCode": "engine.errors",
    "FairallocError": "engine.errors",
    "InputError": "engine.errors",
    "Location": "engine.errors",
    "PolicyError": "engine.errors",
    "RefusedError": "engine.errors",
    "Policy": "engine.plan",
    "RotationState": "engine.rotation",
    "Trade": "engine.trade",
    "load_trade": "engine.trade",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def policy_from_text(text: str, file: str = "<policy>") -> Policy:
    """Validate and compile a policy from its YAML text; raise :class:`PolicyError` listing every problem."""
    from engine.compile import compile_policy
    from engine.load import load_yaml

    return compile_policy(load_yaml(text, file))


def load_policy(path: str | Path) -> Policy:
    """Read, validate and compile the policy file at ``path``."""
    from engine.load import read_text

    return policy_from_text(read_text(str(path)), str(path))
