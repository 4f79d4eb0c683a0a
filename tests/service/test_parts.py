"""The service's parts on their own: body bounds, token verification, idempotency stores, decision log."""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule
from prometheus_client import CollectorRegistry, Counter

from fairalloc.errors import FileAccessError
from fairalloc.ledger.store import Ledger
from fairalloc.service.auth import Verifier, load_jwks
from fairalloc.service.body import depth, parse_body
from fairalloc.service.bundle import Bundle
from fairalloc.service.config import Limits
from fairalloc.service.decisions import DecisionLog
from fairalloc.service.idempotency import DatabaseStore, MemoryStore, Store, Stored
from fairalloc.service.problems import Problem
from tests.service.conftest import AUDIENCE, ISSUER, ROOT, Keys

json_values = st.recursive(
    # integers within the documented bound on every number (30 digits; fairalloc.numbers)
    st.none() | st.booleans() | st.integers(-(10**30) + 1, 10**30 - 1) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=30,
)


def reference_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((reference_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((reference_depth(v) for v in value), default=0)
    return 0


@given(json_values)
@settings(max_examples=200)
def test_depth_is_the_nesting_of_arrays_and_objects(value: Any) -> None:
    assert depth(json.dumps(value)) == reference_depth(value)
    assert depth(json.dumps(value, ensure_ascii=False, indent=1)) == reference_depth(value)


@given(json_values)
@settings(max_examples=100)
def test_a_body_within_the_limits_parses_as_its_json(value: Any) -> None:
    raw = json.dumps(value).encode()
    limits = Limits(max_depth=64)
    assert parse_body(raw, limits) == value


def test_numbers_with_a_fraction_parse_as_decimals_never_floats() -> None:
    assert parse_body(b'{"price": 99.95}', Limits()) == {"price": Decimal("99.95")}


def test_a_duplicate_key_is_the_cli_code() -> None:
    with pytest.raises(Problem) as caught:
        parse_body(b'{"a": 1, "a": 2}', Limits())
    assert (caught.value.status, caught.value.code) == (422, "json-duplicate-key")


def test_invalid_utf8_is_400() -> None:
    with pytest.raises(Problem) as caught:
        parse_body(b'{"a": "\xff"}', Limits())
    assert (caught.value.status, caught.value.code) == (400, "json-encoding")


# --- tokens ---------------------------------------------------------------------------------


def _write(tmp_path: Path, keys: list[dict[str, Any]]) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": keys}))
    return path


def test_a_jwks_with_a_symmetric_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileAccessError) as caught:
        load_jwks(_write(tmp_path, [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]))
    assert caught.value.codes == ["jwks-symmetric-key"]


def test_a_public_key_labelled_for_hmac_is_refused(tmp_path: Path, keys: Keys) -> None:
    entry = json.loads(keys.jwks.read_text())["keys"][0]
    with pytest.raises(FileAccessError) as caught:
        load_jwks(_write(tmp_path, [{**entry, "alg": "HS256"}]))
    assert caught.value.codes[0] in ("jwks-key-unusable", "jwks-invalid")


def test_an_encryption_key_is_refused(tmp_path: Path, keys: Keys) -> None:
    entry = json.loads(keys.jwks.read_text())["keys"][0]
    with pytest.raises(FileAccessError) as caught:
        load_jwks(_write(tmp_path, [{**entry, "use": "enc"}]))
    assert caught.value.codes == ["jwks-key-unusable"]


def test_a_missing_jwks_file_is_an_io_error(tmp_path: Path) -> None:
    with pytest.raises(FileAccessError) as caught:
        load_jwks(tmp_path / "absent.json")
    assert caught.value.codes == ["jwks-unreadable"]


def _verifier(keys: Keys, **options: Any) -> Verifier:
    return Verifier(keys.jwks, issuer=ISSUER, audience=AUDIENCE, service_identity="svc", **options)


def test_roles_come_from_the_configured_claim_through_the_role_map(keys: Keys) -> None:
    verifier = _verifier(keys, roles_claim="groups", role_map={"Fairalloc-Desk": "trader"})
    token = keys.mint("Trader.Kim", extra={"groups": "Fairalloc-Desk cco unknown-group", "roles": ["admin"]})
    principal = verifier.principal(f"Bearer {token}")
    assert principal.roles == frozenset({"trader", "cco"})
    assert principal.actor.name == "trader.kim"
    assert (principal.actor.source, principal.actor.service) == ("token", "svc")


def test_a_look_alike_subject_is_refused(keys: Keys) -> None:
    token = keys.mint("trader.kim\u200b", ["trader"])
    with pytest.raises(Problem) as caught:
        _verifier(keys).principal(f"Bearer {token}")
    assert (caught.value.status, caught.value.code) == (401, "token-subject")


def test_a_token_without_exp_is_refused(keys: Keys) -> None:
    import jwt

    key, algorithm = keys.private["ed-1"]
    token = jwt.encode({"sub": "x", "iss": ISSUER, "aud": AUDIENCE}, key, algorithm=algorithm,
                       headers={"kid": "ed-1"})
    with pytest.raises(Problem) as caught:
        _verifier(keys).principal(f"Bearer {token}")
    assert caught.value.code == "token-claim-missing"


def test_the_leeway_is_bounded(keys: Keys) -> None:
    with pytest.raises(ValueError):
        _verifier(keys, leeway_seconds=3600)


def test_a_policy_folder_that_is_not_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileAccessError) as caught:
        Bundle(tmp_path / "absent")
    assert caught.value.codes == ["policies-not-a-folder"]


