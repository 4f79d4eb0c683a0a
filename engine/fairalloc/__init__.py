"""fairalloc: fair and equitable allocation of block trades, as policy-as-code.

The library API — the CLI, the HTTP service and the ledger are thin shells over it::

    from fairalloc import load_policy, load_trade, allocate

    policy = load_policy("policies/us-equity-pro-rata.yaml")   # load once...
    for path in trade_files:                                     # ...allocate many
        result = allocate(policy, load_trade(path))
        print(result.document(explain=True))

The pipeline, one module per stage: ``load`` (YAML with positions) → ``schema`` (structure) →
``expressions`` (parse, check, compile) → ``compile`` (the policy plan) → ``execute`` (the
allocation stages against fills, over a ``records`` or an ``arrays`` account book) → ``result``
(contract document and explanation). No public name is also a submodule's name, so importing any
submodule never hides a function (``tests/test_public_names.py``).

Names are imported on first use (PEP 562), so that ``fairalloc validate`` does not pay for the
trade models and numpy it never uses: a whole ``validate`` process must start in well under a
second.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # as typing's, which the command line imports only after pausing the collector (.command)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from fairalloc.execute import allocate
    from fairalloc.fairness import FairnessState
    from fairalloc.options import Backend
    from fairalloc.errors import (
        Diagnostic,
        ExitCode,
        FairallocError,
        InputError,
        Location,
        PolicyError,
        RefusedError,
    )
    from fairalloc.plan import Policy
    from fairalloc.result import Allocation
    from fairalloc.rotation import RotationState
    from fairalloc.trade import Trade, load_trade

__all__ = [
    "Allocation",
    "Backend",
    "Diagnostic",
    "ExitCode",
    "FairallocError",
    "FairnessState",
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
    "allocate": "fairalloc.execute",
    "Allocation": "fairalloc.result",
    "Backend": "fairalloc.options",
    "Diagnostic": "fairalloc.errors",
    "ExitCode": "fairalloc.errors",
    "FairallocError": "fairalloc.errors",
    "FairnessState": "fairalloc.fairness",
    "InputError": "fairalloc.errors",
    "Location": "fairalloc.errors",
    "PolicyError": "fairalloc.errors",
    "RefusedError": "fairalloc.errors",
    "Policy": "fairalloc.plan",
    "RotationState": "fairalloc.rotation",
    "Trade": "fairalloc.trade",
    "load_trade": "fairalloc.trade",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'fairalloc' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def policy_from_text(text: str, file: str = "<policy>") -> Policy:
    """Validate and compile a policy from its YAML text; raise :class:`PolicyError` listing every problem."""
    from fairalloc.compile import compile_policy
    from fairalloc.load import load_yaml

    return compile_policy(load_yaml(text, file))


def load_policy(path: str | Path) -> Policy:
    """Read, validate and compile the policy file at ``path``."""
    from fairalloc.load import MAX_CHARS, read_text

    return policy_from_text(read_text(str(path), limit=MAX_CHARS), str(path))
