"""The recorded workflow: each step checks what the ledger already holds, then appends events.

The sequence the source's operational playbook asks for, each step one transaction under the
ledger's write lock, its time the database server's clock and its actor named explicitly:

1. ``record_statement`` — the pre-trade allocation statement (intent), before any order;
2. ``enter_order`` — the hard stop: refused unless a statement for this order was recorded
   first, covering every account and the order's full quantity; fixes the governing policy
   version (the one in effect at entry) in the order's record;
3. ``record_fills`` — idempotent by fill id: a replayed fill is recognised, never counted twice;
4. ``allocate_order`` — the engine's allocation under the governing policy version, reading and
   advancing the rotation position inside the same transaction; late allocations are flagged and
   raise an alert;
5. ``request_override`` — a manual deviation: only with a reason code the policy allows and a
   written memo; pending review, with an alert for the CCO;
6. ``review_override`` — a CCO approves or rejects; never the user who asked.

Refusals by a control are :class:`~fairalloc.errors.RefusedError` (exit 5); conflicts with what the
ledger holds are :class:`~fairalloc.errors.LedgerError` (exit 6). A refused step writes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from fairalloc import RotationState, allocate, load_trade, policy_from_text
from fairalloc.context import applies, build_context
from fairalloc.errors import Diagnostic, FairallocError, LedgerError, Location, RefusedError
from fairalloc.ledger.chain import Event
from fairalloc.ledger.store import Ledger, NewEvent, Session
from fairalloc.plan import Policy
from fairalloc.trade import Trade

ROLES = ("trader", "pm", "cco", "admin")
"""Roles a user can hold. Who may do what is in ``_MAY``; docs/ledger.md has the table."""

_MAY: dict[str, frozenset[str]] = {
    "grant": frozenset({"admin"}),
    "publish": frozenset({"cco", "admin"}),
    "statement": frozenset({"pm", "trader"}),
    "enter": frozenset({"trader", "pm"}),
    "fill": frozenset({"trader", "pm"}),
    "allocate": frozenset({"trader", "pm"}),
    "override": frozenset({"trader", "pm"}),
    "review": frozenset({"cco"}),
    "seed-rotation": frozenset({"cco", "admin"}),
}


def _refused(code: str, message: str, hint: str | None = None, pointer: str | None = None) -> RefusedError:
    return RefusedError(Diagnostic(code, message, Location(pointer=pointer), hint))


def _conflict(code: str, message: str, hint: str | None = None) -> LedgerError:
    return LedgerError(Diagnostic(code, message, hint=hint))


def quantity(value: Any) -> Decimal:
    """A recorded quantity (an int or a decimal string) as a Decimal; never through binary float."""
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise ValueError(f"not a quantity: {value!r}")
    try:
        return Decimal(value)
    except InvalidOperation as error:
        raise ValueError(f"not a quantity: {value!r}") from error


def quantity_json(value: Decimal) -> int | str:
    """A Decimal as the contract writes quantities: an integer when whole, else a decimal string."""
    return int(value) if value == value.to_integral_value() else format(value.normalize(), "f")


# --- users and roles -------------------------------------------------------------------------


def roles_of(session: Session, user: str) -> set[str]:
    """The roles ``user`` holds now: grants minus revocations, in chain order."""
    held: set[str] = set()
    for event in session.query(topic=f"user:{user}"):
        role = event.data()["role"]
        if event.kind == "user.role_granted":
            held.add(role)
        elif event.kind == "user.role_revoked":
            held.discard(role)
    return held


def _require(session: Session, user: str, action: str) -> None:
    allowed = _MAY[action]
    if not roles_of(session, user) & allowed:
        raise _refused(
            "role-required",
            f"user {user!r} may not {action}: it needs one of the roles {', '.join(sorted(allowed))}",
            hint=f"an admin grants a role with: fairalloc ledger user grant {user} ROLE --user ADMIN",
        )


def _any_admin(session: Session) -> bool:
    users = {e.data()["user"] for e in session.query(kinds=["user.role_granted"])}
    return any("admin" in roles_of(session, user) for user in users)


def set_role(ledger: Ledger, actor: str, user: str, role: str, *, grant: bool) -> Event:
    """Grant or revoke a role. The first admin of an empty ledger may grant itself (bootstrap)."""
    if role not in ROLES:
        raise _refused("unknown-role", f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    with ledger.write() as session:
        bootstrap = grant and role == "admin" and user == actor and not _any_admin(session)
        if not bootstrap:
            _require(session, actor, "grant")
        if grant and not user.strip():
            raise _refused("bad-user", "a user name cannot be empty")
        kind = "user.role_granted" if grant else "user.role_revoked"
        (event,) = session.append(
            NewEvent(kind, actor, {"user": user, "role": role}, topic=f"user:{user}")
        )
        return event


def list_users(ledger: Ledger) -> dict[str, set[str]]:
    """Every user ever named in a grant, with the roles each holds now."""
    with ledger.read() as session:
        users = {e.data()["user"] for e in session.query(kinds=["user.role_granted"])}
        return {user: roles_of(session, user) for user in sorted(users)}


# --- policy registry -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    """A published policy version as the ledger holds it."""

    id: str
    version: int
    digest: str
    effective_date: str
    canonical: str
    source: str
    published_by: str
    published_at: str
    seq: int

    @staticmethod
    def of(event: Event) -> PolicyRecord:
        data = event.data()
        return PolicyRecord(
            data["id"], int(data["version"]), data["digest"], data["effective_date"],
            data["canonical"], data["source"], event.actor, event.recorded_at, event.seq,
        )

    def ref(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "digest": self.digest}


def publish_policy(ledger: Ledger, actor: str, policy: Policy) -> tuple[PolicyRecord, bool]:
    """Publish a loaded policy. Returns the record and whether it is new.

    Publishing identical content again is a no-op; different content under an id and version
    already published is refused (``policy-version-conflict``): a published version is immutable.
    """
    with ledger.write() as session:
        _require(session, actor, "publish")
        existing = session.by_key(f"policy:{policy.id}@{policy.version}")
        if existing is not None:
            record = PolicyRecord.of(existing)
            if record.digest != policy.digest:
                raise _conflict(
                    "policy-version-conflict",
                    f"policy {policy.id} version {policy.version} is already published with "
                    f"digest {record.digest}; this content has digest {policy.digest}",
                    hint="a published version never changes: publish the change as a new version",
                )
            return record, False
        payload = {
            "id": policy.id,
            "version": int(policy.version),
            "digest": policy.digest,
            "effective_date": policy.effective_date.isoformat(),
            "canonical": policy.canonical,
            "source": policy.source,
        }
        (event,) = session.append(
            NewEvent("policy.published", actor, payload, key=f"policy:{policy.id}@{policy.version}",
                     topic=f"policy:{policy.id}")
        )
        return PolicyRecord.of(event), True


def policy_history(ledger: Ledger, policy_id: str | None = None) -> list[PolicyRecord]:
    """Every published version (of one policy id, or of all), in publication order."""
    with ledger.read() as session:
        if policy_id is None:
            found = session.query(kinds=["policy.published"])
        else:
            found = session.query(topic=f"policy:{policy_id}")
        return [PolicyRecord.of(e) for e in found if e.kind == "policy.published"]


def find_policy(ledger: Ledger, ref: str) -> PolicyRecord:
    """``ID@VERSION`` exactly, or ``ID`` for its latest published version."""
    policy_id, _, version = ref.partition("@")
    records = policy_history(ledger, policy_id)
    if version:
        records = [r for r in records if str(r.version) == version]
    if not records:
        raise _conflict("policy-not-published", f"no published policy {ref!r} in this ledger",
                        hint="list what is published with: fairalloc policy history")
    return max(records, key=lambda r: r.version)


def governing_policy(session: Session, trade: Trade, policy_id: str | None = None) -> PolicyRecord:
    """The policy version that governs ``trade`` as it is entered: among the versions published
    so far, per policy id the highest whose effective date has come by the trade date, then the
    one whose ``applies_to`` holds for the trade (or the one named by ``policy_id``)."""
    trade_date = trade.order.trade_date.isoformat()
    latest: dict[str, PolicyRecord] = {}
    for event in session.query(kinds=["policy.published"]):
        record = PolicyRecord.of(event)
        if policy_id is not None and record.id != policy_id:
            continue
        if record.effective_date <= trade_date and (
            record.id not in latest or record.version > latest[record.id].version
        ):
            latest[record.id] = record
    governing: list[PolicyRecord] = []
    for record in latest.values():
        policy = load_recorded_policy(record)
        try:
            governs = applies(policy, build_context(policy, trade))
        except FairallocError:
            if policy_id is not None:
                raise
            governs = False  # the order lacks what this policy reads: it is not one it governs
        if governs:
            governing.append(record)
    if not governing:
        named = f"policy {policy_id}" if policy_id else "policy"
        raise _refused("no-policy-in-effect",
                       f"no published {named} governs order {trade.order.id} (trade date "
                       f"{trade_date}, {trade.order.security or 'no security attributes'})",
                       hint="publish the firm's allocation policy first: fairalloc policy publish FILE")
    if len(governing) > 1:
        names = ", ".join(sorted(f"{r.id}@{r.version}" for r in governing))
        raise _refused("policy-ambiguous", f"several published policies govern order "
                       f"{trade.order.id}: {names}", hint="name one with --policy ID")
    return governing[0]


def load_recorded_policy(record: PolicyRecord) -> Policy:
    """Rebuild the policy object from its recorded source, checking it still has its digest."""
    policy = policy_from_text(record.source, file=f"{record.id}@{record.version}")
    if policy.digest != record.digest:
        raise _conflict(
            "policy-digest-mismatch",
            f"policy {record.id}@{record.version} was recorded with digest {record.digest} but "
            f"its recorded source now compiles to {policy.digest}",
            hint="the engine's policy canonical form changed; replay with the release that recorded it",
        )
    return policy


# --- orders ----------------------------------------------------------------------------------


@dataclass(slots=True)
class OrderRecord:
    """Everything the ledger holds about one order, in chain order."""

    order_id: str
    statement: Event | None = None
    entered: Event | None = None
    fills: list[Event] = field(default_factory=list)
    allocation: Event | None = None
    overrides: list[Event] = field(default_factory=list)
    reviews: list[Event] = field(default_factory=list)
    alerts: list[Event] = field(default_factory=list)

    def pending_override(self) -> Event | None:
        reviewed = {r.data()["override_seq"] for r in self.reviews}
        pending = [o for o in self.overrides if o.seq not in reviewed]
        return pending[-1] if pending else None

    def approved_override(self) -> Event | None:
        approved = {r.data()["override_seq"] for r in self.reviews if r.data()["decision"] == "approved"}
        chosen = [o for o in self.overrides if o.seq in approved]
        return chosen[-1] if chosen else None

    def trade_document(self, before_seq: int | None = None) -> dict[str, Any]:
        """The trade as recorded: entered order, recorded statement, fills (before a point)."""
        assert self.statement is not None and self.entered is not None
        fills = [f.data()["fill"] for f in self.fills if before_seq is None or f.seq < before_seq]
        return {"order": self.entered.data()["order"], "statement": self.statement.data()["statement"],
                "fills": fills}


_KIND_SLOT = {
    "statement.recorded": "statement",
    "order.entered": "entered",
    "order.allocated": "allocation",
}


def order_record(session: Session, order_id: str) -> OrderRecord:
    record = OrderRecord(order_id)
    for event in session.query(order_id=order_id):
        slot = _KIND_SLOT.get(event.kind)
        if slot is not None:
            setattr(record, slot, event)
        elif event.kind == "fill.recorded":
            record.fills.append(event)
        elif event.kind == "override.requested":
            record.overrides.append(event)
        elif event.kind == "override.reviewed":
            record.reviews.append(event)
        elif event.kind == "alert.raised":
            record.alerts.append(event)
    return record


def read_order(ledger: Ledger, order_id: str) -> OrderRecord:
    with ledger.read() as session:
        record = order_record(session, order_id)
    if record.statement is None and record.entered is None:
        raise _conflict("order-unknown", f"the ledger holds nothing about order {order_id!r}")
    return record


def _trade_json(trade: Trade) -> dict[str, Any]:
    """The validated trade as its normalised contract document (what the ledger records)."""
    data: dict[str, Any] = trade.to_json()
    return data


def record_statement(ledger: Ledger, actor: str, trade: Trade) -> Event:
    """Record the pre-trade allocation statement of ``trade`` (its intent), before the order."""
    doc = _trade_json(trade)
    order = doc["order"]
    with ledger.write() as session:
        _require(session, actor, "statement")
        if session.by_key(f"order:{order['id']}") is not None:
            raise _conflict("order-already-entered",
                            f"order {order['id']} is already entered: intent must precede the order")
        if session.by_key(f"statement:{order['id']}") is not None:
            raise _conflict("statement-already-recorded",
                            f"a pre-trade statement for order {order['id']} is already recorded",
                            hint="a recorded statement cannot be replaced; use a new order id")
        intent = {k: order[k] for k in ("id", "symbol", "side", "quantity", "trade_date")}
        (event,) = session.append(
            NewEvent("statement.recorded", actor, {"statement": doc["statement"], "order": intent},
                     order_id=order["id"], key=f"statement:{order['id']}")
        )
        return event


def _check_coverage(statement_event: Event, doc: dict[str, Any]) -> None:
    """The hard stop's content check: the recorded intent covers this order entirely."""
    recorded = statement_event.data()
    order = doc["order"]
    intended = {a["account"]: quantity(a["intended"]) for a in recorded["statement"]["accounts"]}
    for field_name in ("symbol", "side", "trade_date"):
        if recorded["order"][field_name] != order[field_name]:
            raise _refused(
                "pretrade-statement-mismatch",
                f"the order's {field_name} {order[field_name]!r} differs from the recorded "
                f"statement's {recorded['order'][field_name]!r}",
                pointer=f"/order/{field_name}",
            )
    for index, account in enumerate(doc["statement"]["accounts"]):
        name = account["account"]
        if name not in intended:
            raise _refused("pretrade-account-not-covered",
                           f"account {name} is not in the recorded pre-trade statement",
                           pointer=f"/statement/accounts/{index}")
        if quantity(account["intended"]) != intended[name]:
            raise _refused("pretrade-statement-mismatch",
                           f"account {name}'s intended quantity {account['intended']} differs from "
                           f"the recorded {quantity_json(intended[name])}",
                           pointer=f"/statement/accounts/{index}/intended")
    total = sum(intended.values(), Decimal(0))
    if total != quantity(order["quantity"]):
        raise _refused(
            "pretrade-quantity-not-covered",
            f"the recorded statement intends {quantity_json(total)} in all but the order is for "
            f"{order['quantity']}",
            hint="the statement must allocate the order's full quantity before it is entered",
            pointer="/order/quantity",
        )


