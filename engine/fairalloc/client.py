"""A Python client for ``fairalloc serve``, on httpx: what the tests use and integrators may.

Every method returns the decoded JSON answer; a refusal raises :class:`ServiceError` carrying the
problem document, its HTTP ``status``, error ``code`` and JSON ``pointer`` — the same code and
pointer ``fairalloc`` prints for the same input. Trade documents may be given as dicts or as the
exact bytes of a JSON file (sent as they are, so decimals and key order reach the service intact)::

    from fairalloc.client import Client

    with Client("https://fairalloc.internal", token=TOKEN) as client:
        decision = client.allocate("us-equity-pro-rata", Path("trade.json").read_bytes())
        print(decision["decision_id"], decision["allocations"])
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx

TradeInput = Mapping[str, Any] | bytes | str


class ServiceError(Exception):
    """A problem document (RFC 9457) answered by the service."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('code')}: {problem.get('detail')}")
        self.status = status
        self.problem = problem

    @property
    def code(self) -> str | None:
        code = self.problem.get("code")
        return code if isinstance(code, str) else None

    @property
    def pointer(self) -> str | None:
        pointer = self.problem.get("pointer")
        return pointer if isinstance(pointer, str) else None


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, default=_decimal).encode("utf-8")


def _decimal(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _trade_bytes(trade: TradeInput) -> bytes:
    if isinstance(trade, bytes):
        return trade
    if isinstance(trade, str):
        return trade.encode("utf-8")
    return _json_bytes(dict(trade))


class Client:
    """A connection to one service, authenticated by one bearer token."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 30.0,
                 http: httpx.Client | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = http or httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, *, body: bytes | None = None,
                content_type: str = "application/json", params: Mapping[str, Any] | None = None,
                idempotency_key: str | None = None) -> httpx.Response:
        """One call; a problem document raises :class:`ServiceError`."""
        headers: dict[str, str] = {}
        if body is not None:
            headers["Content-Type"] = content_type
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        response = self.http.request(method, path, content=body, headers=headers,
                                     params={k: v for k, v in (params or {}).items() if v is not None})
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"code": "http-error", "detail": response.text}
            raise ServiceError(response.status_code, problem if isinstance(problem, dict) else {})
        return response

    def _json(self, method: str, path: str, **options: Any) -> Any:
        return json.loads(self.request(method, path, **options).content, parse_float=Decimal)

    # operations
    def healthz(self) -> Any:
        return self._json("GET", "/healthz")

    def readyz(self) -> Any:
        return self._json("GET", "/readyz")

    def metrics(self) -> str:
        return self.request("GET", "/metrics").text

    def openapi(self) -> Any:
        return self._json("GET", "/openapi.json")

    # the stateless engine
    def allocate(self, policy: str, trade: TradeInput, *, explain: bool = False,
                 rotation: Mapping[str, Any] | None = None, idempotency_key: str | None = None) -> Any:
        """The allocation document of ``trade`` under ``policy`` (``ID`` or ``ID@VERSION``)."""
        parts = [b'{"policy":', _json_bytes(policy), b',"trade":', _trade_bytes(trade)]
        if rotation is not None:
            parts += [b',"rotation":', _json_bytes(dict(rotation))]
        return self._json("POST", "/v1/allocate", body=b"".join(parts) + b"}",
                          params={"explain": "true" if explain else None}, idempotency_key=idempotency_key)

    def allocate_batch(self, policy: str, trades: list[TradeInput], *, explain: bool = False) -> Any:
        body = b'{"policy":' + _json_bytes(policy) + b',"trades":[' + b",".join(map(_trade_bytes, trades)) + b"]}"
        return self._json("POST", "/v1/allocate/batch", body=body, params={"explain": "true" if explain else None})

    # the recorded workflow
    def record_statement(self, trade: TradeInput, *, idempotency_key: str | None = None) -> Any:
        return self._json("POST", "/v1/statements", body=_trade_bytes(trade), idempotency_key=idempotency_key)

    def enter_order(self, trade: TradeInput, *, policy: str | None = None,
                    idempotency_key: str | None = None) -> Any:
        return self._json("POST", "/v1/orders", body=_trade_bytes(trade), params={"policy": policy},
                          idempotency_key=idempotency_key)

    def record_fills(self, order_id: str, trade: TradeInput, *, idempotency_key: str | None = None) -> Any:
        return self._json("POST", f"/v1/orders/{order_id}/fills", body=_trade_bytes(trade),
                          idempotency_key=idempotency_key)

    def allocate_order(self, order_id: str, *, idempotency_key: str | None = None) -> Any:
        return self._json("POST", f"/v1/orders/{order_id}/allocation", body=b"",
                          idempotency_key=idempotency_key)

    def allocation(self, order_id: str) -> Any:
        return self._json("GET", f"/v1/orders/{order_id}/allocation")

    def request_override(self, order_id: str, allocations: Mapping[str, int | str], reason_code: str,
                         memo: str, *, idempotency_key: str | None = None) -> Any:
        body = _json_bytes({"allocations": dict(allocations), "reason_code": reason_code, "memo": memo})
        return self._json("POST", f"/v1/orders/{order_id}/overrides", body=body, idempotency_key=idempotency_key)

    def review_override(self, order_id: str, *, approve: bool, memo: str = "") -> Any:
        body = _json_bytes({"decision": "approved" if approve else "rejected", "memo": memo})
        return self._json("POST", f"/v1/orders/{order_id}/reviews", body=body)

    def order(self, order_id: str) -> Any:
        return self._json("GET", f"/v1/orders/{order_id}")

    def alerts(self) -> Any:
        return self._json("GET", "/v1/alerts")

    def replay(self, order_id: str) -> Any:
        return self._json("GET", f"/v1/orders/{order_id}/replay")

    def replay_all(self, date: str | None = None) -> Any:
        return self._json("GET", "/v1/replay", params={"date": date, "all": None if date else "true"})

    # policies, users, the chain
    def publish_policy(self, source: str) -> Any:
        return self._json("POST", "/v1/policies", body=source.encode("utf-8"), content_type="application/yaml")

    def policy_history(self, policy_id: str | None = None) -> Any:
        return self._json("GET", "/v1/policies", params={"id": policy_id})

    def policy(self, ref: str) -> Any:
        return self._json("GET", f"/v1/policies/{ref}")

    def users(self) -> Any:
        return self._json("GET", "/v1/users")

    def grant(self, user: str, role: str) -> Any:
        return self._json("PUT", f"/v1/users/{user}/roles/{role}", body=b"")

    def revoke(self, user: str, role: str) -> Any:
        return self._json("DELETE", f"/v1/users/{user}/roles/{role}")

    def seed_rotation(self, state: Mapping[str, Any]) -> Any:
        return self._json("PUT", f"/v1/rotations/{state['group']}", body=_json_bytes(dict(state)))

    def head(self) -> Any:
        return self._json("GET", "/v1/ledger/head")

    def verify(self, anchor: str | None = None) -> Any:
        return self._json("GET", "/v1/ledger/verify", params={"anchor": anchor})

    def export(self, date: str | None = None) -> bytes:
        """The record set as a zip archive (CSV and JSON Lines files)."""
        return self.request("GET", "/v1/exports", params={"date": date}).content
