"""The stateless engine over a real socket: allocation, authentication, problems, operations."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fairalloc.client import Client, ServiceError
from tests.service.conftest import AUDIENCE, ROOT, Keys, Server, start_server

EXAMPLE = ROOT / "examples" / "us-equity-pro-rata.trade.json"
POLICY = "us-equity-pro-rata"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    made = tmp_path_factory.mktemp("stateless")
    shutil.copytree(ROOT / "policies", made / "policies")
    return made


@pytest.fixture(scope="module")
def server(keys: Keys, folder: Path) -> Iterator[Server]:
    started = start_server(keys, folder, "--policies", str(folder / "policies"),
                           "--decision-log", str(folder / "decisions.jsonl"),
                           "--max-body-bytes", "200000", "--reload-interval", "0.2")
    yield started
    started.stop()


@pytest.fixture(scope="module")
def client(server: Server, keys: Keys) -> Client:
    return server.client(keys.mint("oms.gateway", ["trader"]))


def cli_errors(*args: str) -> list[dict[str, Any]]:
    """What ``fairalloc --error-format json`` reports for the same input."""
    done = subprocess.run([sys.executable, "-m", "fairalloc", "--error-format", "json", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode != 0
    errors: list[dict[str, Any]] = json.loads(done.stderr)["errors"]
    return errors


def test_healthz_answers_200(server: Server) -> None:
    assert server.client().healthz() == {"status": "ok"}


def test_readyz_reports_the_policies_loaded(server: Server) -> None:
    ready = server.client().readyz()
    assert ready["ready"] is True
    assert ready["checks"]["policies"] >= 5


def test_openapi_is_3_1_and_names_allocate(server: Server) -> None:
    document = server.client().openapi()
    assert document["openapi"].startswith("3.1")
    assert "/v1/allocate" in document["paths"]
    assert "post" in document["paths"]["/v1/allocate"]
    assert document["paths"]["/v1/allocate"]["post"]["security"] == [{"bearer": []}]
    assert "Trade" in document["components"]["schemas"]


def test_the_worked_example_allocates_15000_6000_3000_6000_at_100(client: Client) -> None:
    decision = client.allocate(POLICY, EXAMPLE.read_bytes())
    quantities = {a["account"]: a["quantity"] for a in decision["allocations"]}
    assert quantities == {"CLIENT-A": 15000, "CLIENT-B": 6000, "CLIENT-C": 3000, "PROPRIETARY": 6000}
    assert {a["average_price"] for a in decision["allocations"]} == {"100"}
    assert decision["average_price"] == "100"
    assert len(decision["decision_id"]) == 36
    assert decision["policy"]["id"] == POLICY and decision["policy"]["version"] == 1


def test_each_decision_has_its_own_id_and_the_same_document(client: Client) -> None:
    first = client.allocate(f"{POLICY}@1", EXAMPLE.read_bytes())
    second = client.allocate(POLICY, EXAMPLE.read_bytes())
    assert first.pop("decision_id") != second.pop("decision_id")
    assert first == second


def test_the_answer_is_the_cli_document(client: Client) -> None:
    done = subprocess.run([sys.executable, "-m", "fairalloc", "allocate", "--policy",
                           str(ROOT / "policies" / f"{POLICY}.yaml"), "--trade", str(EXAMPLE), "--explain"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, check=True)
    decision = client.allocate(POLICY, EXAMPLE.read_bytes(), explain=True)
    decision.pop("decision_id")
    assert decision == json.loads(done.stdout)


def test_decisions_are_logged_one_json_line_each(client: Client, folder: Path) -> None:
    decision = client.allocate(POLICY, EXAMPLE.read_bytes())
    lines = [json.loads(line) for line in (folder / "decisions.jsonl").read_text().splitlines()]
    (mine,) = [line for line in lines if line["decision_id"] == decision["decision_id"]]
    assert mine["subject"] == "oms.gateway"
    assert mine["service"] == "svc.fairalloc"
    assert mine["policy"] == decision["policy"]
    assert mine["input_digest"].startswith("sha256:") and mine["result_digest"].startswith("sha256:")
    assert mine["duration_ms"] >= 0


def test_batch_decides_each_trade_and_refuses_only_the_bad_one(client: Client) -> None:
    good = json.loads(EXAMPLE.read_text())
    bad = json.loads(EXAMPLE.read_text())
    bad["fills"][0]["quantity"] = "-5"
    answer = client.allocate_batch(POLICY, [good, bad, good])
    first, refused, third = answer["results"]
    assert first["decision_id"] != third["decision_id"]
    assert refused["problem"]["code"] == "trade-value"
    assert refused["problem"]["pointer"] == "/fills/0/quantity"
    assert refused["problem"]["instance"] == "/trades/1"


# --- authentication -------------------------------------------------------------------------


def _refused(server: Server, token: str | None) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        server.client(token).allocate(POLICY, EXAMPLE.read_bytes())
    return caught.value


def test_no_token_is_401_with_a_challenge(server: Server) -> None:
    error = _refused(server, None)
    assert error.status == 401 and error.code == "token-missing"
    response = server.client().http.post("/v1/allocate", content=b"{}")
    assert response.headers["www-authenticate"].startswith('Bearer realm="fairalloc"')
    assert response.headers["content-type"] == "application/problem+json"


def test_another_keys_signature_is_401(server: Server, keys: Keys) -> None:
    error = _refused(server, keys.mint("oms.gateway", ["trader"], sign_with=keys.stranger))
    assert (error.status, error.code) == (401, "token-signature")


def test_an_expired_token_is_401(server: Server, keys: Keys) -> None:
    error = _refused(server, keys.mint("oms.gateway", ["trader"], expires_in=-120))
    assert (error.status, error.code) == (401, "token-expired")


def test_expiry_within_the_leeway_is_accepted(server: Server, keys: Keys) -> None:
    token = keys.mint("oms.gateway", ["trader"], expires_in=-5)
    assert server.client(token).allocate(POLICY, EXAMPLE.read_bytes())["filled"] == 30000


def test_a_wrong_audience_is_401(server: Server, keys: Keys) -> None:
    error = _refused(server, keys.mint("oms.gateway", ["trader"], audience="another-service"))
    assert (error.status, error.code) == (401, "token-audience")


def test_a_wrong_issuer_and_a_future_nbf_are_401(server: Server, keys: Keys) -> None:
    assert _refused(server, keys.mint("oms", ["trader"], issuer="https://evil.test")).code == "token-issuer"
    assert _refused(server, keys.mint("oms", ["trader"], not_before=600)).code == "token-not-yet-valid"


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1", "ed-1"])
def test_rs256_es256_and_eddsa_tokens_are_accepted(server: Server, keys: Keys, kid: str) -> None:
    token = keys.mint("oms.gateway", ["trader"], kid=kid)
    assert server.client(token).allocate(POLICY, EXAMPLE.read_bytes())["filled"] == 30000


def test_an_hmac_token_made_with_the_public_key_is_401(server: Server, keys: Keys) -> None:
    from cryptography.hazmat.primitives import serialization

    key, _ = keys.private["rsa-1"]
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    forged = _forge_hs256({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"},
                          {"sub": "mallory", "iss": "https://idp.example.test", "aud": AUDIENCE,
                           "exp": now + 300, "roles": ["trader"]}, public)
    assert _refused(server, forged).code == "token-algorithm"
    unsigned = _b64(json.dumps({"alg": "none", "kid": "ed-1"}).encode()) + "." + _b64(
        json.dumps({"sub": "mallory", "iss": "https://idp.example.test", "aud": AUDIENCE,
                    "exp": now + 300}).encode()) + "."
    assert _refused(server, unsigned).status == 401


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge_hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    import hashlib
    import hmac

    signing = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    return signing + "." + _b64(hmac.new(secret, signing.encode(), hashlib.sha256).digest())


def test_a_token_without_roles_is_403(server: Server, keys: Keys) -> None:
    error = _refused(server, keys.mint("oms.gateway", []))
    assert (error.status, error.code) == (403, "role-forbidden")


# --- problems: the CLI's codes and pointers -------------------------------------------------


def test_a_refused_trade_carries_the_cli_code_and_pointer(client: Client, tmp_path: Path) -> None:
    trade = json.loads(EXAMPLE.read_text())
    trade["statement"]["accounts"][2]["intended"] = 5000.5
    text = json.dumps(trade)
    (tmp_path / "bad.json").write_text(text)
    expected = cli_errors("allocate", "--policy", str(ROOT / "policies" / f"{POLICY}.yaml"),
                          "--trade", str(tmp_path / "bad.json"))
    with pytest.raises(ServiceError) as caught:
        client.allocate(POLICY, text.encode())
    problem = caught.value.problem
    assert caught.value.status == 422
    assert problem["type"] == f"urn:fairalloc:error:{expected[0]['code']}"
    assert [(e["code"], e["pointer"]) for e in problem["errors"]] == [(e["code"], e["pointer"]) for e in expected]
    assert problem["pointer"] == "/statement/accounts/2/intended"
    assert problem["exit_code"] == 4


def test_a_duplicate_key_is_refused_as_the_cli_refuses_it(client: Client, tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace('"symbol": "XYZ",', '"symbol": "XYZ", "symbol": "ABC",')
    (tmp_path / "dup.json").write_text(text)
    expected = cli_errors("allocate", "--policy", str(ROOT / "policies" / f"{POLICY}.yaml"),
                          "--trade", str(tmp_path / "dup.json"))
    with pytest.raises(ServiceError) as caught:
        client.allocate(POLICY, text.encode())
    assert caught.value.code == expected[0]["code"] == "json-duplicate-key"


def test_malformed_json_is_400(client: Client) -> None:
    with pytest.raises(ServiceError) as caught:
        client.allocate(POLICY, b'{"order": ')
    assert (caught.value.status, caught.value.code) == (400, "json-syntax")


def test_an_unknown_policy_is_404(client: Client) -> None:
    with pytest.raises(ServiceError) as caught:
        client.allocate("no-such-policy@3", EXAMPLE.read_bytes())
    assert (caught.value.status, caught.value.code, caught.value.pointer) == (404, "policy-unknown", "/policy")


def test_a_body_over_the_limit_is_413(client: Client) -> None:
    trade = json.loads(EXAMPLE.read_text())
    trade["order"]["security"]["padding"] = "x" * 250_000
    with pytest.raises(ServiceError) as caught:
        client.allocate(POLICY, trade)
    assert (caught.value.status, caught.value.code) == (413, "request-too-large")


@pytest.mark.parametrize("levels", [40, 90_000])
def test_nesting_beyond_the_limit_is_422(client: Client, levels: int) -> None:
    trade = EXAMPLE.read_text().replace('{"asset_class": "equity"}',
                                        '{"asset_class": "equity", "deep": ' + "[" * levels + "]" * levels + "}")
    with pytest.raises(ServiceError) as caught:
        client.allocate(POLICY, trade.encode())
    assert (caught.value.status, caught.value.code) == (422, "json-too-deep")


def test_an_unknown_request_field_is_422(client: Client) -> None:
    body = b'{"policy": "us-equity-pro-rata", "trade": ' + EXAMPLE.read_bytes() + b', "actor": "cco"}'
    response = client.http.post("/v1/allocate", content=body)
    assert response.status_code == 422
    assert response.json()["code"] == "request-unknown-field" and response.json()["pointer"] == "/actor"



def test_the_fairness_state_goes_in_and_comes_out(client: Client) -> None:
    trade = (ROOT / "examples" / "model-sleeves-fair-rounding.trade.json").read_bytes()
    first = client.http.post("/v1/allocate", content=b'{"policy": "model-sleeves-fair-rounding", "trade": ' + trade + b"}")
    after = first.json()["fairness"]["after"]
    body = (b'{"policy": "model-sleeves-fair-rounding", "trade": ' + trade + b', "fairness": '
            + json.dumps(after).encode() + b"}")
    second = client.http.post("/v1/allocate", content=body).json()
    assert {a["account"]: a["quantity"] for a in second["allocations"]} == {
        "SLEEVE-A": 1300, "SLEEVE-B": 1400, "SLEEVE-C": 1300}
    assert second["fairness"]["before"] == after

# --- idempotency ----------------------------------------------------------------------------


def test_the_same_key_and_body_get_the_same_answer(client: Client) -> None:
    first = client.allocate(POLICY, EXAMPLE.read_bytes(), idempotency_key="order-7-try")
    again = client.allocate(POLICY, EXAMPLE.read_bytes(), idempotency_key="order-7-try")
    assert again == first


def test_the_same_key_with_another_body_is_409(client: Client) -> None:
    client.allocate(POLICY, EXAMPLE.read_bytes(), idempotency_key="order-8")
    with pytest.raises(ServiceError) as caught:
        client.allocate(POLICY, EXAMPLE.read_bytes(), explain=True, idempotency_key="order-8")
    assert (caught.value.status, caught.value.code) == (409, "idempotency-key-reused")


# --- operations -----------------------------------------------------------------------------


def test_metrics_are_prometheus_text_counting_decisions_and_refusals(server: Server, client: Client) -> None:
    client.allocate(POLICY, EXAMPLE.read_bytes())
    with pytest.raises(ServiceError):
        client.allocate(POLICY, b"[")
    families = {family.name: family for family in text_string_to_metric_families(server.client().metrics())}
    decided = [s for s in families["fairalloc_decisions"].samples if s.name == "fairalloc_decisions_total"]
    assert any(s.labels == {"kind": "stateless", "policy": f"{POLICY}@1"} and s.value >= 1 for s in decided)
    refused = [s for s in families["fairalloc_refusals"].samples if s.name == "fairalloc_refusals_total"]
    assert any(s.labels["code"] == "json-syntax" and s.labels["status"] == "400" for s in refused)
    latency = [s for s in families["fairalloc_request_duration_seconds"].samples
               if s.name.endswith("_count") and s.labels.get("route") == "/v1/allocate"]
    assert latency and latency[0].value >= 1
    assert "fairalloc_decision_log_unwritten" in families


def test_a_new_policy_version_in_the_folder_is_served_without_restart(client: Client, folder: Path) -> None:
    source = (folder / "policies" / f"{POLICY}.yaml").read_text()
    (folder / "policies" / "v2.yaml").write_text(source.replace("version: 1", "version: 2", 1))
    deadline = time.monotonic() + 20
    while True:
        try:
            decision = client.allocate(f"{POLICY}@2", EXAMPLE.read_bytes())
            break
        except ServiceError as error:
            assert error.code == "policy-unknown"
            assert time.monotonic() < deadline, "the new version was never loaded"
            time.sleep(0.2)
    assert decision["policy"]["version"] == 2
    assert client.allocate(POLICY, EXAMPLE.read_bytes())["policy"]["version"] == 2
    assert client.allocate(f"{POLICY}@1", EXAMPLE.read_bytes())["policy"]["version"] == 1
