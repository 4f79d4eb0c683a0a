"""The recorded workflow over HTTP: each route one step of :mod:`fairalloc.ledger.workflow`.

Resources, as ``fairalloc order`` / ``policy`` / ``ledger`` / ``replay`` name them::

    POST /v1/statements                       record a pre-trade statement (body: trade document)
    POST /v1/orders?policy=ID                 enter the order (hard stop; body: trade document)
    GET  /v1/orders/{order_id}                everything recorded about the order
    POST /v1/orders/{order_id}/fills          record the trade document's fills (idempotent by id)
    POST /v1/orders/{order_id}/allocation     allocate under the governing version (a decision)
    GET  /v1/orders/{order_id}/allocation     the recorded allocation
    POST /v1/orders/{order_id}/overrides      ask to replace it (reason code, memo; CCO review)
    POST /v1/orders/{order_id}/reviews        a CCO approves or rejects the pending override
    GET  /v1/orders/{order_id}/replay         recompute the allocation and compare
    GET  /v1/replay?date=D | ?all=true        replay many
    GET  /v1/alerts                           alerts raised for the CCO
    POST /v1/policies                         publish a policy (body: its YAML)
    GET  /v1/policies[?id=ID]                 published versions
    GET  /v1/policies/{ref}                   one version's source and canonical form
    GET  /v1/users                            users and roles;  PUT/DELETE /v1/users/{u}/roles/{r}
    PUT  /v1/rotations/{group}                where a rotation group starts (before its first order)
    GET  /v1/ledger/head, /v1/ledger/verify   the chain head; walk and check the chain
    GET  /v1/exports[?date=D]                 the examiner's record set, as a zip archive

Two checks guard every step: the token must carry a role the step allows (else 403
``role-forbidden`` before the ledger is touched), and the ledger checks the roles its own chain
grants the subject (403 ``role-required``) and that a reviewer is not the requester (403
``review-by-requester``). An ``auditor`` token reads and never writes.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import tempfile
import time
import uuid
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import Response

from fairalloc import RotationState, load_trade, policy_from_text
from fairalloc.errors import Diagnostic, FairallocError, InputError, Location
from fairalloc.ledger import workflow
from fairalloc.ledger.chain import Event
from fairalloc.ledger.export import export
from fairalloc.ledger.replay import ReplayResult, replay_many, replay_order
from fairalloc.ledger.store import Ledger
from fairalloc.ledger.verify import Anchor, verify
from fairalloc.service.app import (
    ANY_ROLE,
    PROBLEM_RESPONSES,
    DirectRoute,
    allowed,
    authenticated,
    decision_line,
    idempotent,
    json_response,
)
from fairalloc.service.auth import Principal
from fairalloc.service.body import member, parse_body, plain_trade, read_bytes
from fairalloc.service.problems import Problem, problem
from fairalloc.service.state import Service, WorkflowActor, service, workflow_actor
from fairalloc.trade import Trade

router = APIRouter(prefix="/v1", tags=["recorded workflow"], responses=PROBLEM_RESPONSES, route_class=DirectRoute)

WRITERS = frozenset({"trader", "pm"})
REVIEWERS = frozenset({"cco"})
PUBLISHERS = frozenset({"cco", "admin"})  # publish policies, seed rotations
ADMINS = frozenset({"admin"})

_QUANTITY = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]+)?$")
_TRADE_BODY = {"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/Trade"}}}}


def event_json(event: Event, *, payload: bool = False) -> dict[str, Any]:
    """An event as the service shows it (its payload only when asked: it can be large)."""
    shown: dict[str, Any] = {"seq": event.seq, "recorded_at": event.recorded_at, "actor": event.actor,
                             "kind": event.kind, "order_id": event.order_id, "hash": event.hash}
    if payload:
        shown["payload"] = event.data()
    return shown


async def _step(svc: Service, step: str, function: Any, *args: Any) -> Any:
    """A workflow step on the ledger's threads; library errors become problem documents."""
    ledger = svc.require_ledger()
    try:
        return await svc.ledger_call(step, function, ledger, *args)
    except FairallocError as error:
        raise Problem.of(error) from None


# --- statement, entry, fills -------------------------------------------------------------------


@router.post("/statements", status_code=201, summary="record the pre-trade allocation statement",
             openapi_extra={"requestBody": _TRADE_BODY})
