"""The application factory: routes of the stateless engine, health, metrics and the OpenAPI document.

``create_app(config)`` builds one FastAPI application over one :class:`~fairalloc.service.state.Service`.
Bodies are read and parsed by :mod:`fairalloc.service.body` (never by FastAPI's model binding,
which would parse numbers as binary floats and let duplicate keys through); every refusal is a
problem document (:mod:`fairalloc.service.problems`). The recorded workflow's routes are in
:mod:`fairalloc.service.recorded`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import msgspec
from fastapi import Depends, FastAPI, Query
from fastapi.routing import APIRoute
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from fairalloc import FairnessState, RotationState, allocate, load_trade
from fairalloc.errors import Diagnostic, ExitCode, FairallocError, InputError, Location
from fairalloc.plan import Policy
from fairalloc.schema import schema
from fairalloc.service.auth import Principal, forbidden
from fairalloc.service.body import member, parse_body, plain_allocation, read_bytes
from fairalloc.service.config import ServiceConfig
from fairalloc.service.decisions import digest, now_text
from fairalloc.service.idempotency import MAX_KEY_LENGTH, Stored, fingerprint, scope_key
from fairalloc.service.problems import PROBLEM_TYPE, Problem, problem
from fairalloc.service.state import Service, service
from fairalloc.trade import Trade, parse_json

log = logging.getLogger("fairalloc.service")

ANY_ROLE = frozenset({"trader", "pm", "cco", "admin", "auditor"})
"""Roles that may read and compute without recording anything (the stateless engine, reads)."""


# --- responses ---------------------------------------------------------------------------------


_ENCODER = msgspec.json.Encoder()


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer, compact and exact (the engine's documents hold no binary floats), encoded
    in C: the bytes ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))`` would give."""
    return Response(_ENCODER.encode(value), status, headers, media_type="application/json")


def problem_response(svc: Service, refusal: Problem, instance: str) -> Response:
    """A problem document, counted in ``fairalloc_refusals_total`` by status and code."""
    svc.metrics.refusals.labels(str(refusal.status), refusal.code).inc()
    # A refusal may quote input text UTF-8 cannot carry (a lone surrogate from a JSON escape, in a
    # pointer or a message): written as its JSON escape, never a failure to answer.
    body = json.dumps(refusal.document(instance), ensure_ascii=False).encode("utf-8", "backslashreplace")
    return Response(body, refusal.status, refusal.headers, media_type=PROBLEM_TYPE)


# --- authentication ----------------------------------------------------------------------------


async def authenticated(request: Request, svc: Service = Depends(service)) -> Principal:
    """The dependency that authenticates the caller (401 problem if it cannot). A coroutine, as
    every dependency here: FastAPI would run a plain function on a worker thread, a hop that
    costs more than the check."""
    return svc.verifier.principal(request.headers.get("authorization"))


def allowed(principal: Principal, step: str, roles: frozenset[str]) -> None:
    """403 unless the caller's token carries one of ``roles``."""
    if not principal.roles & roles:
        raise forbidden(principal, step, roles)


# --- idempotency -------------------------------------------------------------------------------


async def idempotent(request: Request, svc: Service, principal: Principal, raw: bytes,
                     run: Callable[[], Awaitable[Response]]) -> Response:
    """Answer ``run()``, or the stored answer of an earlier request with the same key (see
    :mod:`fairalloc.service.idempotency`). Problems raised by ``run`` are answers too."""
    key = request.headers.get("idempotency-key")
    instance = request.url.path
    if key is None:
        try:
            return await run()
        except Problem as refusal:
            return problem_response(svc, refusal, instance)
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        return problem_response(svc, problem(400, "idempotency-key-invalid",
                                             f"an Idempotency-Key is 1 to {MAX_KEY_LENGTH} printable "
                                             "characters"), instance)
    scoped = scope_key(principal.actor.name, request.method, instance, key)
    request_print = fingerprint(request.url.query, raw)
    store = svc.idempotency
    try:
        stored = await _store_call(svc, store.begin, scoped, request_print)
    except Problem as refusal:
        return problem_response(svc, refusal, instance)
    if stored is not None:
        return Response(stored.body, stored.status, {"Idempotency-Replayed": "true"},
                        media_type=stored.media_type)
    try:
        response = await run()
    except Problem as refusal:
        response = problem_response(svc, refusal, instance)
    except BaseException:
        await _store_call(svc, store.release, scoped)
        raise
    try:
        if response.status_code >= 500:
            await _store_call(svc, store.release, scoped)
        else:
            answer = Stored(response.status_code, response.media_type or "application/json", bytes(response.body))
            await _store_call(svc, store.finish, scoped, answer)
    except Problem as refusal:
        # The step was answered; only keeping its answer failed. The caller gets the answer, and
        # a retry finds the key still reserved (409 in flight) until the reservation goes stale.
        log.warning("could not keep the answer of an Idempotency-Key: %s", refusal)
    return response


