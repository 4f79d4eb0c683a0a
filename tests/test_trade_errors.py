"""Invalid and refused trades: each case mutates the worked example and asserts the stable code,
the JSON pointer and the documented exit status (4 invalid input, 5 refused by a control, 7 I/O),
through the library and through the CLI, with no traceback reaching the user."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairalloc import FairallocError, allocate, load_policy, load_trade
from fairalloc.cli import main

from .conftest import POLICIES, example_trade

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.strip("/").split("/")]
        node: Any = doc
        for part in parents:
            node = node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return mutate


_DELETE = object()


def _both(*mutations: Mutation) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        for m in mutations:
            m(doc)
    return mutate


def _duplicate_account(doc: dict[str, Any]) -> None:
    doc["statement"]["accounts"].append(dict(doc["statement"]["accounts"][0]))
    doc["order"]["quantity"] += doc["statement"]["accounts"][0]["intended"]


def _duplicate_fill(doc: dict[str, Any]) -> None:
    doc["fills"].append(dict(doc["fills"][0], quantity=1000))


# (name, mutation, exit status, code, pointer)
CASES: list[tuple[str, Mutation, int, str, str]] = [
    ("statement after order", _set("statement/recorded_at", "2026-03-02T14:31:00Z"), 5,
     "statement-after-order", "/statement/recorded_at"),
    ("fill before order", _set("fills/0/executed_at", "2026-03-02T14:00:00Z"), 5,
     "fill-before-order", "/fills/0/executed_at"),
    ("overfill", _set("fills/1/quantity", 40000), 5, "overfill", "/fills"),
    ("statement total differs", _set("statement/accounts/0/intended", 20000), 5,
     "statement-total-mismatch", "/statement/accounts"),
    ("duplicate account", _duplicate_account, 5, "duplicate-account", "/statement/accounts/4/account"),
    ("duplicate fill id", _duplicate_fill, 5, "duplicate-fill", "/fills/2/id"),
    ("zero fill quantity", _set("fills/0/quantity", 0), 5, "zero-quantity", "/fills/0/quantity"),
    ("zero intended", _both(_set("statement/accounts/2/intended", 0), _set("order/quantity", 45000)), 5,
     "zero-quantity", "/statement/accounts/2/intended"),
    ("policy not yet effective", _set("order/trade_date", "2025-12-31"), 5, "policy-not-effective", "/order/trade_date"),
    ("policy does not apply", _set("order/security/asset_class", "fixed_income"), 5,
     "policy-not-applicable", "/order"),
    ("fill outside the order's limit", _set("order/limit_price", "100.00"), 5, "fill-outside-limit", "/fills/1/price"),
    ("negative quantity", _set("fills/0/quantity", -5), 4, "trade-value", "/fills/0/quantity"),
    ("float quantity", _set("fills/0/quantity", Decimal("18000.5")), 4, "trade-value", "/fills/0/quantity"),
    ("price as a number", _set("fills/0/price", 99), 4, "trade-value", "/fills/0/price"),
    ("missing order id", _set("order/id", _DELETE), 4, "trade-missing", "/order/id"),
    ("unknown field", _set("order/desk", "equities"), 4, "trade-unknown-field", "/order/desk"),
    ("timestamp without offset", _set("order/entered_at", "2026-03-02T14:30:00"), 4, "trade-timestamp",
     "/order/entered_at"),
    ("bad side", _set("order/side", "short"), 4, "trade-literal-error", "/order/side"),
    ("attribute of the wrong type", _set("statement/accounts/3/attributes/proprietary", "yes"), 4,
     "trade-attribute", "/statement/accounts/3/attributes/proprietary"),
    ("attribute value not allowed", _set("statement/accounts/0/attributes/fee_basis", "hourly"), 4,
     "trade-attribute", "/statement/accounts/0/attributes/fee_basis"),
    ("missing required security attribute", _set("order/security", {}), 4, "trade-attribute-missing",
     "/order/security"),
]


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, Decimal):
            return float(o) if o != o.to_integral_value() else int(o)  # a producer's float, on purpose
        return super().default(o)


def test_at_least_fifteen_cases() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize(("name", "mutate", "status", "code", "where"), CASES, ids=[c[0] for c in CASES])
def test_refused_or_invalid_trade(name: str, mutate: Mutation, status: int, code: str, where: str,
                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = example_trade()
    mutate(doc)
    trade_file = tmp_path / "trade.json"
    trade_file.write_text(json.dumps(doc, cls=_Encoder))
    out_file = tmp_path / "allocation.json"

    policy = load_policy(POLICIES / "us-equity-pro-rata.yaml")
    with pytest.raises(FairallocError) as caught:
        allocate(policy, load_trade(trade_file))
    assert int(caught.value.exit_code) == status
    assert (code, where) in [(d.code, d.location.pointer) for d in caught.value.diagnostics]

    result = main(["allocate", "--policy", str(POLICIES / "us-equity-pro-rata.yaml"),
                   "--trade", str(trade_file), "--output", str(out_file)])
    err = capsys.readouterr().err
    assert result == status
    assert f"error[{code}]" in err and where in err
    assert "Traceback" not in err
    assert not out_file.exists(), "nothing is written when the trade is refused"


def test_missing_trade_file_is_an_io_error(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["allocate", "--policy", str(POLICIES / "us-equity-pro-rata.yaml"), "--trade", "/nonexistent.json"])
    assert status == 7
    assert "error[file-not-found]" in capsys.readouterr().err


def test_malformed_json_is_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"order": {\n  "id": "X",\n  oops\n}}')
    status = main(["allocate", "--policy", str(POLICIES / "us-equity-pro-rata.yaml"), "--trade", str(path)])
    assert status == 4
    assert f"{path}:3:3: error[json-syntax]" in capsys.readouterr().err


def test_duplicate_json_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"order": {}, "order": {}}')
    with pytest.raises(FairallocError) as caught:
        load_trade(path)
    assert caught.value.codes == ["json-duplicate-key"]


def test_every_control_failure_is_reported_together() -> None:
    doc = example_trade()
    _set("statement/recorded_at", "2026-03-02T14:31:00Z")(doc)
    _set("fills/1/quantity", 40000)(doc)
    with pytest.raises(FairallocError) as caught:
        allocate(load_policy(POLICIES / "us-equity-pro-rata.yaml"), load_trade(doc))
    assert set(caught.value.codes) == {"statement-after-order", "overfill"}


def test_expression_failing_on_an_accounts_data_names_the_account() -> None:
    from fairalloc import policy_from_text

    policy = policy_from_text(
        "fairalloc: 1\nid: x\nversion: 1\neffective: 2026-01-01\nowner: CCO\n"
        "attributes:\n  account:\n    assets: {type: number, default: 1}\n"
        "method: pro_rata\nrounding:\n  lot: 100\n"
        "rules:\n  - id: odd\n    when: '1 / account.assets > 0.5'\n    action: flag\n    reason: r\n",
        "x.yaml",
    )
    doc = example_trade()
    doc["statement"]["accounts"][2]["attributes"]["assets"] = 0
    with pytest.raises(FairallocError) as caught:
        allocate(policy, load_trade(doc))
    assert int(caught.value.exit_code) == 4
    runtime = caught.value.diagnostics[0]
    assert runtime.location.file == "x.yaml" and (runtime.location.line, runtime.location.column) == (14, 14)
    context = caught.value.diagnostics[-1]
    assert context.code == "expression-runtime" and "CLIENT-C" in context.message
    assert context.location.pointer == "/statement/accounts/2"


@pytest.mark.parametrize("pointer", ["/order/quantity", "/statement/accounts/1/intended", "/fills/0/quantity",
                                     "/fills/0/price", "/order/limit_price"])
def test_a_number_text_with_a_lone_surrogate_is_a_trade_value_error(
        pointer: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The message quoted the text as it was: pydantic could not encode it and the command exited 70.
    doc = example_trade()
    _set(pointer.strip("/"), "1\ud800")(doc)
    trade = tmp_path / "trade.json"
    trade.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["allocate", "--policy", str(POLICIES / "us-equity-pro-rata.yaml"), "--trade", str(trade)]) == 4
    assert f"{trade}#{pointer}: error[trade-value]: '1\\ud800' is not a " in capsys.readouterr().err


@pytest.mark.parametrize("text", ["1e999999999", "9" * 70, "1e-999999999", "NaN", "-Infinity", "sNaN"])
def test_a_quantity_text_far_out_of_bounds_is_a_trade_value_error(
        text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Summed and compared before its bounds were known, "1e999999999" as an intended quantity
    # overflowed the exact decimal context, and "NaN" did not compare: the command exited 70.
    doc = example_trade()
    _set("statement/accounts/0/intended", text)(doc)
    trade = tmp_path / "trade.json"
    trade.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["allocate", "--policy", str(POLICIES / "us-equity-pro-rata.yaml"), "--trade", str(trade)]) == 4
    assert f"{trade}#/statement/accounts/0/intended: error[trade-" in capsys.readouterr().err


_ASSETS_POLICY = (
    "fairalloc: 1\nid: x\nversion: 1\neffective: 2026-01-01\nowner: CCO\n"
    "attributes:\n  account:\n    assets: {type: number, default: 1}\n"
    "method: pro_rata\npro_rata:\n  weight: account.assets\nrounding:\n  lot: 100\n"
)


@pytest.mark.parametrize("text", [" 5", "5 ", "1_000", "\uff15", "\u0665", "NaN", "Infinity", "0x10", "e5", ""])
def test_a_number_attribute_is_ascii_number_text(text: str) -> None:
    # Decimal() also reads ' 5', '1_000' and other scripts' digits ('\uff15' is a full-width 5):
    # a number attribute written so was silently a number and weighted the allocation.
    from fairalloc import policy_from_text

    doc = example_trade()
    doc["statement"]["accounts"][2]["attributes"]["assets"] = text
    with pytest.raises(FairallocError) as caught:
        allocate(policy_from_text(_ASSETS_POLICY, "x.yaml"), load_trade(doc))
    assert caught.value.codes == ["trade-attribute"]
    assert caught.value.diagnostics[0].location.pointer == "/statement/accounts/2/attributes/assets"


@pytest.mark.parametrize(("text", "weight"), [("6000000.00", Decimal("6000000")), ("-0", 0), ("1E+3", 1000),
                                              (".5", Decimal("0.5")), ("+7", 7)])
def test_a_number_attribute_in_ascii_text_is_its_exact_value(text: str, weight: Decimal) -> None:
    from fairalloc import policy_from_text
    from fairalloc.context import build_context

    doc = example_trade()
    doc["statement"]["accounts"][2]["attributes"]["assets"] = text
    context = build_context(policy_from_text(_ASSETS_POLICY, "x.yaml"), load_trade(doc))
    assert context.accounts[2]["assets"] == weight


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("valid", [True, False])
def test_loading_a_trade_leaves_the_cycle_collector_as_it_found_it(enabled: bool, valid: bool) -> None:
    import gc

    document = example_trade("us-equity-pro-rata")
    if not valid:
        document["order"]["quantity"] = "many"
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        if valid:
            load_trade(document)
        else:
            with pytest.raises(FairallocError):
                load_trade(document)
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(token: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Python's JSON reader takes these tokens; JSON (and the contract) do not: a syntax error at the token."""
    path = tmp_path / "trade.json"
    text = json.dumps(example_trade(), indent=2, default=str)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if '"quantity": 18000' in row)
    path.write_text(text.replace('"quantity": 18000', f'"quantity": {token}', 1))
    status = main(["allocate", "--policy", str(POLICIES / "us-equity-pro-rata.yaml"), "--trade", str(path)])
    err = capsys.readouterr().err
    assert status == 4
    assert f"{path}:{line}:19: error[json-syntax]: malformed JSON: {token} is not a JSON value" in err