async def post_statement(request: Request, svc: Service = Depends(service),
                         principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "record a statement", WRITERS)
    raw = await read_bytes(request, svc.config.limits)

    async def run() -> Response:
        trade = _parsed_trade(raw, svc)
        event = await _step(svc, "statement", workflow.record_statement, workflow_actor(principal.actor), trade)
        return json_response({"event": event_json(event)}, 201)

    return await idempotent(request, svc, principal, raw, run)


def _parsed_trade(raw: bytes, svc: Service) -> Trade:
    """The body as a validated trade document (the CLI's codes and pointers on refusal)."""
    plain = plain_trade(raw, svc.config.limits)
    if plain is not None:
        return plain
    body = parse_body(raw, svc.config.limits)
    if not isinstance(body, dict):
        raise Problem.of(InputError(Diagnostic("trade-type", "a trade document must be a JSON object",
                                               Location("request", pointer=""))))
    try:
        return load_trade(body, file="request")
    except FairallocError as error:
        raise Problem.of(error) from None


@router.post("/orders", status_code=201, summary="enter the block order (refused without a covering statement)",
             openapi_extra={"requestBody": _TRADE_BODY})
async def post_order(request: Request, policy: str | None = Query(None, description="policy id, if several govern"),
                     svc: Service = Depends(service), principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "enter an order", WRITERS)
    raw = await read_bytes(request, svc.config.limits)

    async def run() -> Response:
        trade = _parsed_trade(raw, svc)
        event = await _step(svc, "enter", workflow.enter_order, workflow_actor(principal.actor), trade, policy)
        return json_response({"event": event_json(event), "policy": event.data()["policy"]}, 201)

    return await idempotent(request, svc, principal, raw, run)


@router.post("/orders/{order_id}/fills", status_code=201, summary="record the trade document's fills",
             openapi_extra={"requestBody": _TRADE_BODY})
async def post_fills(order_id: str, request: Request, svc: Service = Depends(service),
                     principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "record fills", WRITERS)
    raw = await read_bytes(request, svc.config.limits)

    async def run() -> Response:
        trade = _parsed_trade(raw, svc)
        document = trade.to_json()
        if document["order"]["id"] != order_id:
            raise Problem.of(InputError(Diagnostic(
                "order-id-mismatch", f"the trade document is for order {document['order']['id']!r}, "
                f"not {order_id!r}", Location("request", pointer="/order/id"))))
        result = await _step(svc, "fills", workflow.record_fills, workflow_actor(principal.actor),
                             order_id, document["fills"])
        return json_response({"recorded": [event_json(e) for e in result.recorded],
                              "already": result.already}, 201)

    return await idempotent(request, svc, principal, raw, run)


# --- allocation, overrides, reviews ------------------------------------------------------------


@router.post("/orders/{order_id}/allocation", status_code=201,
             summary="allocate the recorded fills under the governing policy version")
async def post_allocation(order_id: str, request: Request, svc: Service = Depends(service),
                          principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "allocate", WRITERS)
    raw = await read_bytes(request, svc.config.limits)

    async def run() -> Response:
        started = time.perf_counter()
        actor = workflow_actor(principal.actor)
        logged = svc.decisions.enabled  # the inputs and the digests only for a decision log
        record, inputs = (await _step(svc, "allocate", _allocate_and_read, actor, order_id) if logged
                          else (await _step(svc, "allocate", workflow.allocate_order, actor, order_id), None))
        decision_id = str(uuid.uuid4())
        event = event_json(record.event)
        svc.metrics.decisions.labels("recorded", f"{record.document['policy']['id']}@"
                                     f"{record.document['policy']['version']}").inc()
        if logged:
            svc.decisions.write(decision_line(decision_id, principal, record.document["policy"], inputs,
                                              record.document, time.perf_counter() - started,
                                              {"seq": record.event.seq, "hash": record.event.hash}))
        return json_response({"decision_id": decision_id, "event": event, "late": record.late,
                              "deadline": record.deadline, "rotation_before": record.rotation_before,
                              "rotation_after": record.rotation_after, "document": record.document}, 201,
                             {"Fairalloc-Decision-Id": decision_id})

    return await idempotent(request, svc, principal, raw, run)