def enter_order(ledger: Ledger, actor: str, trade: Trade, policy_id: str | None = None) -> Event:
    """Enter the block order — only after a statement covering it was recorded (hard stop)."""
    doc = _trade_json(trade)
    order_id = doc["order"]["id"]
    with ledger.write() as session:
        _require(session, actor, "enter")
        statement = session.by_key(f"statement:{order_id}")
        if statement is None:
            raise _refused(
                "pretrade-statement-missing",
                f"order {order_id} cannot be entered: no pre-trade allocation statement was recorded",
                hint="record the intended allocation first: fairalloc order statement TRADE.json",
            )
        if session.by_key(f"order:{order_id}") is not None:
            raise _conflict("order-already-entered", f"order {order_id} is already entered")
        _check_coverage(statement, doc)
        policy = governing_policy(session, trade, policy_id)
        (event,) = session.append(
            NewEvent("order.entered", actor, {"order": doc["order"], "policy": policy.ref()},
                     order_id=order_id, key=f"order:{order_id}")
        )
        return event


@dataclass(frozen=True, slots=True)
class FillsResult:
    recorded: list[Event]
    already: list[str]


def record_fills(ledger: Ledger, actor: str, order_id: str, fills: list[dict[str, Any]]) -> FillsResult:
    """Record executions. A fill id already recorded with the same content is skipped; with
    different content it is refused. The filled total may never exceed the order."""
    with ledger.write() as session:
        _require(session, actor, "fill")
        record = order_record(session, order_id)
        if record.entered is None:
            raise _refused("order-not-entered", f"order {order_id} has not been entered; fills "
                           "can only be recorded against an entered order")
        if record.allocation is not None:
            raise _conflict("order-already-allocated",
                            f"order {order_id} is already allocated; a later fill needs a new order")
        known = {f.data()["fill"]["id"]: f.data()["fill"] for f in record.fills}
        filled = sum((quantity(f["quantity"]) for f in known.values()), Decimal(0))
        new: list[NewEvent] = []
        already: list[str] = []
        for fill in fills:
            if fill["id"] in known:
                if known[fill["id"]] != fill:
                    raise _conflict("fill-conflict",
                                    f"fill {fill['id']} of order {order_id} is already recorded "
                                    "with different content", hint="fill ids are the broker's; "
                                    "a correction is a new fill id")
                already.append(fill["id"])
                continue
            known[fill["id"]] = fill
            filled += quantity(fill["quantity"])
            new.append(NewEvent("fill.recorded", actor, {"fill": fill}, order_id=order_id,
                                key=f"fill:{order_id}:{fill['id']}"))
        ordered = quantity(record.entered.data()["order"]["quantity"])
        if filled > ordered:
            raise _refused("fills-exceed-order",
                           f"fills of order {order_id} would total {quantity_json(filled)}, more "
                           f"than the {quantity_json(ordered)} ordered")
        return FillsResult(session.append(*new), already)


