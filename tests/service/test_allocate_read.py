"""POST /v1/allocate's one-pass reading: it accepts only what the general reading accepts, with
equal values, and its answers and OpenAPI operation are the bytes FastAPI's route gave."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Query
from fastapi.openapi.utils import get_openapi
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.responses import Response

from fairalloc import load_trade
from fairalloc.errors import FairallocError
from fairalloc.service import ServiceConfig, create_app
from fairalloc.service.app import ALLOCATE_OPERATION, PROBLEM_RESPONSES, _ALLOCATE_BODY, _DECISION, json_response
from fairalloc.service.body import member, parse_body, plain_allocation, plain_trade
from fairalloc.service.config import Limits
from fairalloc.service.decisions import digest
from fairalloc.service.problems import Problem
from tests.service.conftest import AUDIENCE, ISSUER, ROOT, Keys, Server, start_server

TRADES = sorted(ROOT.glob("examples/*.trade.json"))
PLAIN = ROOT / "examples" / "us-equity-pro-rata.trade.json"  # in the plain form
STATE = json.loads((ROOT / "examples" / "fixed-income-rotation.state.json").read_text())


def general(raw: bytes, limits: Limits) -> tuple[Any, ...] | None:
    """The general reading's verdict: (policy, trade, rotation, fairness), or None if it refuses."""
    try:
        body = parse_body(raw, limits)
        trade_json = member(body, "trade")
        if set(body) - {"policy", "trade", "rotation", "fairness"}:
            return None
        return (member(body, "policy"), load_trade(trade_json, file="trade"),
                member(body, "rotation", required=False), member(body, "fairness", required=False))
    except (Problem, FairallocError):
        return None


def body_text(trade: Any, *, policy: Any = "us-equity-pro-rata", indent: int | None = None,
              extra: str = "", ascii_only: bool = False) -> bytes:
    text = json.dumps({"policy": policy, "trade": trade}, indent=indent, ensure_ascii=ascii_only)
    return (text[:-1] + extra + "}").encode() if extra else text.encode()


edits = st.sampled_from([
    "", ', "rotation": null', ', "fairness": null', ', "rotation": ' + json.dumps(STATE),
    ', "policy": "other"', ', "trade": {}', ', "extra": 1', ', "fairness": {"a": 1, "a": 2}',
    ', "rotation": {"x": NaN}', ', "fairness": 1e99999', ', "rotation": [' + "[" * 40 + "]" * 40 + "]",
])


@given(st.sampled_from(TRADES), edits, st.sampled_from([None, 1]), st.booleans(),
       st.sampled_from(["us-equity-pro-rata", 'a\\":b', 7, "x" * 3]))
@settings(max_examples=150, deadline=None)
def test_what_the_one_pass_reading_accepts_the_general_reading_accepts_alike(
        path: Path, extra: str, indent: int | None, ascii_only: bool, policy: Any) -> None:
    trade = json.loads(path.read_text())
    raw = body_text(trade, policy=policy, indent=indent, extra=extra, ascii_only=ascii_only)
    limits = Limits()
    plain = plain_allocation(raw, limits)
    if plain is None:
        return
    assert general(raw, limits) == (plain.policy, plain.trade, plain.rotation, plain.fairness)
    assert json.loads(plain.trade_text) == trade


@pytest.mark.parametrize("path", TRADES, ids=lambda path: path.name)
@pytest.mark.parametrize("indent", [None, 2])
def test_a_plain_trade_is_read_in_one_pass(path: Path, indent: int | None) -> None:
    trade = json.loads(path.read_text())
    raw = body_text(trade, indent=indent)
    plain = plain_allocation(raw, Limits())
    if plain is None:  # outside the plain form (e.g. account limits): the general reading reads it
        assert general(raw, Limits()) is not None
        return
    assert general(raw, Limits()) == (plain.policy, plain.trade, None, None)


def test_most_examples_are_read_in_one_pass() -> None:
    read = [plain_allocation(body_text(json.loads(path.read_text())), Limits()) for path in TRADES]
    assert sum(found is not None for found in read) >= len(TRADES) // 2