def _allocate_and_read(ledger: Ledger, actor: WorkflowActor, order_id: str) -> tuple[workflow.AllocationRecord, Any]:
    """Allocate, and the inputs the allocation was computed from (for the decision log)."""
    return workflow.allocate_order_with_inputs(ledger, actor, order_id)


@router.get("/orders/{order_id}/allocation", summary="the recorded allocation of an order")
async def get_allocation(order_id: str, svc: Service = Depends(service),
                         principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "read the ledger", ANY_ROLE)
    record = await _step(svc, "read", workflow.read_order, order_id)
    if record.allocation is None:
        raise problem(404, "order-not-allocated", f"order {order_id} has no recorded allocation")
    return json_response({"event": event_json(record.allocation), **record.allocation.data()})


def _quantities(value: Any) -> dict[str, Decimal]:
    if not isinstance(value, dict) or not value:
        raise Problem.of(InputError(Diagnostic("request-type", "'allocations' must be an object of "
                                               "ACCOUNT: QUANTITY", Location(pointer="/allocations"))))
    chosen: dict[str, Decimal] = {}
    for account, quantity in value.items():
        whole = type(quantity) is int and quantity >= 0
        if not whole and not (isinstance(quantity, str) and _QUANTITY.match(quantity)):
            raise Problem.of(InputError(Diagnostic(
                "bad-override-quantity", f"{quantity!r} is not a quantity: a whole number or a decimal string",
                Location(pointer=f"/allocations/{account.replace('~', '~0').replace('/', '~1')}"))))
        chosen[account] = Decimal(quantity)
    return chosen


def _text(body: Any, name: str) -> str:
    value = member(body, name)
    if not isinstance(value, str):
        raise Problem.of(InputError(Diagnostic("request-type", f"'{name}' must be a string",
                                               Location(pointer=f"/{name}"))))
    return value


@router.post("/orders/{order_id}/overrides", status_code=201,
             summary="ask to replace the allocation (reason code and memo; pending CCO review)",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                 "type": "object", "required": ["allocations", "reason_code", "memo"],
                 "properties": {"allocations": {"type": "object", "additionalProperties": {
                     "oneOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]}},
                     "reason_code": {"type": "string"}, "memo": {"type": "string"}}}}}}})
async def post_override(order_id: str, request: Request, svc: Service = Depends(service),
                        principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "request an override", WRITERS)
    raw = await read_bytes(request, svc.config.limits)

    async def run() -> Response:
        body = parse_body(raw, svc.config.limits)
        quantities = _quantities(member(body, "allocations"))
        event = await _step(svc, "override", workflow.request_override, workflow_actor(principal.actor),
                            order_id, quantities, _text(body, "reason_code"), _text(body, "memo"))
        return json_response({"event": event_json(event), "status": "pending-review"}, 201)

    return await idempotent(request, svc, principal, raw, run)


@router.post("/orders/{order_id}/reviews", status_code=201,
             summary="approve or reject the pending override (a CCO other than the requester)",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                 "type": "object", "required": ["decision"],
                 "properties": {"decision": {"enum": ["approved", "rejected"]}, "memo": {"type": "string"}}}}}}})
async def post_review(order_id: str, request: Request, svc: Service = Depends(service),
                      principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "review an override", REVIEWERS)
    raw = await read_bytes(request, svc.config.limits)

    async def run() -> Response:
        body = parse_body(raw, svc.config.limits)
        decision = _text(body, "decision")
        if decision not in ("approved", "rejected"):
            raise Problem.of(InputError(Diagnostic("review-decision", "'decision' is 'approved' or 'rejected'",
                                                   Location(pointer="/decision"))))
        memo = _text(body, "memo") if isinstance(body, dict) and "memo" in body else ""
        event = await _step(svc, "review", workflow.review_override, workflow_actor(principal.actor),
                            order_id, decision == "approved", memo)
        return json_response({"event": event_json(event), "decision": decision}, 201)

    return await idempotent(request, svc, principal, raw, run)