async def _store_call(svc: Service, function: Callable[..., Any], *args: Any) -> Any:
    """An idempotency store call: inline in memory, else a ledger call (timed out, and a database
    that cannot be reached answered 503 ``ledger-unreachable``)."""
    if svc.ledger is None:
        return function(*args)
    try:
        return await svc.ledger_call("idempotency", function, *args)
    except SQLAlchemyError as error:
        raise problem(503, "ledger-unreachable", f"the ledger's database could not keep an "
                      f"Idempotency-Key: {type(error).__name__}", exit_code=ExitCode.LEDGER) from None


# --- the stateless engine ----------------------------------------------------------------------


def decide(svc: Service, principal: Principal, policy: Policy, trade_json: Any, rotation_json: Any,
           explain: bool, file: str, fairness_json: Any = None) -> dict[str, Any]:
    """One allocation decision: validate the trade, allocate, log the decision line.

    Returns the allocation document with its ``decision_id``; raises :class:`FairallocError`
    exactly as ``fairalloc allocate`` would for the same trade."""
    started = time.perf_counter()
    if not isinstance(trade_json, dict):
        raise InputError(Diagnostic("trade-type", "a trade document must be a JSON object",
                                    Location(file, pointer="")))
    trade = load_trade(trade_json, file=file)
    return decided(svc, principal, policy, trade, lambda: trade_json, rotation_json, fairness_json,
                   explain, file, started)


def decided(svc: Service, principal: Principal, policy: Policy, trade: Trade, trade_json: Callable[[], Any],
            rotation_json: Any, fairness_json: Any, explain: bool, file: str, started: float) -> dict[str, Any]:
    """The decision on a trade already read (at ``started``, a ``perf_counter`` reading):
    allocate, count, log. ``trade_json`` gives the trade as JSON, asked for only when the
    decision log is written."""
    state = RotationState.from_json(rotation_json, file=f"{file}:rotation") if rotation_json is not None else None
    fairness = (FairnessState.from_json(fairness_json, file=f"{file}:fairness")
                if fairness_json is not None else None)
    result = allocate(policy, trade, state, file=file, fairness=fairness)
    document = result.document(explain=explain)
    decision_id = str(uuid.uuid4())
    elapsed = time.perf_counter() - started
    svc.metrics.decision_seconds.observe(elapsed)
    svc.metrics.decisions.labels("stateless", policy.ref).inc()
    if svc.decisions.enabled:  # its digests cost as much as validating the trade: only when logged
        svc.decisions.write(decision_line(decision_id, principal, document["policy"], trade_json(), document, elapsed))
    return {"decision_id": decision_id, **document}


def decision_line(decision_id: str, principal: Principal, policy: dict[str, Any], input_json: Any,
                  result: Any, elapsed: float, event: dict[str, Any] | None = None) -> dict[str, Any]:
    """The decision log's line for one decision (see :mod:`fairalloc.service.decisions`)."""
    line: dict[str, Any] = {
        "decision_id": decision_id,
        "time": now_text(),
        "subject": principal.actor.name,
        "service": principal.actor.service,
        "policy": {"id": policy["id"], "version": policy["version"], "digest": policy["digest"]},
        "input_digest": digest(input_json),
        "result_digest": digest(result),
        "duration_ms": round(elapsed * 1000, 3),
    }
    if event is not None:
        line["ledger_event"] = event
    return line


# --- the application ---------------------------------------------------------------------------


