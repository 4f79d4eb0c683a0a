"""One loader for the golden cases under tests/cases/expressions/, and the scope they use.

Case files are YAML lists. Values in ``data`` and ``result`` are YAML scalars, except strings
starting with ``=``, which spell values YAML has no type for:
``=1.5`` a Decimal, ``=date 2026-03-02`` a date, ``=ts 2026-03-02T09:30:00Z`` a timestamp.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from fairalloc.expressions import ROOTS, Scope, Type

CASES = Path(__file__).resolve().parents[1] / "cases" / "expressions"

ACCOUNT_ATTRIBUTES = {
    "type": Type.STRING,
    "assets": Type.NUMBER,
    "restricted_person": Type.BOOLEAN,
    "tags": Type.list_of(Type.STRING),
    "nickname": Type.STRING.or_null(),
    "flag": Type.BOOLEAN.or_null(),
    "opened_on": Type.DATE,
    "extra": Type.ANY,
}
SECURITY_ATTRIBUTES = {"asset_class": Type.STRING, "lot_size": Type.NUMBER}


def scope(roots: Any = ROOTS) -> Scope:
    return Scope.build(roots, ACCOUNT_ATTRIBUTES, SECURITY_ATTRIBUTES)


TYPES = {
    "boolean": Type.BOOLEAN,
    "number": Type.NUMBER,
    "string": Type.STRING,
    "date": Type.DATE,
    "timestamp": Type.TIMESTAMP,
    "any": None,
}


def load(name: str) -> list[dict[str, Any]]:
    with (CASES / name).open(encoding="utf-8") as handle:
        cases = yaml.safe_load(handle)
    assert isinstance(cases, list)
    return cases


def ids(cases: list[dict[str, Any]]) -> list[str]:
    return [str(case.get("note") or case["source"])[:60] for case in cases]


def value(spelled: Any) -> Any:
    """Decode a case value (see the module docstring); recurse into lists and dicts."""
    if isinstance(spelled, list):
        return [value(item) for item in spelled]
    if isinstance(spelled, dict):
        return {key: value(item) for key, item in spelled.items()}
    assert not isinstance(spelled, float), "write decimals as '=1.5' strings"
    if isinstance(spelled, str) and spelled.startswith("="):
        text = spelled[1:]
        if text.startswith("date "):
            return datetime.date.fromisoformat(text[5:])
        if text.startswith("ts "):
            return datetime.datetime.fromisoformat(text[3:])
        return Decimal(text)
    return spelled