@router.get("/orders/{order_id}", summary="everything recorded about an order, in chain order")
async def get_order(order_id: str, svc: Service = Depends(service),
                    principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "read the ledger", ANY_ROLE)
    record = await _step(svc, "read", workflow.read_order, order_id)
    events = [e for e in (record.statement, record.entered, *record.fills, record.allocation,
                          *record.overrides, *record.reviews, *record.alerts) if e is not None]
    events.sort(key=lambda e: e.seq)
    return json_response({"order_id": order_id, "events": [event_json(e, payload=True) for e in events]})


@router.get("/alerts", summary="alerts raised for the CCO, oldest first")
async def get_alerts(svc: Service = Depends(service), principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "read the ledger", ANY_ROLE)
    raised = await _step(svc, "read", workflow.alerts)
    return json_response([{**event_json(e), **e.data()} for e in raised])


# --- replay ------------------------------------------------------------------------------------


def _replayed(result: ReplayResult) -> dict[str, Any]:
    return {"order_id": result.order_id, "identical": result.identical,
            "differences": [{"pointer": d.pointer, "recorded": d.recorded, "recomputed": d.recomputed}
                            for d in result.differences]}


@router.get("/orders/{order_id}/replay", summary="recompute the recorded allocation and compare")
async def get_replay(order_id: str, svc: Service = Depends(service),
                     principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "replay", ANY_ROLE)
    return json_response(_replayed(await _step(svc, "replay", replay_order, order_id)))


@router.get("/replay", summary="replay every allocation of a trade date, or all")
async def get_replays(date: dt.date | None = Query(None), every: bool = Query(False, alias="all"),
                      svc: Service = Depends(service), principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "replay", ANY_ROLE)
    if (date is None) != every:
        raise problem(422, "replay-target", "give either ?date=YYYY-MM-DD or ?all=true")
    results = await _step(svc, "replay", replay_many, date)
    return json_response({"identical": all(r.identical for r in results),
                          "results": [_replayed(r) for r in results]})


# --- policies ----------------------------------------------------------------------------------


def _policy_json(record: workflow.PolicyRecord, *, source: bool = False) -> dict[str, Any]:
    shown: dict[str, Any] = {"id": record.id, "version": record.version, "digest": record.digest,
                             "effective_date": record.effective_date, "published_by": record.published_by,
                             "published_at": record.published_at, "event": record.seq}
    if source:
        shown["source"] = record.source
        shown["canonical"] = record.canonical
    return shown


@router.post("/policies", status_code=201, summary="publish a policy file as an immutable version",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/yaml": {"schema": {"type": "string"}}}}})
async def post_policy(request: Request, svc: Service = Depends(service),
                      principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "publish a policy", PUBLISHERS)
    raw = await read_bytes(request, svc.config.limits)

    async def run() -> Response:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise problem(400, "policy-encoding", "the policy is not UTF-8 text") from None
        try:
            policy = policy_from_text(text, "request")
        except FairallocError as error:
            raise Problem.of(error) from None
        record, created = await _step(svc, "publish", workflow.publish_policy, workflow_actor(principal.actor),
                                      policy)
        return json_response({**_policy_json(record), "created": created}, 201 if created else 200)

    return await idempotent(request, svc, principal, raw, run)


@router.get("/policies", summary="published policy versions, oldest first")
async def get_policies(id: str | None = Query(None), svc: Service = Depends(service),  # noqa: A002
                       principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "read the ledger", ANY_ROLE)
    records = await _step(svc, "read", workflow.policy_history, id)
    return json_response([_policy_json(r) for r in records])


@router.get("/policies/{ref}", summary="one published version (ID or ID@VERSION): source and canonical form")
async def get_policy(ref: str, svc: Service = Depends(service),
                     principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "read the ledger", ANY_ROLE)
    return json_response(_policy_json(await _step(svc, "read", workflow.find_policy, ref), source=True))


# --- users -------------------------------------------------------------------------------------


@router.get("/users", summary="users named in grants, with the roles each holds now")
async def get_users(svc: Service = Depends(service), principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "read the ledger", ANY_ROLE)
    users = await _step(svc, "read", workflow.list_users)
    return json_response({user: sorted(roles) for user, roles in users.items()})


async def _set_role(request: Request, svc: Service, principal: Principal, user: str, role: str,
                    grant: bool) -> Response:
    allowed(principal, "grant or revoke roles", ADMINS)
    raw = await read_bytes(request, svc.config.limits)

    async def run() -> Response:
        event = await _step(svc, "grant", _role_step, workflow_actor(principal.actor), user, role, grant)
        return json_response({"event": event_json(event)}, 201 if grant else 200)

    return await idempotent(request, svc, principal, raw, run)


def _role_step(ledger: Ledger, actor: WorkflowActor, user: str, role: str, grant: bool) -> Event:
    return workflow.set_role(ledger, actor, user, role, grant=grant)


@router.put("/users/{user}/roles/{role}", status_code=201, summary="grant a role (admins)")
async def put_role(user: str, role: str, request: Request, svc: Service = Depends(service),
                   principal: Principal = Depends(authenticated)) -> Response:
    return await _set_role(request, svc, principal, user, role, True)


@router.delete("/users/{user}/roles/{role}", summary="revoke a role (admins)")
async def delete_role(user: str, role: str, request: Request, svc: Service = Depends(service),
                      principal: Principal = Depends(authenticated)) -> Response:
    return await _set_role(request, svc, principal, user, role, False)


@router.put("/rotations/{group:path}", status_code=201,
            summary="record where a rotation group starts, before its first allocation here (cco, admin)",
            openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["group", "position"]}}}}})