@dataclass(frozen=True, slots=True)
class AllocationRecord:
    event: Event
    document: dict[str, Any]
    late: bool
    deadline: str | None
    rotation_before: dict[str, Any] | None
    rotation_after: dict[str, Any] | None


def compute_allocation(session: Session, record: OrderRecord, before_seq: int | None) -> tuple[
        dict[str, Any], dict[str, Any] | None, dict[str, Any] | None, Policy]:
    """Run the engine on the recorded inputs: (document, rotation before, rotation after, policy).

    ``before_seq`` limits fills and the rotation position to what was recorded before that event
    (replay); None means everything recorded so far (a new allocation)."""
    assert record.entered is not None
    ref = record.entered.data()["policy"]
    published = session.by_key(f"policy:{ref['id']}@{ref['version']}")
    if published is None:
        raise _conflict("policy-not-published", f"policy {ref['id']}@{ref['version']} is not in the ledger")
    policy = load_recorded_policy(PolicyRecord.of(published))
    trade = load_trade(record.trade_document(before_seq), file=f"ledger:{record.order_id}")
    group = policy.rotation_group(trade)
    before: dict[str, Any] | None = None
    if group is not None:
        previous = session.query(topic=f"rotation:{group}", before_seq=before_seq)
        if previous:
            before = previous[-1].data()["rotation_after"]
    state = RotationState.from_json(before, file="ledger") if before is not None else None
    result = allocate(policy, trade, rotation=state, file=f"ledger:{record.order_id}")
    document: dict[str, Any] = result.document()
    after = result.rotation_after.to_json() if result.rotation_after is not None else None
    return document, before, after, policy


