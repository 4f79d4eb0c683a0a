"""The fast paths give exactly what the reference paths give.

- A trade in the plain form, decoded by msgspec (``trade._plain_trade``), equals the trade the
  reference validator (pydantic, ``fairalloc.contract``) builds from the same text; a text the
  reference refuses is never taken by the plain path.
- ``schema.conforms`` says valid exactly when jsonschema does, on every policy the tests have and
  on generated variants of them.
- ``dump_json`` writes lists of flat objects column by column, byte for byte as one encoder call
  per object writes them.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fairalloc.cli import _io
from fairalloc.errors import FairallocError
from fairalloc.load import load_yaml
from fairalloc.schema import conforms, json_compatible, schema, validator
from fairalloc.trade import _checked_trade, _name_and_value_problems, _plain_trade, load_trade, parse_json

from .conftest import CASES, EXAMPLES, POLICIES, example_trade

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference(text: str) -> dict[str, Any] | str:
    """The reference path's outcome: the trade as its contract document, or the first error code."""
    try:
        return _checked_trade(parse_json(text, "t.json"), "t.json").to_json()
    except FairallocError as error:
        return error.diagnostics[0].code


def assert_agrees(text: str) -> None:
    """Whenever :func:`load_trade` would return the plain path's trade, it is the reference's."""
    plain = _plain_trade(text)
    if plain is not None and not _name_and_value_problems(plain, "t.json"):
        assert plain.to_json() == reference(text)
    data = json.loads(text, parse_float=Decimal) if _parses(text) else None
    if isinstance(data, dict):
        from_dict = _plain_trade(data)
        if from_dict is not None and not _name_and_value_problems(from_dict, "t.json"):
            assert from_dict.to_json() == reference(text)


def _parses(text: str) -> bool:
    try:
        parse_json(text, "t.json")
    except FairallocError:
        return False
    return True


def test_the_examples_take_the_plain_path() -> None:
    for path in sorted(EXAMPLES.glob("*.trade.json")):
        text = path.read_text()
        assert_agrees(text)
    assert _plain_trade((EXAMPLES / "us-equity-pro-rata.trade.json").read_text()) is not None


MONEY_TRADES = [path for path in sorted((CASES / "allocations").glob("*/trade.json"))
                if any(key in path.read_text() for key in ('"costs"', '"broker"'))]


@pytest.mark.parametrize("path", MONEY_TRADES, ids=lambda p: p.parent.name)
def test_costs_trade_dates_and_brokers_take_the_plain_path(path: Path) -> None:
    """Costs on the order and fills, a fill's trade date and broker are read by the plain path
    (a clearing instruction, like a time of receipt, is left to the reference), and give the
    reference's trade."""
    text = path.read_text()
    assert_agrees(text)
    if '"clearing"' not in text and '"received_at"' not in text:
        assert _plain_trade(text) is not None


def test_a_key_written_twice_is_refused_in_any_object() -> None:
    base = (EXAMPLES / "us-equity-pro-rata.trade.json").read_text()
    for key in ("account", "intended", "fee_basis", "price", "symbol"):
        member = re.search(f'"{key}": ("[^"]*"|[0-9.]+)', base)
        assert member is not None
        start = base.rindex("{", 0, member.start()) + 1
        text = base[:start] + member.group(0) + ", " + base[start:]
        assert json.loads(text) == json.loads(base)
        assert _plain_trade(text) is None
        with pytest.raises(FairallocError) as caught:
            load_trade(_write(text))
        assert caught.value.diagnostics[0].code == "json-duplicate-key"


def test_a_spaced_duplicate_key_is_refused() -> None:
    doc = example_trade()
    text = json.dumps(doc, default=str, separators=(",", " :  "))
    text = text.replace('{"account" :  ', '{"account"\n:"X", "account" :  ', 1)
    assert _plain_trade(text) is None
    with pytest.raises(FairallocError):
        load_trade(_write(text))


def _write(text: str) -> Path:
    import tempfile

    handle = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    with handle:
        handle.write(text)
    return Path(handle.name)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**31) | st.sampled_from(["", "x", "1.5", "0100", "1e3", "100"])
    | st.decimals(allow_nan=False, allow_infinity=False, places=3) | st.sampled_from([
        "2026-03-02T14:20:00Z", "2026-03-02", "2026-03-02T14:30:00", "2026-03-02t14:31:00z"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "\uff41"]),
                                                                        children, max_size=3),
    max_leaves=6,
)
PATHS = ["order/quantity", "order/limit_price", "order/security", "order/trade_date", "order/entered_at",
         "order/side", "order/id", "order/extra", "statement/recorded_at", "statement/recorded_by",
         "statement/accounts/0/intended", "statement/accounts/1/attributes", "statement/accounts/2/limit_price",
         "statement/accounts/0/received_at", "statement/accounts/3/account", "statement/accounts/1/extra",
         "statement/accounts/2/attributes/fee_basis", "fills/0/quantity", "fills/0/price", "fills/1/venue",
         "fills/1/executed_at", "fills/0/id", "order/costs", "fills/0/costs", "fills/1/trade_date",
         "fills/0/broker", "statement/accounts/1/clearing"]