def create_app(config: ServiceConfig) -> FastAPI:
    """The application for ``config``: opens the ledger and loads the policy bundle now, so a
    misconfiguration stops start-up with the CLI's error rather than failing requests later."""
    from fairalloc.service.recorded import router as recorded

    svc = Service(config)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        poller = asyncio.create_task(_poll_policies(svc))
        try:
            yield
        finally:
            poller.cancel()
            svc.close()

    app = FastAPI(title="fairalloc", version=_version(), lifespan=lifespan,
                  summary="Fair and equitable allocation of block trades, as policy-as-code",
                  docs_url=None, redoc_url=None)
    app.state.service = svc
    app.add_middleware(_Timing, svc=svc)
    _handlers(app, svc)
    _stateless_routes(app, _AllocateRoute(svc))
    app.router.routes.extend(recorded.routes)  # the application's own routes, not an included router
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


async def _poll_policies(svc: Service) -> None:
    while True:
        await asyncio.sleep(svc.config.reload_interval_seconds)
        try:
            await asyncio.to_thread(svc.refresh_policies)
        except Exception:  # noqa: BLE001 - a failed scan is logged and retried, never fatal
            log.exception("scanning the policy folder failed")


def _version() -> str:
    from importlib.metadata import version

    return version("fairalloc")


def _handlers(app: FastAPI, svc: Service) -> None:
    async def on_problem(request: Request, refusal: Exception) -> Response:
        assert isinstance(refusal, Problem)
        return problem_response(svc, refusal, request.url.path)

    async def on_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, FairallocError)
        return problem_response(svc, Problem.of(error), request.url.path)

    async def on_http(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        code = {404: "not-found", 405: "method-not-allowed"}.get(error.status_code, "http-error")
        refusal = problem(error.status_code, code, str(error.detail))
        return problem_response(svc, refusal, request.url.path)

    async def on_invalid(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        diagnostics = [Diagnostic("request-parameter", str(item.get("msg", "invalid")),
                                  Location(pointer="/" + "/".join(str(p) for p in item.get("loc", ()))))
                       for item in error.errors()]
        return problem_response(svc, Problem(422, diagnostics, ExitCode.INVALID_INPUT), request.url.path)

    async def on_defect(request: Request, error: Exception) -> Response:
        log.exception("internal error answering %s %s", request.method, request.url.path)
        refusal = problem(500, "internal", f"internal error: {type(error).__name__}; this is a defect "
                          "in fairalloc", exit_code=ExitCode.INTERNAL)
        return problem_response(svc, refusal, request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(FairallocError, on_error)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(Exception, on_defect)


_ALLOCATE_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["policy", "trade"], "additionalProperties": False,
        "properties": {
            "policy": {"type": "string", "description": "ID or ID@VERSION", "examples": ["us-equity-pro-rata@1"]},
            "trade": {"$ref": "#/components/schemas/Trade"},
            "rotation": {"type": "object", "description": "rotation state before this order (rotation policies)"},
            "fairness": {"type": "object", "description": "fairness state before this order: the group's cumulative "
                         "rounding advantages (policies with a fairness section)"},
        }}}},
}
_BATCH_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["policy", "trades"], "additionalProperties": False,
        "properties": {
            "policy": {"type": "string", "description": "ID or ID@VERSION, for every trade"},
            "trades": {"type": "array", "items": {"$ref": "#/components/schemas/Trade"}},
        }}}},
}
_DECISION: dict[int | str, dict[str, Any]] = {"200": {"description": "the allocation document of the contract, with its decision id",
                     "content": {"application/json": {"schema": {"allOf": [
                         {"$ref": "#/components/schemas/Allocation"},
                         {"type": "object", "required": ["decision_id"],
                          "properties": {"decision_id": {"type": "string", "format": "uuid"}}}]}}}}}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"description": "refused: an RFC 9457 problem document with the CLI's error code and pointer",
            "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}},
}