def test_an_account_outside_the_rotation_sequence_is_located_in_the_trade_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trade = example_trade("fixed-income-rotation")
    trade["statement"]["accounts"][0]["account"] = "FI-NEW-9"
    path = tmp_path / "trade.json"
    path.write_text(json.dumps(trade, default=str))
    status = main(["allocate", "--policy", str(POLICIES / "fixed-income-rotation.yaml"), "--trade", str(path)])
    err = capsys.readouterr().err
    assert status == 5
    assert err.startswith(f"{path}#/statement/accounts: error[rotation-unknown-account]"), err


def test_an_attribute_with_a_lone_surrogate_is_refused_where_it_is(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Printing the message quoting the value once failed (UnicodeEncodeError, exit 70); and such
    # a value, accepted, reached the ledger, which no UTF-8 export or database can carry.
    policy = tmp_path / "policy.yaml"
    policy.write_text(_ASSETS_POLICY, encoding="utf-8")
    doc = example_trade()
    doc["statement"]["accounts"][0]["attributes"] = {"assets": "1\ud800"}
    trade = tmp_path / "trade.json"
    trade.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["allocate", "--policy", str(policy), "--trade", str(trade)]) == 4
    err = capsys.readouterr().err
    assert f"{trade}#/statement/accounts/0/attributes/assets: error[trade-string-unicode]: " in err
    err.encode("utf-8")  # printable: what a real stderr must carry


