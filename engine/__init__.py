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
"""

from __future__ import annotations

from pathlib import Path

from engine.allocate import allocate
from engine.compile import compile_policy
from engine.errors import (
    Diagnostic,
    ExitCode,
    FairallocError,
    InputError,
    Location,
    PolicyError,
    RefusedError,
)
from engine.load import load_yaml, read_text
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


def policy_from_text(text: str, file: str = "<policy>") -> Policy:
    """Validate and compile a policy from its YAML text; raise :class:`PolicyError` listing every problem."""
    return compile_policy(load_yaml(text, file))


def load_policy(path: str | Path) -> Policy:
    """Read, validate and compile the policy file at ``path``."""
    return policy_from_text(read_text(str(path)), str(path))