def _stateless_routes(app: FastAPI, allocate_one: _AllocateRoute) -> None:
    @app.get("/healthz", tags=["operations"], summary="liveness")
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get("/readyz", tags=["operations"], summary="readiness: policies loaded, ledger reachable and migrated")
    async def readyz(svc: Service = Depends(service)) -> Response:
        checks: dict[str, Any] = {"policies": len(svc.bundle.versions)}
        ready = svc.config.policies is None or bool(svc.bundle.versions)
        if svc.bundle.errors:
            checks["policy_errors"] = {str(path): text for path, text in sorted(svc.bundle.errors.items())}
        if svc.ledger is not None:
            try:
                checks["ledger"] = await svc.ledger_call("readiness", _ledger_ready, svc)
            except (Problem, FairallocError) as error:
                checks["ledger"] = {"reachable": False, "error": str(error)}
                ready = False
        return json_response({"ready": ready, "checks": checks}, 200 if ready else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics (text format)")
    async def metrics(svc: Service = Depends(service)) -> Response:
        return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.router.routes.append(allocate_one)  # served in this place, documented in it (_openapi)

    @app.post("/v1/allocate/batch", tags=["engine"], summary="allocate many trades under one policy",
              openapi_extra={"requestBody": _BATCH_BODY}, responses=PROBLEM_RESPONSES)
    async def allocate_batch(request: Request, explain: bool = Query(False),
                             svc: Service = Depends(service),
                             principal: Principal = Depends(authenticated)) -> Response:
        """Each trade is decided on its own: ``results[i]`` is trade ``i``'s allocation (with its
        decision id) or its problem document (``instance`` ``/trades/i``); one refusal does not
        stop the others."""
        allowed(principal, "allocate", ANY_ROLE)
        raw = await read_bytes(request, svc.config.limits)

        async def run() -> Response:
            body = parse_body(raw, svc.config.limits)
            _only(body, ("policy", "trades"))
            policy = await svc.resolve_policy(member(body, "policy"))
            trades = member(body, "trades")
            limit = svc.config.limits.max_batch
            if not isinstance(trades, list):
                raise Problem.of(InputError(Diagnostic("request-type", "'trades' must be an array",
                                                       Location(pointer="/trades"))))
            if len(trades) > limit:
                raise problem(413, "batch-too-large", f"a batch holds at most {limit} trades, not {len(trades)}",
                              pointer="/trades")
            results: list[dict[str, Any]] = []
            for index, trade_json in enumerate(trades):
                try:
                    results.append(decide(svc, principal, policy, trade_json, None, explain, f"trades/{index}"))
                except FairallocError as error:
                    refused = Problem.of(error)
                    svc.metrics.refusals.labels(str(refused.status), refused.code).inc()
                    results.append({"problem": refused.document(f"/trades/{index}")})
            return json_response({"results": results})

        return await idempotent(request, svc, principal, raw, run)


class DirectRoute(APIRoute):
    """A route served without FastAPI's per-request dependency resolution and parameter
    validation where its endpoint takes nothing that could fail them: the request, the
    :func:`service` and the :func:`authenticated` caller (resolved in the order declared, as
    FastAPI resolves them: a 401 raised the same way), text path parameters and optional text
    query parameters (read as FastAPI reads them: the last value given, else the default). Any
    other endpoint is served by FastAPI's own handler. The route is declared, matched and
    documented as FastAPI's is; only the call differs."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        direct = _direct_handler(self.dependant, self.endpoint)
        return direct if direct is not None else super().get_route_handler()


def _direct_handler(dependant: Any, endpoint: Callable[..., Awaitable[Response]]) -> (
        Callable[[Request], Coroutine[Any, Any, Response]] | None):
    """The handler :class:`DirectRoute` serves an endpoint with, or None if it takes more."""
    if (dependant.header_params or dependant.cookie_params or dependant.body_params
            or dependant.websocket_param_name or dependant.http_connection_param_name
            or dependant.response_param_name or dependant.background_tasks_param_name
            or dependant.security_scopes_param_name):
        return None
    resolved = {service: "service", authenticated: "principal"}
    steps: list[tuple[str, str]] = []
    for sub in dependant.dependencies:
        if sub.call not in resolved or sub.name is None:
            return None
        steps.append((sub.name, resolved[sub.call]))
    if any(field.field_info.annotation is not str for field in dependant.path_params):
        return None
    if any(field.field_info.annotation != (str | None) or field.field_info.default is not None
           for field in dependant.query_params):
        return None
    path = [field.name for field in dependant.path_params]
    query = [(field.name, field.alias) for field in dependant.query_params]
    request_name = dependant.request_param_name

    async def handler(request: Request) -> Response:
        svc: Service = request.app.state.service
        arguments: dict[str, Any] = {}
        for name, what in steps:
            arguments[name] = svc if what == "service" else svc.verifier.principal(
                request.headers.get("authorization"))
        for name in path:
            arguments[name] = request.path_params[name]
        for name, alias in query:
            arguments[name] = request.query_params.get(alias)
        if request_name is not None:
            arguments[request_name] = request
        return await endpoint(**arguments)

    return handler


class _AllocateRoute(Route):
    """``POST /v1/allocate``, the engine's hot route, served without FastAPI's per-request
    machinery (its dependency resolution and parameter validation cost more than the HTTP parsing
    does): a plain Starlette endpoint doing what the route's dependencies did, in the same order —
    authenticate (401), read ``explain`` as FastAPI reads a boolean query parameter (422 with the
    same problem document), check the role (403), read the body within the limits (413) — then
    the decision under :func:`idempotent`. Refusals are raised to the application's exception
    handlers as from every other route, and the request is timed by the same middleware. The
    operation stays in the OpenAPI document (:data:`ALLOCATE_OPERATION`)."""

    def __init__(self, svc: Service) -> None:
        super().__init__("/v1/allocate", self._serve, methods=["POST"], name="allocate_one")
        self.svc = svc

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """As FastAPI's routes match: the route named in the scope (its latency's label)."""
        match, child_scope = super().matches(scope)
        if match != Match.NONE:
            child_scope["route"] = self
        return match, child_scope

    async def _serve(self, request: Request) -> Response:
        svc = self.svc
        principal = svc.verifier.principal(request.headers.get("authorization"))
        explain = _explain(request) if request.scope["query_string"] else False
        allowed(principal, "allocate", ANY_ROLE)
        raw = await read_bytes(request, svc.config.limits)

        async def run() -> Response:
            started = time.perf_counter()
            plain = plain_allocation(raw, svc.config.limits)
            if plain is None:
                return await _allocate_read(svc, principal, raw, explain)
            read = time.perf_counter() - started
            policy = await svc.resolve_policy(plain.policy)
            try:
                answer = decided(svc, principal, policy, plain.trade, lambda: parse_json(plain.trade_text, "trade"),
                                 plain.rotation, plain.fairness, explain, "trade", time.perf_counter() - read)
            except FairallocError as error:
                raise Problem.of(error) from None
            return json_response(answer, headers={"Fairalloc-Decision-Id": answer["decision_id"]})

        return await idempotent(request, svc, principal, raw, run)


async def _allocate_read(svc: Service, principal: Principal, raw: bytes, explain: bool) -> Response:
    """``POST /v1/allocate`` on a body read the general way (:func:`parse_body`): every body that
    :func:`plain_allocation` does not clear, so every refusal of a body is this reading's."""
    body = parse_body(raw, svc.config.limits)
    _only(body, ("policy", "trade", "rotation", "fairness"))
    policy = await svc.resolve_policy(member(body, "policy"))
    try:
        answer = decide(svc, principal, policy, member(body, "trade"), member(body, "rotation", required=False),
                        explain, "trade", member(body, "fairness", required=False))
    except FairallocError as error:
        raise Problem.of(error) from None
    return json_response(answer, headers={"Fairalloc-Decision-Id": answer["decision_id"]})