def test_a_policy_that_stops_compiling_keeps_its_last_good_version(tmp_path: Path) -> None:
    source = (ROOT / "policies" / "us-equity-pro-rata.yaml").read_text()
    (tmp_path / "p.yaml").write_text(source)
    (tmp_path / "not-a-policy.yaml").write_text("cases: []\n")
    bundle = Bundle(tmp_path)
    assert bundle.refresh() is True
    assert list(bundle.versions) == [("us-equity-pro-rata", 1)]
    (tmp_path / "p.yaml").write_text(source.replace("method: pro_rata", "method: pro_rota"))
    os.utime(tmp_path / "p.yaml", ns=(1, 1))
    assert bundle.refresh() is True
    assert list(bundle.versions) == [("us-equity-pro-rata", 1)] and list(bundle.errors) == [tmp_path / "p.yaml"]
    (tmp_path / "copy.yaml").write_text(source.replace("owner: Chief", "owner: Deputy"))
    bundle.refresh()
    assert bundle.versions == {}, "one id and version with two contents is served from neither"


# --- idempotency stores ---------------------------------------------------------------------


def _outcome(store: Store, operation: str, key: str, value: str) -> Any:
    try:
        if operation == "begin":
            return ("begun", store.begin(key, value))
        if operation == "finish":
            store.finish(key, Stored(200, "application/json", value.encode()))
        else:
            store.release(key)
        return ("done", None)
    except Problem as refusal:
        return ("refused", refusal.code)


