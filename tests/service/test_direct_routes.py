"""The recorded workflow's routes served by :class:`DirectRoute` answer exactly as FastAPI's own
handler answers for the same route: the same status, headers and bytes for a missing, a bad and
an insufficient token, for query parameters given once, twice or empty, and for a step that
reaches the (absent) ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from fairalloc.service import ServiceConfig, create_app
from fairalloc.service.app import PROBLEM_RESPONSES, _direct_handler, _handlers
from fairalloc.service.recorded import router
from tests.service.conftest import AUDIENCE, ISSUER, Keys


@pytest.fixture(scope="module")
def apps(keys: Keys) -> Iterator[tuple[FastAPI, FastAPI]]:
    """The application as served, and a twin whose recorded routes use FastAPI's handler."""
    app = create_app(ServiceConfig(jwks=keys.jwks, issuer=ISSUER, audience=AUDIENCE, service_identity="svc"))
    svc = app.state.service
    twin = FastAPI()
    twin.state.service = svc
    _handlers(twin, svc)
    plain = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)
    for route in router.routes:
        assert isinstance(route, APIRoute)
        plain.add_api_route(route.path.removeprefix("/v1"), route.endpoint, methods=list(route.methods or ()),
                            status_code=route.status_code)
    twin.include_router(plain)
    yield app, twin
    svc.close()


def _answer(app: FastAPI, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.request(method, path, content=b"{}", headers=headers)

    return asyncio.run(call())


def test_the_hot_steps_are_served_directly() -> None:
    direct = {(route.path, method) for route in router.routes if isinstance(route, APIRoute)
              for method in route.methods or () if _direct_handler(route.dependant, route.endpoint) is not None}
    assert {("/v1/statements", "POST"), ("/v1/orders", "POST"), ("/v1/orders/{order_id}/fills", "POST"),
            ("/v1/orders/{order_id}/allocation", "POST")} <= direct
    assert ("/v1/exports", "GET") not in direct  # a date parameter: FastAPI validates it


REQUESTS = [
    ("POST", "/v1/statements"), ("POST", "/v1/orders"), ("POST", "/v1/orders?policy=p"),
    ("POST", "/v1/orders?policy=a&policy=b"), ("POST", "/v1/orders?policy="),
    ("POST", "/v1/orders/O-1/fills"), ("POST", "/v1/orders/O-1/allocation"),
    ("GET", "/v1/orders/O-1/allocation"), ("GET", "/v1/orders/O%2F1"), ("POST", "/v1/orders/O-1/overrides"),
    ("POST", "/v1/orders/O-1/reviews"), ("GET", "/v1/alerts"), ("GET", "/v1/policies?id=x"),
    ("GET", "/v1/ledger/verify?anchor=bad"), ("PUT", "/v1/rotations/a/b"), ("PUT", "/v1/users/u/roles/pm"),
]


@pytest.mark.parametrize(("method", "path"), REQUESTS)
@pytest.mark.parametrize("who", ["nobody", "garbage", "auditor", "trader", "cco"])
def test_a_direct_route_answers_as_fastapis_handler(apps: tuple[FastAPI, FastAPI], keys: Keys,
                                                    method: str, path: str, who: str) -> None:
    headers = {"Content-Type": "application/json"}
    if who == "garbage":
        headers["Authorization"] = "Bearer not-a-token"
    elif who != "nobody":
        headers["Authorization"] = f"Bearer {keys.mint('desk.one', [who])}"
    served, twin = (_answer(app, method, path, headers) for app in apps)
    assert served.status_code == twin.status_code
    assert served.content == twin.content
    assert served.headers.get("content-type") == twin.headers.get("content-type")
    assert served.headers.get("www-authenticate") == twin.headers.get("www-authenticate")
