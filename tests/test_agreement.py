"""One meaning for every input, whoever reads it.

* YAML: the engine's loader (YAML 1.1 resolution), ``fairalloc fmt`` (ruamel.yaml, YAML 1.2) and a
  JSON Schema tool (YAML 1.2 core, then JSON) read every accepted plain scalar as the same value;
  a scalar they would read differently is refused with a located error.
* Trades: the engine and the shipped ``trade.schema.json`` accept the same documents, and every
  document valid under the shared contract stays valid.
* The policy digest is exact, and account ids that only look different are one account.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from fairalloc import InputError, PolicyError, load_policy, load_trade, policy_from_text
from fairalloc.compile import canonical_json
from fairalloc.load import load_yaml
from fairalloc.review.fmt import format_text
from fairalloc.schema import json_compatible, validator, validator_for_schema
from fairalloc.trade import parse_json

from .conftest import CONTRACT, POLICIES, example_trade

POLICY = POLICIES / "us-equity-pro-rata.yaml"

# -- YAML scalars ------------------------------------------------------------------------------

_TOKENS = ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "true", "True", "TRUE", "false", "null", "Null",
           "~", "0777", "0o17", "0x1F", "0b101", "1_000", "1:30", "1:30:00", "1e3", "1.0e+3", "1.5e-3", ".5",
           "-.5", "+1", "-0", "007", "09", "1.", ".inf", "-.Inf", ".nan", "2026-01-01", "2026-1-1",
           "2026-01-01 10:00:00", "12:30", "100", "100.0", "0.50", "1e999999999", "abc", "a1", "1a",
           "0", "00", "+.5", "1.2.3", "1,000", "=", "<<", "NULL", "FALSE", "Off", "ON"]
_TEXT = st.one_of(
    st.sampled_from(_TOKENS),
    st.text(alphabet="0123456789+-._:eExXoObB", min_size=1, max_size=8),
    st.builds(lambda a, b: a + b, st.sampled_from(_TOKENS), st.sampled_from(["", "0", "_1", ".0", "e5"])),
)


def _ruamel(text: str) -> Any:
    return YAML(typ="rt", pure=True).load(io.StringIO(text))


def _same(ours: Any, theirs: Any) -> bool:
    """The same value, type included (``True`` is not ``1``; a float is compared exactly)."""
    if isinstance(theirs, bool) or isinstance(ours, bool):
        return type(ours) is bool and type(theirs) is bool and ours == theirs
    if theirs is None or ours is None:
        return ours is None and theirs is None
    if isinstance(theirs, float):
        return isinstance(ours, Decimal) and Decimal(repr(theirs)) == ours.normalize() or float(ours) == theirs
    if isinstance(theirs, int):
        return type(ours) is int and ours == theirs
    if isinstance(theirs, dt.date):
        return bool(ours == theirs or ours == theirs.isoformat())
    return isinstance(ours, str) and ours == str(theirs)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXT)
@example("yes")
@example("0777")
@example("1e3")
def test_every_reader_reads_an_accepted_plain_scalar_as_the_same_value(text: str) -> None:
    document = f"value: {text}\nlist: [{text}]\n"
    try:
        ours = load_yaml(document, "s.yaml").data
    except PolicyError as error:
        assert set(error.codes) <= {"yaml-ambiguous-scalar", "yaml-syntax", "yaml-number", "yaml-number-range",
                                    "yaml-merge", "yaml-date", "yaml-alias", "yaml-tag"}, error
        if "yaml-ambiguous-scalar" in error.codes:
            first = error.diagnostics[0]
            assert first.location.line in (1, 2) and first.location.column is not None
            assert (first.hint or "").startswith(("quote it", "write true or false"))
        return
    theirs = _ruamel(document)
    assert _same(ours["value"], theirs["value"]), (text, ours, theirs)
    assert _same(ours["list"][0], theirs["list"][0]), (text, ours, theirs)
    # a JSON Schema tool sees JSON: the same type as YAML 1.2 gives
    assert type(json_compatible(ours["value"])) in (str, int, Decimal, bool, type(None))
    # fmt keeps the meaning (it refuses, exit 70, rather than change it)
    formatted = format_text(document, "s.yaml")
    assert canonical_json(load_yaml(formatted).data) == canonical_json(ours)


@pytest.mark.parametrize("scalar", ["yes", "no", "on", "off", "0777", "1_000", "1:30", "1e3", "0o17"])
def test_a_yaml_1_1_only_scalar_is_refused_by_validate_and_fmt_alike(scalar: str) -> None:
    text = POLICY.read_text(encoding="utf-8").replace("review: true", f"review: {scalar}")
    for read in (lambda: policy_from_text(text, "p.yaml"), lambda: format_text(text, "p.yaml")):
        with pytest.raises(PolicyError) as caught:
            read()
        first = caught.value.diagnostics[0]
        assert (first.code, first.location.line, first.location.column) == ("yaml-ambiguous-scalar", 58, 13)
        assert f"'{scalar}'" in (first.hint or "")


def test_quoted_forms_are_accepted_and_fmt_keeps_them_quoted() -> None:
    text = "a: 'yes'\nb: '0777'\nc: '1e3'\nd: plain\n"
    assert load_yaml(text).data == {"a": "yes", "b": "0777", "c": "1e3", "d": "plain"}
    assert format_text(text) == text


# -- trades: engine and schema agree -----------------------------------------------------------

def _engine_accepts(text: str) -> bool:
    try:
        load_trade(parse_json(text, "t.json"), file="t.json")
    except InputError:
        return False
    return True


def _document(field: str, value: Any) -> str:
    trade = example_trade()
    node: Any = trade
    *parents, last = field.split("/")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[last] = value
    return json.dumps(trade, default=str)


CONTRACT_VALIDATOR = validator_for_schema((CONTRACT / "trade.schema.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("field, value, valid", [
    ("order/trade_date", "2026-03-02T00:00:00Z", False),  # the engine took a midnight timestamp
    ("order/trade_date", "2026-03-02\n", False),
    ("order/trade_date", "2026-03-02", True),
    ("order/quantity", 50000.0, True),  # JSON Schema: 50000.0 is an integer; the engine refused it
    ("order/quantity", 50000.5, False),
    ("order/quantity", "50000\n", False),  # a pattern's '$' before a trailing newline
    ("order/quantity", "50000", True),
    ("fills/0/price", "100.00\n", False),
    ("fills/0/price", "100.00", True),
    ("order/entered_at", "2026-03-02T14:30:00", False),
    ("order/entered_at", "2026-03-02T14:30:00Z\n", False),
    ("order/entered_at", "2026-03-02 14:30:00Z", False),
    ("order/entered_at", "2026-03-02t14:30:00z", True),
])
def test_engine_and_shipped_schema_agree(field: str, value: Any, valid: bool) -> None:
    text = _document(field, value)
    assert validator("trade").is_valid(json.loads(text)) is valid
    assert _engine_accepts(text) is valid
    if valid:
        assert CONTRACT_VALIDATOR.is_valid(json.loads(text))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    field=st.sampled_from(["order/quantity", "fills/0/price", "order/trade_date", "order/entered_at"]),
    value=st.one_of(
        st.text(alphabet="0123456789.-:TZtz+\n ", max_size=26),
        st.sampled_from(["2026-03-02", "2026-02-30", "2026-03-02T14:30:00+01:00", "2026-03-02T14:30:00.5Z",
                         "0", "00", "0.0", "1.", ".5", "12345678901234567890123456789012"]),
        st.integers(min_value=-5, max_value=10**40), st.floats(allow_nan=False, allow_infinity=False),
    ),
)
def test_the_engine_accepts_what_the_schema_accepts(field: str, value: Any) -> None:
    text = _document(field, value)
    document = json.loads(text)
    shipped, contract = validator("trade").is_valid(document), CONTRACT_VALIDATOR.is_valid(document)
    engine = _engine_accepts(text)
    within_bounds = not (isinstance(value, (int, float)) and abs(value) >= 10**30) and not (
        isinstance(value, str) and len(value.split(".")[0]) > 30)
    if within_bounds:  # beyond the bounds the engine refuses what the schema cannot limit
        assert engine == shipped, (value, engine, shipped)
    if contract:
        assert shipped, value


# -- the policy: identifiers, digest ----------------------------------------------------------

@pytest.mark.parametrize("old, new", [
    ("id: us-equity-pro-rata", 'id: "us-equity-pro-rata\\n"'),
    ("time: '23:59:59'", 'time: "23:59:59\\n"'),
    ("code: CASH-SHORTFALL", 'code: "CASH-SHORTFALL\\n"'),
])
def test_a_pattern_does_not_match_before_a_trailing_newline(old: str, new: str) -> None:
    text = POLICY.read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(PolicyError) as caught:
        policy_from_text(text.replace(old, new), "p.yaml")
    assert caught.value.codes == ["schema-format"]


def test_the_digest_is_exact() -> None:
    shipped = load_policy(POLICY)
    text = POLICY.read_text(encoding="utf-8").replace("absolute: 100", "absolute: 100.00000000000000000000000001")
    nearly = policy_from_text(text, "p.yaml")
    assert nearly.digest != shipped.digest
    assert '"absolute":100.00000000000000000000000001' in nearly.canonical
    spelled = policy_from_text(POLICY.read_text(encoding="utf-8").replace("absolute: 100", "absolute: 100.000"))
    assert spelled.digest == shipped.digest  # trailing zeros are spelling, not meaning


# -- account ids and attribute keys ------------------------------------------------------------

def _with_account_ids(*ids: str) -> dict[str, Any]:
    trade = example_trade()
    for account, new in zip(trade["statement"]["accounts"], ids, strict=False):
        account["account"] = new
    return trade


@pytest.mark.parametrize("ids, code, index", [
    (("CLIENT-A", "CLIENT-\u0410"), "trade-account-id", 1),  # Cyrillic A among Latin letters
    (("CLIENT-A", "CLIENT-B\u200b"), "trade-account-id", 1),  # a zero-width space
    (("CLIENT-A", "\uff23LIENT-A"), "trade-account-lookalike", 1),  # a full-width C: NFKC says CLIENT-A
    (("\uff23LIENT-A", "CLIENT-A"), "trade-account-lookalike", 1),
])
def test_look_alike_account_ids_are_refused(ids: tuple[str, ...], code: str, index: int) -> None:
    with pytest.raises(InputError) as caught:
        load_trade(_with_account_ids(*ids))
    first = caught.value.diagnostics[0]
    assert (first.code, first.location.pointer) == (code, f"/statement/accounts/{index}/account")


def test_account_ids_of_other_scripts_are_accepted() -> None:
    trade = load_trade(_with_account_ids("КЛИЕНТ-1", "顧客-2", "CLIENT-C"))
    assert trade.statement.account_ids[:3] == ["КЛИЕНТ-1", "顧客-2", "CLIENT-C"]


def test_look_alike_attribute_keys_are_refused() -> None:
    trade = example_trade()
    trade["statement"]["accounts"][2]["attributes"]["\uff46ee_basis"] = "performance"
    with pytest.raises(InputError) as caught:
        load_trade(trade)
    first = caught.value.diagnostics[0]
    assert first.code == "trade-attribute-key"
    assert first.location.pointer == "/statement/accounts/2/attributes/\uff46ee_basis"


def test_the_example_trades_still_load(tmp_path: Path) -> None:
    for path in sorted((POLICIES.parent / "examples").glob("*.trade.json")):
        load_trade(path)


def test_policy_publish_tells_a_28th_digit_apart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fairalloc.cli import main
    from fairalloc.errors import ExitCode

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    nearly = tmp_path / "nearly.yaml"
    nearly.write_text(POLICY.read_text(encoding="utf-8").replace(
        "absolute: 100", "absolute: 100.00000000000000000000000001"), encoding="utf-8")
    from fairalloc.ledger.identity import os_user

    me = os_user()  # on SQLite every step is recorded as the OS user running it
    assert main(["ledger", "init", "--admin", me, "--ledger", url]) == 0
    assert main(["ledger", "user", "grant", me, "cco", "--ledger", url]) == 0
    assert main(["policy", "publish", str(POLICY), "--ledger", url]) == 0
    capsys.readouterr()
    status = main(["policy", "publish", str(nearly), "--ledger", url])
    out, err = capsys.readouterr()
    assert status == ExitCode.LEDGER and "policy-version-conflict" in err and "identical" not in out