class StoresAgree(RuleBasedStateMachine):
    """The in-memory store and the database store answer every sequence of calls alike.

    One ledger database serves every run (opening one migrates it, which is slow); each run
    names its keys with a prefix of its own."""

    database: DatabaseStore | None = None

    def __init__(self) -> None:
        super().__init__()
        self.reserved: set[str] = set()
        self.prefix = uuid.uuid4().hex

    @initialize()
    def open_stores(self) -> None:
        if StoresAgree.database is None:
            folder = tempfile.mkdtemp(prefix="fairalloc-idempotency-")
            StoresAgree.database = DatabaseStore(Ledger(f"sqlite:///{folder}/ledger.db").engine)
        self.stores: list[Store] = [MemoryStore(), StoresAgree.database]

    def _all(self, operation: str, key: str, value: str) -> Any:
        outcomes = [_outcome(store, operation, self.prefix + key, value) for store in self.stores]
        assert outcomes[0] == outcomes[1]
        return outcomes[0]

    @rule(key=st.sampled_from("abc"), value=st.sampled_from("xy"))
    def begin(self, key: str, value: str) -> None:
        if self._all("begin", key, value) == ("begun", None):
            self.reserved.add(key)

    @rule(key=st.sampled_from("abc"), value=st.sampled_from("xy"))
    def finish(self, key: str, value: str) -> None:
        if key in self.reserved:
            self._all("finish", key, value)
            self.reserved.discard(key)

    @rule(key=st.sampled_from("abc"))
    def release(self, key: str) -> None:
        self._all("release", key, "")
        self.reserved.discard(key)


StoresAgree.TestCase.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)
test_the_memory_and_database_stores_agree = StoresAgree.TestCase


def test_a_stale_reservation_is_taken_over(tmp_path: Path) -> None:
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        for store in (MemoryStore(stale_seconds=0.05), DatabaseStore(ledger.engine, stale_seconds=0.05)):
            assert store.begin("k", "f") is None
            with pytest.raises(Problem):
                store.begin("k", "f")
            time.sleep(0.1)
            assert store.begin("k", "f") is None


# --- the decision log -----------------------------------------------------------------------


def test_a_line_that_cannot_be_written_is_counted(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    unwritten = Counter("unwritten", "test", registry=registry)
    log = DecisionLog("/dev/full", unwritten)
    log.write({"decision_id": "d"})
    log.close()
    assert registry.get_sample_value("unwritten_total") == 1
    written = DecisionLog(str(tmp_path / "d.jsonl"), unwritten)
    written.write({"decision_id": "e", "quantity": 5})
    written.close()
    assert json.loads((tmp_path / "d.jsonl").read_text()) == {"decision_id": "e", "quantity": 5}
    assert registry.get_sample_value("unwritten_total") == 1


def test_a_remembered_token_still_expires(keys: Keys) -> None:
    verifier = _verifier(keys, leeway_seconds=0)
    token = keys.mint("oms", ["trader"], expires_in=1)
    assert verifier.principal(f"Bearer {token}").roles == frozenset({"trader"})
    assert verifier.principal(f"Bearer {token}").actor.name == "oms"
    time.sleep(1.6)
    with pytest.raises(Problem) as caught:
        verifier.principal(f"Bearer {token}")
    assert caught.value.code == "token-expired"


def test_a_remembered_token_is_not_valid_before_its_nbf(keys: Keys) -> None:
    verifier = _verifier(keys, leeway_seconds=0)
    token = keys.mint("oms", ["trader"], not_before=1)
    with pytest.raises(Problem) as caught:
        verifier.principal(f"Bearer {token}")
    assert caught.value.code == "token-not-yet-valid"
    time.sleep(1.6)
    assert verifier.principal(f"Bearer {token}").actor.name == "oms"


def test_the_socket_several_workers_share_gives_connections_tcp_nodelay() -> None:
    """With ``--workers N`` the connections asyncio accepts on the shared socket have Nagle's
    algorithm off, as with one worker: else each kept-alive answer waits for a delayed ACK."""
    import asyncio
    import socket

    import uvicorn

    from fairalloc.cli.serve import tcp_listener

    listener = tcp_listener(uvicorn.Config("x:y", host="127.0.0.1", port=0, workers=2))
    seen: list[int] = []

    async def accept_one() -> None:
        loop = asyncio.get_running_loop()
        connected = loop.create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()
                connected.set_result(None)

        server = await loop.create_server(Probe, sock=listener)
        with socket.create_connection(listener.getsockname()[:2]):
            await asyncio.wait_for(connected, 10)
        server.close()
        await server.wait_closed()

    asyncio.run(accept_one())
    assert seen and seen[0] != 0