def _mutated(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = [int(p) if p.isdigit() else p for p in path.split("/")]
    node: Any = doc
    for part in parents:
        node = node[part]
    node[last] = value
    return doc


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(PATHS), JSON_VALUES), max_size=3),
       st.sampled_from([(", ", ": "), (",", ":"), (", ", " : "), (",\n", ":\t")]))
def test_the_plain_path_agrees_with_the_reference(changes: list[tuple[str, Any]], separators: tuple[str, str]) -> None:
    doc = example_trade()
    for path, value in changes:
        doc = _mutated(doc, path, value)
    text = json.dumps(doc, default=str, separators=separators, ensure_ascii=False)
    assert_agrees(text)
    # the same, with every decimal written as a JSON number rather than a string
    assert_agrees(json.dumps(json.loads(text), separators=separators))


def _policy_documents() -> list[Path]:
    files = sorted(POLICIES.glob("*.yaml")) + sorted(CASES.rglob("*.yaml"))
    return [path for path in files if path.read_text().lstrip().startswith(("fairalloc", "#"))]


def _valid_both_ways(data: Any) -> None:
    data = json_compatible(data)
    assert conforms(data, schema("policy")) == validator("policy").is_valid(data)


@pytest.mark.parametrize("path", _policy_documents(), ids=lambda p: p.stem)
def test_conforms_agrees_with_jsonschema_on_every_policy(path: Path) -> None:
    try:
        document = load_yaml(path.read_text(), str(path))
    except FairallocError:
        return
    _valid_both_ways(document.data)


POLICY_VALUES = st.none() | st.booleans() | st.integers(-3, 20) | st.sampled_from(
    [0.5, 1.0, Decimal("1.0"), Decimal("0"), "", "x", "pro_rata", "us-equity\n", "2026-01-01", "2026-13-01",
     "10:30", "25:00", [], ["a", "a"], ["a", True, 1], {}, {"type": "string"}, {"absolute": 1, "expression": "x"}])
POLICY_KEYS = st.sampled_from(["fairalloc", "id", "version", "effective", "owner", "method", "rounding", "minimum",
                               "rules", "attributes", "price", "deadline", "overrides", "intent", "caps", "unknown"])


@SETTINGS
@given(st.lists(st.tuples(POLICY_KEYS, st.sampled_from([None, "lot", "method", "absolute", "precision", 0, "type"]),
                          POLICY_VALUES), min_size=1, max_size=3))
def test_conforms_agrees_with_jsonschema_on_variants(changes: list[tuple[str, Any, Any]]) -> None:
    data: dict[str, Any] = dict(load_yaml((POLICIES / "us-equity-pro-rata.yaml").read_text()).data)
    for key, inner, value in changes:
        current = data.get(key)
        if inner is None or not isinstance(current, (dict, list)):
            data[key] = value
        elif isinstance(current, dict) and isinstance(inner, str):
            data[key] = dict(current, **{inner: value})
        elif isinstance(current, list) and current and isinstance(inner, int):
            data[key] = [value, *current[1:]]
    _valid_both_ways(data)


FLAT = st.lists(st.fixed_dictionaries({
    "account": st.text(max_size=4) | st.none(), "quantity": st.integers() | st.none(),
    "price": st.sampled_from(["100", None, 'a"b', "\\", "é", "\x01", "%s"]),
}), min_size=1, max_size=8) | st.lists(st.dictionaries(st.sampled_from(["a", "b"]), st.integers() | st.text(max_size=2)
                                                       | st.booleans()), min_size=1, max_size=4)


@SETTINGS
@given(FLAT)
def test_lists_of_flat_objects_are_written_as_the_encoder_writes_them(items: list[dict[str, Any]]) -> None:
    for rows in (items, items * _io._COLUMNS_FROM):  # by the encoder, and column by column
        expected = "[\n" + ",\n".join("  " + _io._LINE.encode(item) for item in rows) + "\n]\n"
        assert _io.dump_json(rows) == expected


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=4), st.floats(allow_nan=False)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=12)


@SETTINGS
@given(JSON_VALUES.filter(lambda value: not isinstance(value, str)))
def test_values_are_written_by_the_encoder_made_once_as_by_the_encoder(value: Any) -> None:
    assert _io._compact(value) == _io._LINE.encode(value)


