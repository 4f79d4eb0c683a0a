"""The recorded workflow over a real socket, with tokens for a pm, a trader, a CCO and an auditor.

The trade's own times are taken as the test runs (entry and fills just after the statement is
recorded), so the record is a clean pre-trade sequence by the ledger's clock.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fairalloc.client import Client, ServiceError
from fairalloc.ledger.identity import os_user
from fairalloc.ledger.schema import SCHEMA_REVISION
from tests.service.conftest import ADMIN, ROOT, Keys, Server, bootstrap, fairalloc, start_server

EXAMPLE = ROOT / "examples" / "us-equity-pro-rata.trade.json"
POLICY_FILE = ROOT / "policies" / "us-equity-pro-rata.yaml"
USERS = {"cco.reyes": ["cco"], "pm.alpha": ["pm"], "trader.kim": ["trader"], "pm.dual": ["pm", "cco"]}


def trade_now(order_id: str, *, lead: float = 1.5) -> dict[str, Any]:
    """The worked example as order ``order_id``, entered and filled ``lead`` seconds from now."""
    trade: dict[str, Any] = json.loads(EXAMPLE.read_text())
    now = dt.datetime.now(dt.timezone.utc)
    at = (now + dt.timedelta(seconds=lead)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    trade["order"]["id"] = order_id
    trade["order"]["trade_date"] = now.date().isoformat()
    trade["order"]["entered_at"] = at
    trade["statement"]["recorded_at"] = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    for fill in trade["fills"]:
        fill["executed_at"] = at
    return trade


def wait_until(trade: dict[str, Any]) -> None:
    entered = dt.datetime.fromisoformat(trade["order"]["entered_at"].replace("Z", "+00:00"))
    delay = (entered - dt.datetime.now(dt.timezone.utc)).total_seconds()
    if delay > 0:
        time.sleep(delay + 0.05)


@pytest.fixture(scope="module")
def ledger_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('recorded') / 'ledger.db'}"
    return bootstrap(url)


@pytest.fixture(scope="module")
def server(keys: Keys, ledger_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("recorded-server")
    started = start_server(keys, folder, "--ledger", ledger_url, "--decision-log", str(folder / "decisions.jsonl"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def users(server: Server, keys: Keys) -> dict[str, Client]:
    """A client per user, each holding a token with its roles and the same roles in the ledger."""
    admin = server.client(keys.mint(ADMIN, ["admin"]))
    for user, roles in USERS.items():
        for role in roles:
            admin.grant(user, role)
    admin.publish_policy(POLICY_FILE.read_text())
    clients = {user: server.client(keys.mint(user, roles)) for user, roles in USERS.items()}
    clients[ADMIN] = admin
    clients["auditor.lee"] = server.client(keys.mint("auditor.lee", ["auditor"]))
    return clients


@pytest.fixture(scope="module")
def allocated(users: dict[str, Client]) -> dict[str, Any]:
    """Order SVC-1 recorded step by step: pm's statement, trader's entry, fills and allocation."""
    trade = trade_now("SVC-1")
    users["pm.alpha"].record_statement(trade)
    wait_until(trade)
    users["trader.kim"].enter_order(trade)
    users["trader.kim"].record_fills("SVC-1", trade)
    answer: dict[str, Any] = users["trader.kim"].allocate_order("SVC-1")
    return answer


def test_the_allocation_is_the_worked_example_with_a_decision_id(allocated: dict[str, Any]) -> None:
    quantities = {a["account"]: a["quantity"] for a in allocated["document"]["allocations"]}
    assert quantities == {"CLIENT-A": 15000, "CLIENT-B": 6000, "CLIENT-C": 3000, "PROPRIETARY": 6000}
    assert len(allocated["decision_id"]) == 36
    assert allocated["event"]["actor"] == "trader.kim"


def test_every_event_names_the_subject_of_the_token_that_made_it(
        users: dict[str, Client], allocated: dict[str, Any]) -> None:
    events = users["auditor.lee"].order("SVC-1")["events"]
    actors = {(e["kind"], e["actor"]) for e in events}
    assert actors == {("statement.recorded", "pm.alpha"), ("order.entered", "trader.kim"),
                      ("fill.recorded", "trader.kim"), ("order.allocated", "trader.kim")}
    published = users["auditor.lee"].policy_history("us-equity-pro-rata")
    assert [p["published_by"] for p in published] == [ADMIN]


def test_the_decision_log_cross_references_the_ledger_event(
        server: Server, allocated: dict[str, Any]) -> None:
    log = server.log.parent / "decisions.jsonl"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    (mine,) = [line for line in lines if line["decision_id"] == allocated["decision_id"]]
    assert mine["ledger_event"] == {"seq": allocated["event"]["seq"], "hash": allocated["event"]["hash"]}
    # with a ledger, the service vouches as the identity the ledger authenticates (the OS user
    # on SQLite), not as the name --service-identity gives
    assert mine["subject"] == "trader.kim" and mine["service"] == os_user()


def test_a_body_cannot_name_the_actor(users: dict[str, Client]) -> None:
    trade = trade_now("SVC-ACTOR")
    trade["actor"] = "cco.reyes"
    with pytest.raises(ServiceError) as caught:
        users["pm.alpha"].record_statement(trade)
    assert (caught.value.status, caught.value.code) == (422, "trade-unknown-field")
    assert caught.value.pointer == "/actor"


@pytest.mark.parametrize(("change", "code", "where"), [
    (lambda t: t["statement"]["accounts"][0]["attributes"].update({"desk\ud800": "x"}), "trade-attribute-key",
     "/statement/accounts/0/attributes/desk\ud800"),
    (lambda t: t["statement"]["accounts"][0]["attributes"].update({"desk": "x\udfff"}), "trade-string-unicode",
     "/statement/accounts/0/attributes/desk"),
    (lambda t: t["order"].update({"id": "SVC-\ud800"}), "trade-string-unicode", "/order/id"),
])
def test_a_lone_surrogate_in_a_recorded_body_is_a_problem_document(
        server: Server, keys: Keys, change: Any, code: str, where: str) -> None:
    # Once a 500: the order id reached the ledger's encoder, and a problem quoting a key with a
    # lone surrogate (a JSON escape without its pair) could not be encoded as UTF-8.
    trade = trade_now("SVC-SURROGATE")
    change(trade)
    body = json.dumps(trade).encode("ascii")  # the surrogate travels as its \u escape
    headers = {"Authorization": f"Bearer {keys.mint('pm.alpha', ['pm'])}", "Content-Type": "application/json"}
    answer = httpx.post(f"{server.url}/v1/statements", content=body, headers=headers, timeout=30)
    assert answer.status_code == 422
    problem = json.loads(answer.content.decode("utf-8"))
    assert (problem["code"], problem["pointer"]) == (code, where)


def test_the_trader_cannot_approve_and_the_requester_cannot_approve_its_own(
        users: dict[str, Client], keys: Keys, server: Server, allocated: dict[str, Any]) -> None:
    trader, cco, dual = users["trader.kim"], users["cco.reyes"], users["pm.dual"]
    moved = {"CLIENT-A": 14000, "CLIENT-B": 7000, "CLIENT-C": 3000, "PROPRIETARY": 6000}
    trader.request_override("SVC-1", moved, "CLIENT-RESTRICTION", "client A's size limit")
    with pytest.raises(ServiceError) as caught:
        trader.review_override("SVC-1", approve=True)
    assert (caught.value.status, caught.value.code) == (403, "role-forbidden")
    # a token claiming cco is not enough: the ledger's own grants are checked too
    claimed = server.client(keys.mint("pm.alpha", ["cco"]))
    with pytest.raises(ServiceError) as caught:
        claimed.review_override("SVC-1", approve=True)
    assert (caught.value.status, caught.value.code) == (403, "role-required")
    assert cco.review_override("SVC-1", approve=False, memo="no restriction on file")["decision"] == "rejected"

    dual.request_override("SVC-1", moved, "CLIENT-RESTRICTION", "restriction letter received")
    with pytest.raises(ServiceError) as caught:
        dual.review_override("SVC-1", approve=True)
    assert (caught.value.status, caught.value.code) == (403, "review-by-requester")
    approved = cco.review_override("SVC-1", approve=True, memo="letter checked")
    assert approved["event"]["actor"] == "cco.reyes"
    alerts = users["auditor.lee"].alerts()
    assert [a["alert"] for a in alerts].count("override-pending-review") == 2


def test_an_auditor_reads_and_never_writes(users: dict[str, Client], allocated: dict[str, Any]) -> None:
    auditor = users["auditor.lee"]
    with pytest.raises(ServiceError) as caught:
        auditor.record_statement(trade_now("SVC-AUDIT"))
    assert (caught.value.status, caught.value.code) == (403, "role-forbidden")
    with pytest.raises(ServiceError) as caught:
        auditor.allocate_order("SVC-1")
    assert caught.value.status == 403
    assert auditor.allocation("SVC-1")["document"]["filled"] == 30000
    assert auditor.verify()["ok"] is True
    assert auditor.replay("SVC-1")["identical"] is True
    assert auditor.replay_all()["identical"] is True
    archive = zipfile.ZipFile(io.BytesIO(auditor.export()))
    assert "allocations.csv" in archive.namelist()
    head = auditor.head()
    assert auditor.verify(f"{head['seq']}:{head['hash']}")["ok"] is True


def test_workflow_refusals_carry_the_cli_codes(users: dict[str, Client], allocated: dict[str, Any]) -> None:
    trader = users["trader.kim"]
    with pytest.raises(ServiceError) as caught:
        trader.enter_order(trade_now("SVC-NO-STATEMENT"))
    assert (caught.value.status, caught.value.code) == (422, "pretrade-statement-missing")
    # allocating again is a retry of the same step: it answers with the first allocation
    assert trader.allocate_order("SVC-1")["event"] == allocated["event"]
    with pytest.raises(ServiceError) as caught:
        users["auditor.lee"].order("NO-SUCH-ORDER")
    assert (caught.value.status, caught.value.code) == (404, "order-unknown")


def test_an_idempotent_retry_holds_across_processes(
        users: dict[str, Client], keys: Keys, ledger_url: str, tmp_path: Path) -> None:
    trade = trade_now("SVC-RETRY")
    first = users["pm.alpha"].record_statement(trade, idempotency_key="stmt-SVC-RETRY")
    other = start_server(keys, tmp_path, "--ledger", ledger_url)
    try:
        retry = other.client(keys.mint("pm.alpha", ["pm"]))
        assert retry.record_statement(trade, idempotency_key="stmt-SVC-RETRY") == first
        changed = {**trade, "fills": []}
        with pytest.raises(ServiceError) as caught:
            retry.record_statement(changed, idempotency_key="stmt-SVC-RETRY")
        assert (caught.value.status, caught.value.code) == (409, "idempotency-key-reused")
    finally:
        other.stop()
    kinds = [e["kind"] for e in users["auditor.lee"].order("SVC-RETRY")["events"]]
    assert kinds == ["statement.recorded"]


def test_readyz_checks_the_ledger(server: Server) -> None:
    ready = server.client().readyz()
    assert ready["ready"] is True
    assert ready["checks"]["ledger"]["reachable"] is True
    assert ready["checks"]["ledger"]["schema"] == SCHEMA_REVISION


def test_a_cco_seeds_a_rotation_once_and_a_trader_cannot(users: dict[str, Client]) -> None:
    state = json.loads((ROOT / "examples" / "fixed-income-rotation.state.json").read_text())
    with pytest.raises(ServiceError) as caught:
        users["trader.kim"].seed_rotation(state)
    assert (caught.value.status, caught.value.code) == (403, "role-forbidden")
    with pytest.raises(ServiceError) as caught:
        users["cco.reyes"].request("PUT", "/v1/rotations/other-group", body=json.dumps(state).encode())
    assert (caught.value.status, caught.value.code, caught.value.pointer) == (422, "rotation-group-mismatch", "/group")
    seeded = users["cco.reyes"].seed_rotation(state)
    assert seeded["event"]["actor"] == "cco.reyes"
    # the same seed again is a retry and answers with the first event; another position is refused
    assert users["cco.reyes"].seed_rotation(state)["event"] == seeded["event"]
    with pytest.raises(ServiceError) as caught:
        users["cco.reyes"].seed_rotation({**state, "position": state["position"] + 1})
    assert (caught.value.status, caught.value.code) == (409, "rotation-already-started")


def test_a_ledger_call_that_waits_too_long_is_504(keys: Keys, tmp_path: Path, serve: Any) -> None:
    """Another session holds SQLite's write lock; the step waits past --ledger-timeout."""
    import sqlite3

    path = tmp_path / "locked.db"
    bootstrap(str(path))
    server = serve("--ledger", str(path), "--ledger-timeout", "1")
    admin = server.client(keys.mint(ADMIN, ["admin"]))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(ServiceError) as caught:
            admin.grant("pm.late", "pm")
        assert (caught.value.status, caught.value.code) == (504, "ledger-timeout")
        assert time.monotonic() - started < 30
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert server.client().readyz()["ready"] is True
    # as the problem says, the step may still have been recorded: it was waiting, not refused
    deadline = time.monotonic() + 30
    while admin.users().get("pm.late") != ["pm"]:
        assert time.monotonic() < deadline, "the waiting step never completed"
        time.sleep(0.2)


def test_stateless_allocation_reads_the_ledgers_registry(users: dict[str, Client]) -> None:
    """This server has no policy folder: ID@VERSION and ID come from the published versions."""
    auditor = users["auditor.lee"]
    decision = auditor.allocate("us-equity-pro-rata@1", EXAMPLE.read_bytes())
    assert [a["quantity"] for a in decision["allocations"]] == [15000, 6000, 3000, 6000]
    assert auditor.allocate("us-equity-pro-rata", EXAMPLE.read_bytes())["policy"]["version"] == 1
    with pytest.raises(ServiceError) as caught:
        auditor.allocate("us-equity-pro-rata@9", EXAMPLE.read_bytes())
    assert (caught.value.status, caught.value.code) == (404, "policy-not-published")
