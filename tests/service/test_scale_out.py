"""Scale-out: two ``serve`` processes (one with two workers) on one PostgreSQL ledger behave as one.

Eight concurrent clients record and allocate orders of one rotation group through both servers:
every allocation must read the position the previous one left (no duplicate position, no fork),
``verify`` must find the chain intact and ``replay`` every allocation identical.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fairalloc.client import Client
from tests.ledger import pgcluster
from tests.ledger.conftest import pg_server  # noqa: F401 - the PostgreSQL fixture of the ledger tests
from tests.service.conftest import ADMIN, AUDIENCE, ISSUER, ROOT, Keys, bootstrap, fairalloc, start_server
from tests.service.test_recorded import trade_now, wait_until

CLIENTS = 8
ORDERS_EACH = 3
ROTATION = json.loads((ROOT / "examples" / "fixed-income-rotation.trade.json").read_text())


def rotation_trade(order_id: str) -> dict[str, Any]:
    """The fixed-income example as order ``order_id``, entered and filled a few seconds from now."""
    timed = trade_now(order_id, lead=3.0)
    trade: dict[str, Any] = json.loads(json.dumps(ROTATION))
    trade["order"].update(id=order_id, trade_date=timed["order"]["trade_date"],
                          entered_at=timed["order"]["entered_at"])
    trade["statement"]["recorded_at"] = timed["statement"]["recorded_at"]
    for index, fill in enumerate(trade["fills"]):
        fill.update(id=f"{order_id}-F{index}", executed_at=timed["order"]["entered_at"])
    return trade


def test_two_servers_and_workers_on_one_postgresql_ledger_keep_one_rotation(
        keys: Keys, pg_server: str, tmp_path: Path) -> None:  # noqa: F811
    url = bootstrap(pgcluster.create_database(pg_server))
    servers = [start_server(keys, tmp_path, "--ledger", url, "--workers", "2"),
               start_server(keys, tmp_path, "--ledger", url)]
    try:
        admin = servers[0].client(keys.mint(ADMIN, ["admin"]))
        admin.grant("desk.fi", "pm")
        admin.grant("desk.fi", "trader")
        admin.publish_policy((ROOT / "policies" / "fixed-income-rotation.yaml").read_text())
        token = keys.mint("desk.fi", ["pm", "trader"], expires_in=600)
        clients = [servers[n % 2].client(token) for n in range(CLIENTS)]
        orders = [[f"FI-SCALE-{n}-{k}" for k in range(ORDERS_EACH)] for n in range(CLIENTS)]
        trades = {order_id: rotation_trade(order_id) for batch in orders for order_id in batch}

        def statements(n: int) -> None:
            for order_id in orders[n]:
                clients[n].record_statement(trades[order_id], idempotency_key=f"s-{order_id}")

        def the_rest(n: int) -> None:
            client: Client = clients[n]
            for order_id in orders[n]:
                client.enter_order(trades[order_id], idempotency_key=f"e-{order_id}")
                client.record_fills(order_id, trades[order_id])
                client.allocate_order(order_id, idempotency_key=f"a-{order_id}")

        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(statements, range(CLIENTS)))
            wait_until(next(iter(trades.values())))
            list(pool.map(the_rest, range(CLIENTS)))

        auditor = servers[1].client(keys.mint("auditor.x", ["auditor"]))
        recorded = sorted((auditor.allocation(order_id) for order_id in trades), key=lambda a: a["event"]["seq"])
        assert len(recorded) == CLIENTS * ORDERS_EACH
        befores = [a["rotation_before"] for a in recorded]
        afters = [a["rotation_after"] for a in recorded]
        assert befores[0] is None
        assert befores[1:] == afters[:-1], "two allocations read the same rotation position"
        assert all(a["actor"] == "desk.fi" for a in (r["event"] for r in recorded))
        assert auditor.verify()["ok"] is True
        replayed = auditor.replay_all()
        assert replayed["identical"] is True and len(replayed["results"]) == CLIENTS * ORDERS_EACH
    finally:
        for server in servers:
            server.stop()


def test_serve_as_a_writer_never_migrates_and_starts_once_the_owner_has(
        keys: Keys, pg_server: str, tmp_path: Path) -> None:  # noqa: F811
    """A ledger from before migration 0004, split into roles then: the service's writer role cannot
    create the idempotency table, so ``serve`` refuses to start (exit 6); once the owner has opened
    the ledger (which migrates it and grants the writers the table), it serves idempotent retries."""
    from sqlalchemy import make_url

    from tests.ledger.test_append_only import split_at_0003

    owner = pgcluster.create_database(pg_server)
    split_at_0003(owner, ["clerk"], [])
    writer = make_url(owner).set(username="clerk").render_as_string(hide_password=False)
    refused = fairalloc("serve", "--port", "1", "--jwks", str(keys.jwks), "--issuer", ISSUER,
                        "--audience", AUDIENCE, "--ledger", writer)
    assert refused.returncode == 6, refused.stderr
    assert "ledger-database-error" in refused.stderr and "Traceback" not in refused.stderr
    for where, step in ((owner, ("ledger", "init", "--admin", "clerk")),
                        (writer, ("ledger", "user", "grant", "clerk", "service")),
                        (writer, ("ledger", "user", "grant", ADMIN, "admin"))):
        done = fairalloc(*step, "--ledger", where)
        assert done.returncode == 0, (step, done.stderr)
    server = start_server(keys, tmp_path, "--ledger", writer)
    try:
        admin = server.client(keys.mint(ADMIN, ["admin"]))
        first = admin.request("PUT", "/v1/users/desk.fi/roles/pm", idempotency_key="grant-1")
        again = admin.request("PUT", "/v1/users/desk.fi/roles/pm", idempotency_key="grant-1")
        assert first.status_code == again.status_code == 201, first.text
        assert again.headers["Idempotency-Replayed"] == "true" and again.content == first.content
    finally:
        server.stop()