async def put_rotation(group: str, request: Request, svc: Service = Depends(service),
                       principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "seed a rotation", PUBLISHERS)
    raw = await read_bytes(request, svc.config.limits)

    async def run() -> Response:
        try:
            state = RotationState.from_json(parse_body(raw, svc.config.limits), "request")
        except FairallocError as error:
            raise Problem.of(error) from None
        if state.group != group:
            raise Problem.of(InputError(Diagnostic("rotation-group-mismatch", f"the state is for group "
                                                   f"{state.group!r}, not {group!r}", Location(pointer="/group"))))
        event = await _step(svc, "seed-rotation", workflow.seed_rotation, workflow_actor(principal.actor), state)
        return json_response({"event": event_json(event)}, 201)

    return await idempotent(request, svc, principal, raw, run)


# --- the chain ---------------------------------------------------------------------------------


def _head(ledger: Ledger) -> Event | None:
    with ledger.read() as session:
        head: Event | None = session.head()
        return head


@router.get("/ledger/head", summary="the chain head (keep it elsewhere as an anchor)")
async def get_head(svc: Service = Depends(service), principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "read the ledger", ANY_ROLE)
    head = await _step(svc, "read", _head)
    return json_response({"seq": head.seq if head else 0, "hash": head.hash if head else "0" * 64})


def _verify(ledger: Ledger, anchor: Anchor | None) -> dict[str, Any]:
    with ledger.read() as session:
        report = verify(session, anchor)
    return {"ok": report.ok, "events": report.events,
            "head": {"seq": report.head.seq, "hash": report.head.hash} if report.head else None,
            "findings": [d.to_json() for d in report.findings]}


@router.get("/ledger/verify", summary="walk the hash chain and report the first break")
async def get_verify(anchor: str | None = Query(None, description="SEQ:HASH recorded earlier"),
                     svc: Service = Depends(service), principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "read the ledger", ANY_ROLE)
    chosen = None
    if anchor is not None:
        match = re.fullmatch(r"(\d+):([0-9a-f]{64})", anchor.strip())
        if not match:
            raise problem(422, "bad-anchor", f"not an anchor: {anchor!r}", hint="write SEQ:HASH")
        chosen = Anchor(int(match.group(1)), match.group(2))
    return json_response(await _step(svc, "verify", _verify, chosen))


def _export_zip(ledger: Ledger, trade_date: dt.date | None) -> bytes:
    with tempfile.TemporaryDirectory(prefix="fairalloc-export-") as folder:
        export(ledger, Path(folder), trade_date)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(Path(folder).iterdir()):
                archive.write(path, path.name)
        return buffer.getvalue()


@router.get("/exports", summary="the record set for examiners (CSV and JSON Lines), as a zip archive",
            responses={200: {"content": {"application/zip": {}}}})
async def get_export(date: dt.date | None = Query(None), svc: Service = Depends(service),
                     principal: Principal = Depends(authenticated)) -> Response:
    allowed(principal, "export", ANY_ROLE)
    data = await _step(svc, "export", _export_zip, date)
    name = f"fairalloc-export-{date.isoformat() if date else 'all'}.zip"
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