@pytest.mark.parametrize("raw", [
    b'{"policy": "p", "policy": "q", "trade": %s}' % (PLAIN.read_bytes()),
    b'{"policy": "p", "trade": %s, "trade": %s}' % (PLAIN.read_bytes(), PLAIN.read_bytes()),
    b'{"policy": "p", "trade": %s, "other": 1}' % PLAIN.read_bytes(),
    b'{"policy": "p", "trade": "a trade"}', b'{"trade": {}}', b"[", b"\xff", b"",
    b'{"policy": "p", "trade": %s, "rotation": {"a": 1, "a": 2}}' % PLAIN.read_bytes(),
    b'{"policy": "p", "trade": %s}' % PLAIN.read_bytes().replace(b'"order": {', b'"order": {"id": "x", ', 1),
])
def test_a_body_with_anything_to_refuse_is_left_to_the_general_reading(raw: bytes) -> None:
    assert plain_allocation(b'{"policy": "p", "trade": %s}' % PLAIN.read_bytes(), Limits()) is not None
    assert plain_allocation(raw, Limits()) is None


def test_a_body_too_deep_is_left_to_the_general_reading() -> None:
    trade = json.loads(PLAIN.read_text())
    trade["order"]["security"] = {"deep": json.loads("[" * 10 + "]" * 10)}  # 14 levels in the body
    raw = body_text(trade)
    assert plain_allocation(raw, Limits(max_depth=13)) is None
    assert plain_allocation(raw, Limits(max_depth=14)) is not None


trade_edits = st.sampled_from([
    ("", ""), ('"order": {', '"order": {"id": "x", '), ('"fills": [', '"fills": [{"x": NaN}, '),
    ('"statement": {', '"statement": {"deep": ' + "[" * 40 + "]" * 40 + ", "), ("{", "\ufeff{"),
    ('"order": {', '"order": {"quantity": 1e99999, '), ('"symbol": "', '"symbol": "\u0430'),
])


@given(st.sampled_from(TRADES), trade_edits, st.sampled_from([None, 1]), st.booleans())
@settings(max_examples=120, deadline=None)
def test_what_the_one_pass_reading_of_a_trade_body_accepts_the_general_reading_accepts_alike(
        path: Path, edit: tuple[str, str], indent: int | None, ascii_only: bool) -> None:
    """The recorded workflow's trade bodies (statement, entry, fills) read by :func:`plain_trade`."""
    text = json.dumps(json.loads(path.read_text()), indent=indent, ensure_ascii=ascii_only)
    if edit[0] and edit[0] not in text:
        return
    raw = text.replace(edit[0], edit[1], 1).encode() if edit[0] else text.encode()
    limits = Limits()
    plain = plain_trade(raw, limits)
    if plain is None:
        return
    assert plain == load_trade(parse_body(raw, limits), file="request")


def test_the_bench_trade_body_is_read_in_one_pass() -> None:
    from bench.bench_service import _trade

    raw = json.dumps(_trade("REC-1")).encode()
    assert plain_trade(raw, Limits()) == load_trade(parse_body(raw, Limits()), file="request")
    assert plain_trade(raw.replace(b'"symbol"', b'"symbol": "x", "symbol"', 1), Limits()) is None
    assert plain_trade(b"\xff" + raw, Limits()) is None
    assert plain_trade(raw, Limits(max_depth=3)) is None


json_documents = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30) + 1, 10**30 - 1) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=40,
)


@given(json_documents)
@settings(max_examples=300)
def test_answers_are_the_bytes_json_dumps_gives(value: Any) -> None:
    try:
        expected = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: neither way writes it
        with pytest.raises(Exception):  # noqa: B017
            json_response(value)
        return
    assert json_response(value).body == expected


