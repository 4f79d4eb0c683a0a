"""The closed word lists of the policy language (fairalloc.options): one enum and one table each,
and the policy schema and the policy-language reference use exactly those words."""

from __future__ import annotations

import enum
import json
from importlib import resources
from typing import Any

import pytest

from fairalloc import options

from .conftest import ROOT

TABLES: list[tuple[type[enum.StrEnum], dict[Any, Any], tuple[str, ...]]] = [
    (options.Method, options.METHODS, ("properties", "method")),
    (options.RoundingMethod, options.ROUNDING_METHODS, ("properties", "rounding", "properties", "method")),
    (options.Remainder, options.REMAINDERS, ("properties", "rounding", "properties", "remainder")),
    (options.TieBreak, options.TIE_BREAKS, ("properties", "rounding", "properties", "tie_break")),
    (options.OverTime, options.OVER_TIME, ("properties", "fairness", "properties", "over_time")),
    (options.Action, options.ACTIONS, ()),
    (options.MinimumKind, options.MINIMUM_KINDS, ()),
    (options.Denied, options.DENIED, ("properties", "minimum", "properties", "denied")),
    (options.PriceAllocation, options.PRICE_ALLOCATIONS, ("properties", "price", "properties", "allocation")),
    (options.CostBasis, options.COST_BASES, ("properties", "costs", "properties", "basis")),
    (options.Residual, options.RESIDUALS, ("properties", "costs", "properties", "residual")),
    (options.Backend, options.BACKENDS, ()),
]


def policy_schema() -> dict[str, Any]:
    text = resources.files("fairalloc").joinpath("schemas/policy.schema.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def node(data: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for key in path:
        data = data[key]
    return data


@pytest.mark.parametrize(("words", "table", "path"), TABLES, ids=[t[0].__name__ for t in TABLES])
def test_every_word_has_exactly_one_table_entry_and_the_schema_agrees(
        words: type[enum.StrEnum], table: dict[Any, Any], path: tuple[str, ...]) -> None:
    assert list(table) == list(words)
    if path:
        assert node(policy_schema(), path)["enum"] == [str(word) for word in words]


def test_rule_actions_and_minimum_kinds_match_the_schema() -> None:
    schema = policy_schema()
    rule = schema["properties"]["rules"]["items"]
    assert rule["properties"]["action"]["enum"] == [str(action) for action in options.Action]
    minimum = schema["properties"]["minimum"]
    assert sorted(branch["required"][0] for branch in minimum["oneOf"]) == sorted(map(str, options.MinimumKind))


@pytest.mark.parametrize(("words", "table", "path"), TABLES[:-1], ids=[t[0].__name__ for t in TABLES[:-1]])
def test_the_policy_language_reference_names_every_word(
        words: type[enum.StrEnum], table: dict[Any, Any], path: tuple[str, ...]) -> None:
    reference = (ROOT / "docs" / "policy-language.md").read_text(encoding="utf-8")
    for word in words:
        assert f"`{word}`" in reference, f"docs/policy-language.md does not name `{word}`"


def test_each_action_runs_in_one_stage_and_only_round_and_final_actions_read_the_allocation() -> None:
    for spec in options.ACTIONS.values():
        assert spec.reads_allocation == (spec.stage is not options.Stage.ELIGIBILITY)
    assert [action for action, spec in options.ACTIONS.items() if spec.quantity] == [options.Action.CAP]