_BOOLEAN = TypeAdapter(bool)


def _explain(request: Request) -> bool:
    """The ``explain`` query parameter, read as FastAPI reads a ``bool`` query parameter (the
    last value given; pydantic's reading of the text), refused as FastAPI refuses it."""
    given = request.query_params.get("explain")
    if given is None:
        return False
    try:
        return _BOOLEAN.validate_python(given)
    except ValidationError as error:
        raise RequestValidationError([{**item, "loc": ("query", "explain", *item["loc"])}
                                      for item in error.errors()]) from None


ALLOCATE_OPERATION: dict[str, Any] = {
    "tags": ["engine"],
    "summary": "allocate one trade's fills under a policy",
    "operationId": "allocate_one_v1_allocate_post",
    "parameters": [{"name": "explain", "in": "query", "required": False,
                    "schema": {"type": "boolean", "description": "add each account's explanation",
                               "default": False, "title": "Explain"},
                    "description": "add each account's explanation"}],
    "responses": {**_DECISION, **PROBLEM_RESPONSES},
    "requestBody": _ALLOCATE_BODY,
}
"""The OpenAPI operation of ``POST /v1/allocate`` (:class:`_AllocateRoute`), as FastAPI would
write it for the route's parameters."""


def _only(body: Any, names: tuple[str, ...]) -> None:
    """422 for a member the request does not define (a typo must not be silently ignored)."""
    member(body, names[0])
    for name in body:
        if name not in names:
            raise Problem.of(InputError(Diagnostic("request-unknown-field", f"unknown field '{name}'",
                                                   Location(pointer=f"/{name}"))))