ROWS = st.lists(st.fixed_dictionaries({
    "account": st.text(max_size=4), "%d": st.integers() | st.none(),
    "price": st.sampled_from(["100", None, 'a"b', "\\", "é", "\x01", "%s"]) | st.booleans(),
}), min_size=1, max_size=12)


@SETTINGS
@given(ROWS | FLAT)
def test_a_few_rows_are_written_from_one_template_as_the_encoder_writes_them(items: list[dict[str, Any]]) -> None:
    keys = tuple(items[0])
    assume(keys and all(tuple(item) == keys for item in items))
    text = _io._small_table(keys, [[item[key] for item in items] for key in keys], "    ")
    columns_written = all(len({type(item[key]) for item in items} - {type(None)}) == 1
                          and {type(item[key]) for item in items} - {type(None)} <= {int, str} for key in keys)
    assert (text is not None) == (columns_written and not any(
        isinstance(item[key], str) and _io._LINE.encode(item[key]) != f'"{item[key]}"' for item in items for key in keys))
    if text is not None:
        assert text == ",\n".join("    " + _io._LINE.encode(item) for item in items)


WORDS = st.sampled_from(["", "a", "ab", "b", "retail", "institutional", "Z", "é"])


@SETTINGS
@given(st.lists(WORDS, min_size=1, max_size=12), WORDS, st.lists(WORDS, max_size=3),
       st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
def test_coded_string_columns_compare_as_the_strings_do(strings: list[str], text: str, items: list[str],
                                                        op: str) -> None:
    import numpy as np

    from fairalloc.expressions.vector import Coded, _compare, _member

    coded, plain = Coded.of(strings), np.asarray(strings, dtype=object)
    assert coded.strings().tolist() == strings
    assert _compare(op, coded, text).tolist() == _compare(op, plain, text).tolist()
    assert _compare(op, text, coded).tolist() == _compare(op, text, plain).tolist()
    other = Coded.of(list(reversed(strings)))
    assert _compare(op, coded, other).tolist() == _compare(op, plain, other.strings()).tolist()
    for member in ("in", "not in"):
        assert _member(member, coded, tuple(items)).tolist() == _member(member, plain, tuple(items)).tolist()


ALLOCATION_CASES = sorted(path for path in (CASES / "allocations").iterdir() if path.is_dir())


@pytest.mark.parametrize("case", ALLOCATION_CASES, ids=lambda p: p.name)
def test_the_allocation_document_is_written_from_columns_byte_for_byte(case: Path) -> None:
    from fairalloc import RotationState, allocate, load_policy

    state_file = case / "state.json"
    state = RotationState.from_json(json.loads(state_file.read_text())) if state_file.exists() else None
    result = allocate(load_policy(case / "policy.yaml"), load_trade(case / "trade.json"), state)
    assert _io.dump_allocation(result) == _io.dump_json(result.document())
    assert _io.dump_allocation(result, explain=True) == _io.dump_json(result.document(explain=True))


@pytest.mark.parametrize("case", ALLOCATION_CASES, ids=lambda p: p.name)
def test_a_large_allocation_is_written_from_columns_byte_for_byte(case: Path) -> None:
    """Each golden case's statement repeated 40 times over (ids made unique, the order and its fills
    40 times larger): past the size from which the writer goes column by column."""
    from fairalloc import RotationState, allocate, load_policy

    doc = json.loads((case / "trade.json").read_text(), parse_float=Decimal)
    accounts = doc["statement"]["accounts"]
    doc["statement"]["accounts"] = [dict(a, account=f"{a['account']}-{n:02d}") for n in range(40) for a in accounts]
    for part in (doc["order"], *doc["fills"]):
        part["quantity"] = 40 * (Decimal(part["quantity"]) if isinstance(part["quantity"], str) else part["quantity"])
    state_file = case / "state.json"
    state = RotationState.from_json(json.loads(state_file.read_text())) if state_file.exists() else None
    try:
        result = allocate(load_policy(case / "policy.yaml"), load_trade(doc), state)
    except FairallocError:
        pytest.skip("the repeated statement is refused under this case's policy")
    assert len(result.columns.ids) >= _io._COLUMNS_FROM
    assert _io.dump_allocation(result) == _io.dump_json(result.document())


def _keywords(part: Any, names: set[str]) -> set[str]:
    """Every keyword a schema uses (property names under ``properties`` and ``$defs`` are not keywords)."""
    if isinstance(part, list):
        for item in part:
            _keywords(item, names)
    elif isinstance(part, dict):
        for key, value in part.items():
            names.add(key)
            if key in ("properties", "$defs", "patternProperties") and isinstance(value, dict):
                for sub in value.values():
                    _keywords(sub, names)
            else:
                _keywords(value, names)
    return names


@pytest.mark.parametrize("name", ["policy", "trade", "allocation"])
def test_conforms_knows_every_keyword_of_the_shipped_schemas(name: str) -> None:
    """A keyword added to a schema but not to conforms() would end a valid policy in exit 70."""
    from fairalloc.schema import _ANNOTATIONS, _KEYWORDS

    unknown = _keywords(schema(name), set()) - set(_KEYWORDS) - _ANNOTATIONS
    assert not unknown, f"conforms() does not know {sorted(unknown)}"


ATTRIBUTE_VALUES = st.one_of(st.sampled_from(["gold", "silver", "b", "a"]), st.booleans(),
                             st.integers(-5, 5), st.none())


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["A1", "A2", "B", "C7", "c", "Z"]),
                          st.one_of(st.integers(1, 10**20), st.decimals("0.001", "1000", places=3)),
                          st.dictionaries(st.sampled_from(["tier", "type", "flag"]), ATTRIBUTE_VALUES, max_size=3)),
                min_size=1, max_size=12))
