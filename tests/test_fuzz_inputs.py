"""Mutation fuzzing of the inputs of ``allocate`` and ``eval``: whatever the mutation, the
command ends with a documented status, never 70, never a traceback, and every error it reports
names a location (``file:line:column``, ``file#/pointer`` or ``<expr>:1:COLUMN``).

Mutations start from the shipped examples — a hostile leaf value (NaN, huge exponents, lone
surrogates, wrong types), a deleted or added key, a shuffled list — so they stay close to valid
input and reach deep into the engine. Bounded: a few dozen examples per test, in-process.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairalloc.cli import main

from .conftest import CASES, EXAMPLES, POLICIES

DOCUMENTED = {0, 1, 3, 4, 5, 7}
PAIRS = ["us-equity-pro-rata", "fixed-income-rotation", "intraday-fill-monotone", "limit-order-price-time",
         "new-issue-ipo"]
MONEY_CASES = ["costs-schedule", "price-multi-day-by-broker", "price-cme-553"]  # costs, brokers, clearing
SOURCES = ([(POLICIES / f"{name}.yaml", EXAMPLES / f"{name}.trade.json") for name in PAIRS]
           + [(CASES / "allocations" / name / "policy.yaml", CASES / "allocations" / name / "trade.json")
              for name in MONEY_CASES])
HOSTILE: list[Any] = [None, True, 0, -1, 2**70, "", " ", "NaN", "Infinity", "-0", "1e999999999", "1e-999999999",
                      "9" * 40, "\ud800", "\u202eevil", "\uff15", "0x10", "2026-02-30", "2026-03-02T14:30:00",
                      "9999-12-31T23:59:59-23:59", [], {}, [1, "a"], {"x": {"y": [None]}}]


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [path] + [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list):
        return [path] + [leaf for index, item in enumerate(value) for leaf in _leaves(item, (*path, index))]
    return [path]


def _mutate(document: Any, data: st.DataObject) -> Any:
    paths = [path for path in _leaves(document) if path]
    path = data.draw(st.sampled_from(paths))
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    kind = data.draw(st.sampled_from(["replace", "replace", "delete", "add", "shuffle"]))
    hostile = copy.deepcopy(data.draw(st.sampled_from(HOSTILE)))  # a copy: never a shared list mutated into itself
    if kind == "replace":
        parent[path[-1]] = hostile
    elif kind == "delete":
        del parent[path[-1]]
    elif kind == "add" and isinstance(parent, dict):
        parent[data.draw(st.sampled_from(["extra", "", "\u200bid", "attributes"]))] = hostile
    elif kind == "shuffle" and isinstance(parent[path[-1]], list):
        parent[path[-1]] = data.draw(st.permutations(parent[path[-1]]))
    return document


_LOCATED = re.compile(r"^(?P<where>.+?): error\[[a-z0-9.-]+\]: ")


def _check(status: int, err: str, *files: str) -> None:
    assert status in DOCUMENTED, err
    assert "Traceback" not in err and "internal error" not in err, err
    for line in err.splitlines():
        if "error[" in line:
            match = _LOCATED.match(line)
            assert match and match["where"].startswith(files), line


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=st.sampled_from(SOURCES), data=st.data())
def test_a_mutated_trade_is_allocated_or_refused_with_a_located_error(
        source: tuple[Path, Path], data: st.DataObject, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy, given_trade = source
    document = json.loads(given_trade.read_text(encoding="utf-8"))
    for _ in range(data.draw(st.integers(1, 3))):
        document = _mutate(document, data)
    trade = tmp_path / "trade.json"
    trade.write_text(json.dumps(document), encoding="utf-8")
    capsys.readouterr()
    status = main(["allocate", "--policy", str(policy), "--trade", str(trade), "--explain"])
    out, err = capsys.readouterr()
    _check(status, err, str(trade), str(policy))
    if status == 0:
        out.encode("utf-8")  # printable: what a real stdout must carry
        assert json.loads(out)["order_id"]
    else:
        assert out == ""


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_eval_on_a_hostile_context_ends_with_a_documented_status(
        value: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    context = tmp_path / "context.json"
    for data, expression in [({"allocation": value}, "allocation * 2"), ({"account": {"x": value}}, "account.x"),
                             ({"account": {"intended": value}}, "account.intended + 1"),
                             ({"order": {"trade_date": value}}, "order.trade_date"),
                             ({"fill": {"ratio": value}}, "fill.ratio / 3"), ({value if isinstance(value, str) else "x": 1}, "1")]:
        context.write_text(json.dumps(data), encoding="utf-8")
        capsys.readouterr()
        status = main(["eval", "--context", str(context), expression])
        out, err = capsys.readouterr()
        _check(status, err, str(context))
        out.encode("utf-8")  # printable: what a real stdout must carry