def _ledger_ready(svc: Service) -> dict[str, Any]:
    from alembic.runtime.migration import MigrationContext

    from fairalloc.ledger.schema import SCHEMA_REVISION

    ledger = svc.require_ledger()
    with ledger.read() as session:
        head = session.head()
        revision = MigrationContext.configure(session.conn).get_current_revision()
    if revision != SCHEMA_REVISION:
        raise problem(503, "ledger-not-migrated", f"the ledger's schema is at {revision}, not {SCHEMA_REVISION}",
                      exit_code=ExitCode.LEDGER)
    return {"reachable": True, "backend": ledger.backend, "schema": revision,
            "head": head.seq if head is not None else 0}


class _Timing:
    """ASGI middleware: every HTTP request's latency into ``fairalloc_request_duration_seconds``,
    labelled by its route template (``/v1/orders/{order_id}``), never by raw path."""

    def __init__(self, app: ASGIApp, svc: Service) -> None:
        self.app = app
        self.svc = svc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.svc.metrics.request_seconds.labels(scope["method"], route).observe(time.perf_counter() - started)


# --- the OpenAPI document ----------------------------------------------------------------------


def _openapi(app: FastAPI) -> dict[str, Any]:
    """OpenAPI 3.1 with the contract's schemas as components and bearer authentication."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    served = document.setdefault("paths", {})
    hot = next(index for index, route in enumerate(app.routes) if isinstance(route, _AllocateRoute))
    ahead = get_openapi(title=app.title, version=app.version, routes=app.routes[:hot]).get("paths", {})
    paths = {path: operations for path, operations in served.items() if path in ahead}
    paths["/v1/allocate"] = {"post": copy.deepcopy(ALLOCATE_OPERATION)}  # where the route is served
    paths.update((path, operations) for path, operations in served.items() if path not in ahead)
    document["paths"] = paths
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name, title in (("trade", "Trade"), ("allocation", "Allocation")):
        schemas.update(_embedded(schema(name), title))
    schemas["Problem"] = {
        "type": "object", "required": ["type", "title", "status", "code", "errors"],
        "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                       "detail": {"type": "string"}, "instance": {"type": "string"},
                       "code": {"type": "string"}, "pointer": {"type": ["string", "null"]},
                       "exit_code": {"type": "integer"}, "errors": {"type": "array", "items": {"type": "object"}}},
    }
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
    for path, operations in document.get("paths", {}).items():
        if path in ("/healthz", "/readyz", "/metrics"):
            continue
        for operation in operations.values():
            operation["security"] = [{"bearer": []}]
    app.openapi_schema = document
    return document


def _embedded(source: dict[str, Any], title: str) -> dict[str, Any]:
    """A JSON Schema as OpenAPI components: its ``$defs`` become sibling components named
    ``Title_def`` and every ``$ref`` is rewritten to point at them."""
    definitions = source.get("$defs", {})

    def rewrite(value: Any) -> Any:
        if isinstance(value, dict):
            out = {key: rewrite(item) for key, item in value.items()
                   if key not in ("$defs", "$schema", "$id")}
            ref = out.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                out["$ref"] = f"#/components/schemas/{title}_{ref.removeprefix('#/$defs/')}"
            return out
        if isinstance(value, list):
            return [rewrite(item) for item in value]
        return value

    found = {title: rewrite(source)}
    for name, definition in definitions.items():
        found[f"{title}_{name}"] = rewrite(definition)
    return found