def test_the_allocate_operation_is_what_fastapi_writes_for_its_parameters(keys: Keys) -> None:
    twin = FastAPI(title="fairalloc", version="0")

    @twin.post("/v1/allocate", tags=["engine"], summary="allocate one trade's fills under a policy",
               openapi_extra={"requestBody": _ALLOCATE_BODY}, responses={**_DECISION, **PROBLEM_RESPONSES})
    async def allocate_one(explain: bool = Query(False, description="add each account's explanation")) -> Response:
        raise AssertionError("documentation only")

    written = get_openapi(title="fairalloc", version="0", routes=twin.routes)["paths"]["/v1/allocate"]["post"]
    assert written == ALLOCATE_OPERATION
    app = create_app(ServiceConfig(jwks=keys.jwks, issuer=ISSUER, audience=AUDIENCE, service_identity="svc"))
    try:
        paths = app.openapi()["paths"]
    finally:
        app.state.service.close()
    assert list(paths)[:5] == ["/healthz", "/readyz", "/metrics", "/v1/allocate", "/v1/allocate/batch"]
    assert paths["/v1/allocate"]["post"] == {**ALLOCATE_OPERATION, "security": [{"bearer": []}]}


# --- over a real socket ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hot")


@pytest.fixture(scope="module")
def server(keys: Keys, folder: Path) -> Iterator[Server]:
    started = start_server(keys, folder, "--policies", str(ROOT / "policies"),
                           "--decision-log", str(folder / "decisions.jsonl"))
    yield started
    started.stop()


def post(server: Server, keys: Keys, query: str, body: bytes, roles: list[str] | None = None) -> httpx.Response:
    token = keys.mint("oms.gateway", ["trader"] if roles is None else roles)
    return httpx.post(f"{server.url}/v1/allocate{query}", content=body, timeout=30,
                      headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


@pytest.mark.parametrize(("query", "explained"), [("", False), ("?explain=true", True), ("?explain=1", True),
                                                  ("?explain=off", False), ("?explain=0&explain=yes", True),
                                                  ("?other=1", False)])
def test_explain_is_read_as_a_boolean_query_parameter(server: Server, keys: Keys, query: str,
                                                      explained: bool) -> None:
    raw = body_text(json.loads(PLAIN.read_text()))
    answer = post(server, keys, query, raw)
    assert answer.status_code == 200, answer.text
    assert answer.headers["fairalloc-decision-id"] == answer.json()["decision_id"]
    documents = {flag: post(server, keys, f"?explain={flag}", raw).json() for flag in ("false", "true")}
    assert documents["false"] != documents["true"]
    for document in (answer.json(), *documents.values()):
        document.pop("decision_id")
    assert {k: v for k, v in answer.json().items() if k != "decision_id"} == documents[str(explained).lower()]


def test_an_explain_that_is_not_a_boolean_is_422_after_authentication(server: Server, keys: Keys) -> None:
    raw = body_text(json.loads(PLAIN.read_text()))
    refused = post(server, keys, "?explain=maybe", raw)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert (refused.json()["code"], refused.json()["pointer"]) == ("request-parameter", "/query/explain")
    assert post(server, keys, "?explain=maybe", raw, roles=[]).status_code == 422  # before the role
    anonymous = httpx.post(f"{server.url}/v1/allocate?explain=maybe", content=raw, timeout=30)
    assert anonymous.status_code == 401


def test_other_methods_on_the_route_are_405_problems(server: Server, keys: Keys) -> None:
    answer = httpx.get(f"{server.url}/v1/allocate", timeout=30)
    assert answer.status_code == 405
    assert answer.json()["code"] == "method-not-allowed"


def test_a_decision_read_in_one_pass_logs_the_digest_of_its_trade(server: Server, keys: Keys,
                                                                  folder: Path) -> None:
    trade = json.loads(PLAIN.read_text())
    raw = body_text(trade)
    assert plain_allocation(raw, Limits()) is not None
    answer = post(server, keys, "", raw)
    assert answer.status_code == 200
    lines = [json.loads(line) for line in (folder / "decisions.jsonl").read_text().splitlines()]
    (mine,) = [line for line in lines if line["decision_id"] == answer.json()["decision_id"]]
    assert mine["input_digest"] == digest(trade)
    document = answer.json()
    del document["decision_id"]
    assert mine["result_digest"] == digest(document)