def test_a_statements_columns_are_its_accounts_read_one_by_one(rows: list[tuple[str, Any, dict[str, Any]]]) -> None:
    from fairalloc.numbers import exact_sum
    from fairalloc.trade import StatementAccount, StatementColumns

    accounts = [StatementAccount(account=a, intended=q, attributes=attributes) for a, q, attributes in rows]
    columns = StatementColumns(accounts)
    ids, intended = [a for a, _, _ in rows], [q for _, q, _ in rows]
    assert (columns.ids, columns.intended) == (ids, intended)
    assert columns.whole == all(type(q) is int for q in intended)
    assert (columns.total, columns.least, columns.most) == (exact_sum(intended), min(intended), max(intended))
    assert columns.in_id_order == all(x < y for x, y in zip(ids, ids[1:]))
    assert columns.distinct == (len(set(ids)) == len(ids))
    assert list(columns.id_order) == sorted(range(len(ids)), key=ids.__getitem__)
    assert columns.units is None or list(columns.units) == intended
    assert not columns.clearing
    for name in ("tier", "type", "flag", "absent"):
        column = columns.attribute(name)
        values = [attributes.get(name) for _, _, attributes in rows]
        assert column.values == values and column.kinds == {type(value) for value in values}
        if column.codes is not None:
            assert column.strings is not None and [column.strings[code] for code in column.codes] == values
            assert list(column.strings) == sorted(set(values))
        if column.flags is not None:
            assert [bool(flag) for flag in column.flags] == values


def test_a_large_statement_has_its_columns_taken_when_loaded() -> None:
    from fairalloc.arrayform import ARRAYS_FROM
    from fairalloc.trade import COLUMNS_FROM

    assert COLUMNS_FROM == ARRAYS_FROM  # the size from which the array book reads them
    for size in (COLUMNS_FROM - 1, COLUMNS_FROM):
        document = example_trade()
        attributes = document["statement"]["accounts"][0].get("attributes", {})
        document["statement"]["accounts"] = [{"account": f"X{i:03d}", "intended": 100, "attributes": attributes}
                                             for i in range(size)]
        document["order"]["quantity"] = 100 * size
        statement = load_trade(document).statement
        taken = vars(statement).get("columns")  # the cached property, if already taken
        if size < COLUMNS_FROM:
            assert taken is None or not taken._attributes
        else:
            assert taken is not None and set(taken._attributes) == set(attributes)


def test_the_policy_fields_written_once_per_policy_follow_each_policy() -> None:
    """A policy's fields are kept for it while it lives: policies made and dropped one after the
    other (whose ids may be reused) each get their own, as written from their document."""
    from fairalloc import allocate, policy_from_text

    text = (POLICIES / "us-equity-pro-rata.yaml").read_text()
    trade = load_trade(example_trade())
    for version in range(1, 12):
        policy = policy_from_text(text.replace("version: 1", f"version: {version}", 1).replace(
            "lot: 100", f"lot: {100 if version % 2 else 1}", 1))
        result = allocate(policy, trade)
        assert _io.dump_allocation(result) == _io.dump_json(result.document())
        del policy, result


@SETTINGS
@given(st.from_regex(r"(0|[1-9][0-9]{0,34})(\.[0-9]{1,45})?", fullmatch=True))
def test_a_plain_price_is_bounded_as_number_problem_bounds_it(text: str) -> None:
    from fairalloc.numbers import number_problem
    from fairalloc.trade import _NotPlain, _price

    try:
        price: Decimal | None = _price(text)
    except _NotPlain:
        price = None
    assert (price is None) == (number_problem(Decimal(text)) is not None)
    assert price is None or price == Decimal(text)
