"""Shared fixtures: paths to the repository's policies, examples and test cases."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
EXAMPLES = ROOT / "examples"
CASES = Path(__file__).resolve().parent / "cases"
# The OMS contract, pinned in the repository so the tests run wherever the checkout lives;
# tests/test_contract.py checks the pin against the published contract when it sits beside us.
CONTRACT = Path(__file__).resolve().parent / "contract"
PUBLISHED_CONTRACT = ROOT.parent / "shared" / "contract"


def example_trade(name: str = "us-equity-pro-rata") -> dict[str, Any]:
    """A fresh, mutable copy of an example trade document (numbers exact)."""
    with open(EXAMPLES / f"{name}.trade.json", encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle, parse_float=Decimal)
    return copy.deepcopy(data)


@pytest.fixture
def equity_trade() -> dict[str, Any]:
    return example_trade()