def allocate_order(ledger: Ledger, actor: str, order_id: str) -> AllocationRecord:
    """Allocate the order's fills under its governing policy; advance its rotation atomically."""
    with ledger.write() as session:
        _require(session, actor, "allocate")
        record = order_record(session, order_id)
        if record.entered is None:
            raise _refused("order-not-entered", f"order {order_id} has not been entered")
        if record.allocation is not None:
            raise _conflict("order-already-allocated", f"order {order_id} is already allocated",
                            hint="a change after allocation is an override: fairalloc order override")
        if not record.fills:
            raise _refused("order-not-filled", f"order {order_id} has no recorded fill to allocate")
        document, before, after, policy = compute_allocation(session, record, None)
        trade_date = dt.date.fromisoformat(record.entered.data()["order"]["trade_date"])
        deadline = policy.allocation_deadline(trade_date)
        now = dt.datetime.fromisoformat(session.now.replace("Z", "+00:00"))
        late = deadline is not None and now > deadline
        topic = f"rotation:{after['group']}" if after else None
        cutoff = deadline.isoformat() if deadline else None
        payload = {"document": document, "rotation_before": before, "rotation_after": after,
                   "late": late, "deadline": cutoff}
        new = [NewEvent("order.allocated", actor, payload, order_id=order_id,
                        key=f"allocation:{order_id}", topic=topic)]
        if late:
            new.append(NewEvent("alert.raised", actor, {
                "alert": "late-allocation", "for": "cco",
                "message": f"order {order_id} allocated at {session.now}, after the policy's "
                           f"cut-off {cutoff}"},
                order_id=order_id, topic="alerts"))
        event = session.append(*new)[0]
        return AllocationRecord(event, document, late, cutoff, before, after)