def _text_leaves(node: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in _text_leaves(value, (*path, key))]
    if isinstance(node, list):
        return [leaf for index, value in enumerate(node) for leaf in _text_leaves(value, (*path, index))]
    return [path] if isinstance(node, str) else []


_SURROGATE_DOC = example_trade()
_SURROGATE_DOC["order"]["security"] = {"asset_class": "equity", "tags": ["liquid", {"venue": "XNYS"}]}
_SURROGATE_DOC["statement"]["accounts"][1]["attributes"] = {"fee_basis": "standard", "desk": "rates"}


@settings(max_examples=150, deadline=None)
@given(leaf=st.sampled_from(_text_leaves(_SURROGATE_DOC)), surrogate=st.integers(0xD800, 0xDFFF),
       at=st.integers(0, 8), text=st.booleans())
def test_a_lone_surrogate_in_any_text_of_a_trade_is_refused_at_its_pointer(
        leaf: tuple[str | int, ...], surrogate: int, at: int, text: bool, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Every string of the trade, ids, names, free-form values nested in ``security`` and
    ``attributes``: with a lone surrogate in it, the trade is refused (exit status 4's kind of
    error) at that string's pointer, as a dict and as JSON text alike."""
    doc = json.loads(json.dumps(_SURROGATE_DOC))
    node: Any = doc
    for part in leaf[:-1]:
        node = node[part]
    value = node[leaf[-1]]
    node[leaf[-1]] = value[:at] + chr(surrogate) + value[at:]
    source: Any = doc
    if text:
        source = tmp_path_factory.mktemp("surrogate") / "trade.json"
        source.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(FairallocError) as caught:
        load_trade(source)
    where = "/" + "/".join(str(part) for part in leaf)
    assert where in [d.location.pointer for d in caught.value.diagnostics if d.location is not None]
    assert int(caught.value.exit_code) == 4