def seed_rotation(ledger: Ledger, actor: str, state: RotationState) -> Event:
    """Record where a rotation group stands before the ledger's first allocation in it — for a
    firm whose rotation began in another system. Refused once the group has allocations: moving
    a running rotation would let someone choose who goes first."""
    group = state.group
    with ledger.write() as session:
        _require(session, actor, "seed-rotation")
        if session.latest(f"rotation:{group}") is not None:
            raise _conflict("rotation-already-started",
                            f"rotation group {group!r} already has a recorded position",
                            hint="a running rotation only advances through allocations")
        (event,) = session.append(
            NewEvent("rotation.seeded", actor, {"rotation_after": state.to_json()},
                     key=f"rotation-seed:{group}", topic=f"rotation:{group}")
        )
        return event


def request_override(ledger: Ledger, actor: str, order_id: str, quantities: dict[str, Decimal],
                     reason_code: str, memo: str) -> Event:
    """Ask to replace the engine's allocation; pending until a CCO reviews it (alert raised)."""
    with ledger.write() as session:
        _require(session, actor, "override")
        record = order_record(session, order_id)
        if record.allocation is None:
            raise _refused("order-not-allocated", f"order {order_id} has no allocation to override")
        if record.pending_override() is not None:
            raise _conflict("override-pending", f"order {order_id} already has an override "
                            "pending review", hint="a CCO must review it first")
        assert record.entered is not None
        ref = record.entered.data()["policy"]
        published = session.by_key(f"policy:{ref['id']}@{ref['version']}")
        assert published is not None
        allowed = load_recorded_policy(PolicyRecord.of(published)).reason_codes
        if reason_code not in allowed:
            raise _refused("override-reason-not-allowed",
                           f"reason code {reason_code!r} is not one the policy "
                           f"{ref['id']}@{ref['version']} allows"
                           + (f" ({', '.join(sorted(allowed))})" if allowed else " (it allows none)"))
        if not memo.strip():
            raise _refused("override-memo-required",
                           "an override needs a written memo explaining the objective reason")
        document = record.allocation.data()["document"]
        assert record.statement is not None  # an allocated order always has its statement
        accounts = {a["account"] for a in record.statement.data()["statement"]["accounts"]}
        unknown = sorted(set(quantities) - accounts)
        if unknown:
            raise _refused("override-unknown-account",
                           f"accounts {', '.join(unknown)} are not in the order's pre-trade statement")
        if any(q < 0 for q in quantities.values()):
            raise _refused("override-negative", "override quantities cannot be negative")
        total = sum(quantities.values(), Decimal(0))
        filled = quantity(document["filled"])
        if total != filled:
            raise _refused("override-total-mismatch",
                           f"the override allocates {quantity_json(total)} but "
                           f"{quantity_json(filled)} were filled")
        # Every statement account is named, those left out with 0, so the record is explicit.
        complete = {account: quantities.get(account, Decimal(0)) for account in accounts}
        payload = {"allocations": [{"account": a, "quantity": quantity_json(q)}
                                   for a, q in sorted(complete.items())],
                   "reason_code": reason_code, "memo": memo, "status": "pending-review",
                   "replaces": record.allocation.seq}
        event, _alert = session.append(
            NewEvent("override.requested", actor, payload, order_id=order_id, topic="overrides"),
            NewEvent("alert.raised", actor, {
                "alert": "override-pending-review", "for": "cco",
                "message": f"{actor} overrode the allocation of order {order_id} ({reason_code})"},
                order_id=order_id, topic="alerts"),
        )
        return event


def review_override(ledger: Ledger, actor: str, order_id: str, approve: bool, memo: str) -> Event:
    """A CCO's decision on the pending override; never by the user who requested it."""
    with ledger.write() as session:
        record = order_record(session, order_id)
        pending = record.pending_override()
        if pending is None:
            raise _refused("override-not-pending", f"order {order_id} has no override pending review")
        if pending.actor == actor:
            raise _refused("review-by-requester",
                           f"{actor} requested this override and cannot also review it",
                           hint="another user with the cco role must review it")
        _require(session, actor, "review")
        decision = "approved" if approve else "rejected"
        (event,) = session.append(
            NewEvent("override.reviewed", actor,
                     {"override_seq": pending.seq, "decision": decision, "memo": memo},
                     order_id=order_id, key=f"review:{pending.seq}", topic="overrides")
        )
        return event


def alerts(ledger: Ledger) -> list[Event]:
    """Every alert raised for the CCO, oldest first."""
    with ledger.read() as session:
        return session.query(topic="alerts")
