"""The recorded workflow: each step checks what the ledger already holds, then appends events.

The sequence the source's operational playbook asks for, each step atomic under the ledger's
write lock (one transaction, or one savepoint of a transaction that concurrent steps of a process
share on PostgreSQL), its time the database server's clock and its actor the authenticated
:class:`~fairalloc.ledger.identity.Actor` (never a name the caller typed):

1. ``record_statement`` — the pre-trade allocation statement (intent), before any order;
2. ``enter_order`` — the hard stop: refused unless a statement for this order was recorded
   first, covering every account and the order's full quantity; fixes the governing policy
   version (the one in effect at entry) in the order's record;
3. ``record_fills``, ``correct_fill``, ``bust_fill`` — executions, idempotent by fill id;
   corrections and busts refer to the original fill, which stays in the record;
4. ``allocate_order`` — the engine's allocation under the governing policy version, reading and
   advancing the rotation position (or the fairness state) inside the same transaction; late allocations are flagged and
   raise an alert. A correction, bust or fill arriving after the allocation re-allocates the
   order (``order.reallocated``, with its reason) and alerts the CCO; the earlier allocation stays;
5. ``request_override`` — a manual deviation: only with a reason code the policy allows and a
   written memo; pending review, with an alert for the CCO;
6. ``review_override`` — a CCO approves or rejects; never the user who asked.

**Intent first, by the ledger's clock.** The ledger records when it received the statement.
An order whose claimed entry time, or a fill whose execution time, is earlier than that (less the
policy's ``intent.clock_skew_seconds``, default :data:`DEFAULT_CLOCK_SKEW_SECONDS`) is refused
(``intent-after-entry``, ``intent-after-execution``); so is an execution time later than the
ledger's clock by more than the same tolerance (``execution-in-future``). A firm that must
record a statement late does so explicitly: with a reason code from
:data:`LATE_STATEMENT_REASONS` and a memo, which the statement carries and which raises an alert
for the CCO.

**Retries.** Repeating any step with identical content answers as the first time did (the same
event); the same step with different content is refused.

Refusals by a control are :class:`~fairalloc.errors.RefusedError` (exit 5); conflicts with what the
ledger holds are :class:`~fairalloc.errors.LedgerError` (exit 6). A refused step writes nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from fairalloc import FairnessState, RotationState, allocate, load_trade, policy_from_text
from fairalloc.context import applies, build_context
from fairalloc.errors import Diagnostic, FairallocError, LedgerError, Location, RefusedError
from fairalloc.ledger.chain import Event
from fairalloc.ledger.identity import Actor
from fairalloc.ledger.store import Ledger, NewEvent, Session
from fairalloc.names import NameProblem, escape, normalise
from fairalloc.plan import Policy
from fairalloc.trade import Trade

ROLES = ("trader", "pm", "cco", "admin", "service")
"""Roles a user can hold. Who may do what is in :data:`MAY`; docs/ledger.md has the table.
``service`` lets an authenticated process (the HTTP service) record events for the token
subjects it authenticated; the subject still needs the step's own role."""

MAY: dict[str, frozenset[str]] = {
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

KIND_ACTION: dict[str, str | None] = {
    "user.role_granted": "grant",
    "user.role_revoked": "grant",
    "policy.published": "publish",
    "rotation.seeded": "seed-rotation",
    "statement.recorded": "statement",
    "order.entered": "enter",
    "fill.recorded": "fill",
    "fill.corrected": "fill",
    "fill.busted": "fill",
    "order.allocated": "allocate",
    "order.reallocated": "fill",
    "override.requested": "override",
    "override.reviewed": "review",
    "fix.instruction_sent": "allocate",  # fairalloc.fix.record: the 35=J sent for an allocation
    "fix.ack_received": "allocate",  # and the broker's 35=P / 35=AS answer to it
    "alert.raised": None,
}
"""The step (a key of :data:`MAY`) each event kind records; None: raised by the step before it
in the same transaction. ``verify`` re-derives every event's authority from this table."""

DEFAULT_CLOCK_SKEW_SECONDS = 5
"""Tolerance between the OMS's clock and the ledger's when a policy sets none."""

LATE_STATEMENT_REASONS: dict[str, str] = {
    "SYSTEM-OUTAGE": "the ledger or the order system was unavailable when the order was placed",
    "MANUAL-TICKET": "a manual (telephone or paper) order, its statement written before the "
                     "order but recorded afterwards",
    "ERROR-CORRECTION": "the statement was recorded against a wrong order id and is re-recorded",
}
"""Reason codes a late pre-trade statement may cite; each raises an alert for the CCO."""


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


def _name(text: str, code: str = "bad-user", *, fold_case: bool = True) -> str:
    """``text`` normalised as a name, or a refusal saying why it is not one."""
    try:
        return normalise(text, fold_case=fold_case)
    except NameProblem as problem:
        raise _refused(code, f"{problem}") from problem


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- users and roles -------------------------------------------------------------------------


def roles_of(session: Session, user: str) -> set[str]:
    """The roles ``user`` holds now: grants minus revocations, in chain order (read once per
    write transaction: see :meth:`Session.remember`)."""
    return session.remember(("roles", user), lambda: _roles_read(session, user)[user])


def _roles_read(session: Session, *users: str) -> dict[str, set[str]]:
    """The roles each of ``users`` holds now, read in one query."""
    held: dict[str, set[str]] = {user: set() for user in users}
    topics = {f"user:{user}": user for user in users}
    for event in session.query(topics=list(topics)):
        roles = held[topics[event.topic or ""]]
        role = event.data()["role"]
        if event.kind == "user.role_granted":
            roles.add(role)
        elif event.kind == "user.role_revoked":
            roles.discard(role)
    return held


def _require(session: Session, actor: Actor, action: str) -> None:
    """Refuse unless ``actor`` is who this session authenticated and holds a role for ``action``."""
    session.check_actor(actor)
    allowed = MAY[action]
    service = actor.service or ""
    if actor.source == "token" and session.writable and not (
            session.remembered(("roles", service)) or session.remembered(("roles", actor.name))):
        for user, roles in _roles_read(session, service, actor.name).items():  # both in one query
            session.remember(("roles", user), functools.partial(set.copy, roles))
    if actor.source == "token" and "service" not in roles_of(session, service):
        raise _refused(
            "service-not-authorised",
            f"{actor.service} may not record events for token subjects: it needs the service role",
            hint=f"an admin grants it with: fairalloc ledger user grant {actor.service} service")
    if not roles_of(session, actor.name) & allowed:
        raise _refused(
            "role-required",
            f"user {escape(actor.name)} may not {action}: it needs one of the roles "
            f"{', '.join(sorted(allowed))}",
            hint=f"an admin grants a role with: fairalloc ledger user grant {actor.name} ROLE",
        )


def _holders(session: Session, role: str) -> set[str]:
    users = {e.data()["user"] for e in session.query(kinds=["user.role_granted"])}
    return {user for user in users if role in roles_of(session, user)}


def initialise(ledger: Ledger, actor: Actor, admin: str) -> Event:
    """Name the ledger's first admin: the bootstrap, possible only as a new ledger's first event.

    Run by whoever creates the ledger (on PostgreSQL the schema's owner, the only write that role
    may make). Repeating it for the same admin answers with the same event; any other bootstrap
    of a ledger that already has events is refused (``ledger-already-initialised``)."""
    user = _name(admin)
    with ledger.write(bootstrap=True) as session:
        first = session.query(before_seq=2)
        if first:
            data = first[0].data() if first[0].kind == "user.role_granted" else {}
            if data.get("user") == user and data.get("role") == "admin":
                return first[0]
            raise _conflict("ledger-already-initialised",
                            "this ledger already has its first admin; admins grant roles",
                            hint="fairalloc ledger user grant NAME admin (as an admin)")
        (event,) = session.append(
            NewEvent("user.role_granted", actor, {"user": user, "role": "admin", "bootstrap": True},
                     topic=f"user:{user}"))
        return event


def set_role(ledger: Ledger, actor: Actor, user: str, role: str, *, grant: bool) -> Event:
    """Grant or revoke a role (admins only). Granting a role already held, or revoking one
    already revoked, answers with the event that did it; the last admin cannot be removed."""
    if role not in ROLES:
        raise _refused("unknown-role", f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    name = _name(user)
    with ledger.write() as session:
        _require(session, actor, "grant")
        history = [e for e in session.query(topic=f"user:{name}") if e.data()["role"] == role]
        last = history[-1] if history else None
        kind = "user.role_granted" if grant else "user.role_revoked"
        if last is not None and last.kind == kind:
            return last
        if not grant:
            if last is None:
                raise _refused("role-not-held", f"{escape(name)} does not hold the {role} role")
            if role == "admin" and _holders(session, "admin") == {name}:
                raise _refused("last-admin", f"{escape(name)} is the ledger's last admin and "
                               "cannot lose the role", hint="grant admin to someone else first")
        (event,) = session.append(
            NewEvent(kind, actor, {"user": name, "role": role}, topic=f"user:{name}")
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


def publish_policy(ledger: Ledger, actor: Actor, policy: Policy) -> tuple[PolicyRecord, bool]:
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
    for record in _published(session):
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


def _published(session: Session) -> list[PolicyRecord]:
    """Every published version, in publication order (read once per write transaction)."""
    return session.remember("published", lambda: [
        PolicyRecord.of(e) for e in session.query(kinds=["policy.published"])])


@functools.lru_cache(maxsize=64)
def _compiled(source: str, file: str) -> Policy:
    """A recorded policy's source, compiled. Compiling is a pure function of the text (a
    :class:`Policy` is immutable), so each source is compiled once per process rather than at
    every workflow step that reads it (statement, entry, fills and allocation each do); a source
    that does not compile raises, and is not remembered."""
    return policy_from_text(source, file=file)


def load_recorded_policy(record: PolicyRecord) -> Policy:
    """Rebuild the policy object from its recorded source, checking it still has its digest."""
    policy = _compiled(record.source, f"{record.id}@{record.version}")
    if policy.digest != record.digest:
        raise _conflict(
            "policy-digest-mismatch",
            f"policy {record.id}@{record.version} was recorded with digest {record.digest} but "
            f"its recorded source now compiles to {policy.digest}",
            hint="the engine's policy canonical form changed; replay with the release that recorded it",
        )
    return policy


# --- orders ----------------------------------------------------------------------------------

_FILL_KINDS = ("fill.recorded", "fill.corrected", "fill.busted")


@dataclass(slots=True)
class OrderRecord:
    """Everything the ledger holds about one order, in chain order."""

    order_id: str
    statement: Event | None = None
    entered: Event | None = None
    fills: list[Event] = field(default_factory=list)  # recorded, corrected and busted, in order
    allocation: Event | None = None  # the first allocation
    reallocations: list[Event] = field(default_factory=list)
    overrides: list[Event] = field(default_factory=list)
    reviews: list[Event] = field(default_factory=list)
    alerts: list[Event] = field(default_factory=list)

    @property
    def allocations(self) -> list[Event]:
        """Every allocation of the order, the first and each re-allocation, in chain order."""
        return [self.allocation, *self.reallocations] if self.allocation is not None else []

    @property
    def current_allocation(self) -> Event | None:
        """The allocation in force: the latest re-allocation, else the first."""
        return self.reallocations[-1] if self.reallocations else self.allocation

    def pending_override(self) -> Event | None:
        reviewed = {r.data()["override_seq"] for r in self.reviews}
        pending = [o for o in self.overrides if o.seq not in reviewed]
        return pending[-1] if pending else None

    def approved_override(self) -> Event | None:
        """The approved override of the allocation in force, if any (a re-allocation after an
        override supersedes it: the quantities it replaced no longer exist)."""
        current = self.current_allocation
        approved = {r.data()["override_seq"] for r in self.reviews if r.data()["decision"] == "approved"}
        chosen = [o for o in self.overrides if o.seq in approved
                  and current is not None and o.data()["replaces"] == current.seq]
        return chosen[-1] if chosen else None

    def effective_fills(self, before_seq: int | None = None) -> list[dict[str, Any]]:
        """The executions in force (before a point): recorded fills, each correction replacing
        the fill it refers to in place, each bust removing it."""
        return effective_fills(f for f in self.fills if before_seq is None or f.seq < before_seq)

    def trade_document(self, before_seq: int | None = None) -> dict[str, Any]:
        """The trade as recorded: entered order, recorded statement, fills in force (before a point)."""
        assert self.statement is not None and self.entered is not None
        return {"order": self.entered.data()["order"], "statement": self.statement.data()["statement"],
                "fills": self.effective_fills(before_seq)}


def effective_fills(events: Iterable[Event]) -> list[dict[str, Any]]:
    """Apply fill events in chain order: see :meth:`OrderRecord.effective_fills`."""
    held: dict[str, dict[str, Any]] = {}
    for event in events:
        data = event.data()
        if event.kind == "fill.recorded":
            held[data["fill"]["id"]] = data["fill"]
        elif event.kind == "fill.corrected":
            held = {(data["fill"]["id"] if key == data["corrects"] else key):
                    (data["fill"] if key == data["corrects"] else fill) for key, fill in held.items()}
        elif event.kind == "fill.busted":
            held.pop(data["busts"], None)
    return list(held.values())


_KIND_SLOT = {
    "statement.recorded": "statement",
    "order.entered": "entered",
    "order.allocated": "allocation",
}

_KIND_LIST = {
    "fill.recorded": "fills", "fill.corrected": "fills", "fill.busted": "fills",
    "order.reallocated": "reallocations", "override.requested": "overrides",
    "override.reviewed": "reviews", "alert.raised": "alerts",
}


def order_record(session: Session, order_id: str) -> OrderRecord:
    record = OrderRecord(order_id)
    for event in session.query(order_id=order_id):
        slot = _KIND_SLOT.get(event.kind)
        if slot is not None:
            setattr(record, slot, event)
        elif event.kind in _KIND_LIST:
            getattr(record, _KIND_LIST[event.kind]).append(event)
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


def clock_skew(policy: Policy | None) -> dt.timedelta:
    """The tolerance between the OMS's clock and the ledger's that ``policy`` allows."""
    spec = policy.data.get("intent") if policy is not None else None
    seconds = spec.get("clock_skew_seconds", DEFAULT_CLOCK_SKEW_SECONDS) if isinstance(spec, dict) else (
        DEFAULT_CLOCK_SKEW_SECONDS)
    return dt.timedelta(seconds=int(seconds))


def _skew_for(session: Session, trade: Trade, policy_id: str | None = None) -> dt.timedelta:
    """The tolerance of the policy that would govern ``trade``; the default if none does yet."""
    try:
        return clock_skew(load_recorded_policy(governing_policy(session, trade, policy_id)))
    except FairallocError:
        return clock_skew(None)


def _minutes(delta: dt.timedelta) -> str:
    """A duration as people say it: 7 seconds, 80 minutes, 9 hours, 274 days."""
    seconds = int(delta.total_seconds())
    for unit, size, up_to in (("seconds", 1, 120), ("minutes", 60, 300 * 60), ("hours", 3600, 72 * 3600)):
        if seconds < up_to:
            return f"{seconds // size} {unit}"
    return f"{seconds // 86400} days"


def _late_intent(doc: dict[str, Any], intent_at: dt.datetime, skew: dt.timedelta) -> RefusedError | None:
    """The refusal for a trade whose entry or executions precede the recorded intent, if any."""
    order = doc["order"]
    early = [(f["executed_at"], f["id"]) for f in doc.get("fills", [])
             if _time(f["executed_at"]) < intent_at - skew]
    if early:
        executed, fill_id = min(early)
        return _refused(
            "intent-after-execution",
            f"fill {fill_id} of order {order['id']} executed at {executed}, "
            f"{_minutes(intent_at - _time(executed))} before the ledger recorded its pre-trade "
            f"statement ({intent_at.isoformat().replace('+00:00', 'Z')}): intent must be recorded "
            "before the trade",
            hint="a statement recorded late needs an explicit exception: fairalloc order statement "
                 "TRADE --late-reason CODE --memo TEXT (the CCO is alerted)",
            pointer="/fills")
    if "entered_at" in order and _time(order["entered_at"]) < intent_at - skew:
        return _refused(
            "intent-after-entry",
            f"order {order['id']} was entered at {order['entered_at']}, "
            f"{_minutes(intent_at - _time(order['entered_at']))} before the ledger recorded its "
            f"pre-trade statement ({intent_at.isoformat().replace('+00:00', 'Z')})",
            hint="a statement recorded late needs an explicit exception: fairalloc order statement "
                 "TRADE --late-reason CODE --memo TEXT (the CCO is alerted)",
            pointer="/order/entered_at")
    return None


def _check_not_future(times: Iterable[tuple[str, str]], now: str, skew: dt.timedelta) -> None:
    for pointer, text in times:
        if _time(text) > _time(now) + skew:
            raise _refused("execution-in-future",
                           f"{text} is later than the ledger's clock ({now}) by more than the "
                           f"{_minutes(skew)} the policy allows for clock skew", pointer=pointer)


def _check_accounts(doc: dict[str, Any]) -> None:
    """Account ids are names too: a look-alike or invisible character is refused, and two ids
    that normalise alike are one account named twice."""
    seen: dict[str, int] = {}
    for index, account in enumerate(doc["statement"]["accounts"]):
        name = _name(account["account"], "account-id-invalid", fold_case=False)
        if name in seen:
            raise _refused("account-id-duplicate",
                           f"accounts {seen[name]} and {index} are the same account "
                           f"{escape(name)} once normalised",
                           pointer=f"/statement/accounts/{index}/account")
        seen[name] = index


def record_statement(ledger: Ledger, actor: Actor, trade: Trade, *, late_reason: str | None = None,
                     late_memo: str | None = None) -> Event:
    """Record the pre-trade allocation statement of ``trade`` (its intent), before the order.

    Refused if the trade document's entry or executions already precede the ledger's clock
    (``intent-after-entry``, ``intent-after-execution``) — unless recorded as a late statement
    with a reason code and a memo, which the statement carries and which alerts the CCO."""
    prepared = _statement_payload(trade, late_reason, late_memo)
    with ledger.write() as session:
        return _record_statement(session, actor, trade, prepared)


def record_statement_and_enter(ledger: Ledger, actor: Actor, trade: Trade,
                               policy_id: str | None = None) -> tuple[Event, Event]:
    """Record the statement and enter the order of a document that carries both at once (a FIX
    NewOrderSingle with its NoAllocs), in one transaction: both are recorded, or neither — an
    order the hard stop refuses leaves no statement behind it. Each step checks exactly what
    :func:`record_statement` and :func:`enter_order` check; repeating it answers with the events
    recorded the first time."""
    prepared = _statement_payload(trade, None, None)
    with ledger.write() as session:
        statement = _record_statement(session, actor, trade, prepared)
        return statement, _enter_order(session, actor, trade, policy_id, prepared[0])


def _statement_payload(trade: Trade, late_reason: str | None, late_memo: str | None) -> tuple[
        dict[str, Any], dict[str, Any], dict[str, str] | None]:
    """What a statement records, checked before the ledger is touched (it reads nothing there):
    the trade's document, the statement's payload and its late-statement exception, if any."""
    doc = _trade_json(trade)
    order = doc["order"]
    _check_accounts(doc)
    late: dict[str, str] | None = None
    if late_reason is not None:
        if late_reason not in LATE_STATEMENT_REASONS:
            raise _refused("late-reason-unknown", f"{late_reason!r} is not a late-statement reason "
                           f"code ({', '.join(sorted(LATE_STATEMENT_REASONS))})")
        if not (late_memo or "").strip():
            raise _refused("late-memo-required", "a late statement needs a written memo saying why")
        late = {"reason_code": late_reason, "memo": late_memo or ""}
    intent = {k: order[k] for k in ("id", "symbol", "side", "quantity", "trade_date")}
    payload: dict[str, Any] = {"statement": doc["statement"], "order": intent}
    if late is not None:
        payload["late"] = late
    return doc, payload, late


def _record_statement(session: Session, actor: Actor, trade: Trade, prepared: tuple[
        dict[str, Any], dict[str, Any], dict[str, str] | None]) -> Event:
    doc, payload, late = prepared
    order = doc["order"]
    _require(session, actor, "statement")
    held = session.by_keys(f"statement:{order['id']}", f"order:{order['id']}")
    existing = held.get(f"statement:{order['id']}")
    if existing is not None:
        if existing.data() == payload:
            return existing
        raise _conflict("statement-already-recorded",
                        f"a different pre-trade statement for order {order['id']} is already "
                        "recorded", hint="a recorded statement cannot be replaced; use a new order id")
    if f"order:{order['id']}" in held:
        raise _conflict("order-already-entered",
                        f"order {order['id']} is already entered: intent must precede the order")
    skew = _skew_for(session, trade)
    if late is None:
        refusal = _late_intent(doc, _time(session.now), skew)
        if refusal is not None:
            raise refusal
    new = [NewEvent("statement.recorded", actor, payload, order_id=order["id"],
                    key=f"statement:{order['id']}")]
    if late is not None:
        new.append(NewEvent("alert.raised", actor, {
            "alert": "late-statement", "for": "cco", "reason_code": late["reason_code"],
            "message": f"the pre-trade statement of order {order['id']} was recorded late "
                       f"({late['reason_code']}): {late['memo']}"},
            order_id=order["id"], topic="alerts"))
    return session.append(*new)[0]


def _check_coverage(statement_event: Event, doc: dict[str, Any]) -> None:
    """The hard stop's content check: the recorded intent covers this order entirely."""
    recorded = statement_event.data()
    order = doc["order"]
    intended = {_name(a["account"], "account-id-invalid", fold_case=False): quantity(a["intended"])
                for a in recorded["statement"]["accounts"]}
    for field_name in ("symbol", "side", "trade_date"):
        if recorded["order"][field_name] != order[field_name]:
            raise _refused(
                "pretrade-statement-mismatch",
                f"the order's {field_name} {order[field_name]!r} differs from the recorded "
                f"statement's {recorded['order'][field_name]!r}",
                pointer=f"/order/{field_name}",
            )
    for index, account in enumerate(doc["statement"]["accounts"]):
        name = _name(account["account"], "account-id-invalid", fold_case=False)
        if name not in intended:
            raise _refused("pretrade-account-not-covered",
                           f"account {escape(name)} is not in the recorded pre-trade statement",
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


def enter_order(ledger: Ledger, actor: Actor, trade: Trade, policy_id: str | None = None) -> Event:
    """Enter the block order — only after a statement covering it was recorded (hard stop), and
    only if its claimed entry time is not earlier than that statement (by the ledger's clock)."""
    doc = _trade_json(trade)
    with ledger.write() as session:
        return _enter_order(session, actor, trade, policy_id, doc)


def _enter_order(session: Session, actor: Actor, trade: Trade, policy_id: str | None,
                 doc: dict[str, Any]) -> Event:
    """Enter ``trade`` (``doc``: its document, made before the write)."""
    order_id = doc["order"]["id"]
    _require(session, actor, "enter")
    held = session.by_keys(f"statement:{order_id}", f"order:{order_id}")
    statement = held.get(f"statement:{order_id}")
    if statement is None:
        raise _refused(
            "pretrade-statement-missing",
            f"order {order_id} cannot be entered: no pre-trade allocation statement was recorded",
            hint="record the intended allocation first: fairalloc order statement TRADE.json",
        )
    _check_coverage(statement, doc)
    policy = governing_policy(session, trade, policy_id)
    payload = {"order": doc["order"], "policy": policy.ref()}
    existing = held.get(f"order:{order_id}")
    if existing is not None:
        if existing.data() == payload:
            return existing
        raise _conflict("order-already-entered",
                        f"order {order_id} is already entered with other content")
    skew = clock_skew(load_recorded_policy(policy))
    if "late" not in statement.data():
        refusal = _late_intent({"order": doc["order"]}, _time(statement.recorded_at), skew)
        if refusal is not None:
            raise refusal
    _check_not_future([("/order/entered_at", doc["order"]["entered_at"])], session.now, skew)
    (event,) = session.append(
        NewEvent("order.entered", actor, payload, order_id=order_id, key=f"order:{order_id}")
    )
    return event


@dataclass(frozen=True, slots=True)
class FillsResult:
    """What a fill step recorded: new fill events, fill ids already held, and the re-allocation
    (with its alert) when the order was already allocated."""

    recorded: list[Event]
    already: list[str]
    reallocation: AllocationRecord | None = None


def _entered_record(session: Session, order_id: str) -> OrderRecord:
    record = order_record(session, order_id)
    if record.entered is None:
        raise _refused("order-not-entered", f"order {order_id} has not been entered; fills "
                       "can only be recorded against an entered order")
    return record


def _governing(session: Session, record: OrderRecord) -> Policy:
    assert record.entered is not None
    ref = record.entered.data()["policy"]
    key = f"policy:{ref['id']}@{ref['version']}"
    published = session.remember(key, lambda: session.by_key(key))
    if published is None:
        raise _conflict("policy-not-published", f"policy {ref['id']}@{ref['version']} is not in the ledger")
    return load_recorded_policy(PolicyRecord.of(published))


def _check_fill_times(session: Session, record: OrderRecord, fills: list[dict[str, Any]],
                      skew: dt.timedelta) -> None:
    assert record.statement is not None and record.entered is not None
    if "late" not in record.statement.data():
        refusal = _late_intent({"order": {"id": record.order_id}, "fills": fills},
                               _time(record.statement.recorded_at), skew)
        if refusal is not None:
            raise refusal
    _check_not_future([(f"/fills/{f['id']}", f["executed_at"]) for f in fills], session.now, skew)


def _check_filled_total(record: OrderRecord, fills: list[dict[str, Any]]) -> None:
    assert record.entered is not None
    filled = sum((quantity(f["quantity"]) for f in fills), Decimal(0))
    ordered = quantity(record.entered.data()["order"]["quantity"])
    if filled > ordered:
        raise _refused("fills-exceed-order",
                       f"fills of order {record.order_id} would total {quantity_json(filled)}, more "
                       f"than the {quantity_json(ordered)} ordered")


def _validated_fill(record: OrderRecord, fill: dict[str, Any]) -> dict[str, Any]:
    """``fill`` checked against the trade contract, as the contract writes it."""
    doc = record.trade_document()
    doc["fills"] = [fill]
    checked: dict[str, Any] = load_trade(doc, file=f"fill of {record.order_id}").to_json()["fills"][0]
    return checked


def record_fills(ledger: Ledger, actor: Actor, order_id: str, fills: list[dict[str, Any]]) -> FillsResult:
    """Record executions. A fill id already recorded with the same content is skipped; with
    different content it is refused. The filled total may never exceed the order. A fill arriving
    after the allocation re-allocates the order (reason ``late-fill``) and alerts the CCO."""
    with ledger.write() as session:
        _require(session, actor, "fill")
        record = _entered_record(session, order_id)
        known = {f.data()["fill"]["id"]: f.data()["fill"] for f in record.fills
                 if f.kind in ("fill.recorded", "fill.corrected")}
        new: list[NewEvent] = []
        added: list[dict[str, Any]] = []
        already: list[str] = []
        for fill in fills:
            if fill["id"] in known:
                if known[fill["id"]] != fill:
                    raise _conflict("fill-conflict",
                                    f"fill {fill['id']} of order {order_id} is already recorded "
                                    "with different content", hint="a broker's correction refers to "
                                    "the original: fairalloc order fill correct ORDER FILL_ID ...")
                already.append(fill["id"])
                continue
            known[fill["id"]] = fill
            added.append(fill)
            new.append(NewEvent("fill.recorded", actor, {"fill": fill}, order_id=order_id,
                                key=f"fill:{order_id}:{fill['id']}"))
        if not new:  # a retry: the re-allocation the first time caused, if it caused one
            caused = [e for e in record.fills if e.kind == "fill.recorded" and e.data()["fill"]["id"] in already]
            redo = next((r for e in caused if (r := _reallocation_caused_by(record, e)) is not None), None)
            return FillsResult([], already, redo)
        policy = _governing(session, record)
        _check_fill_times(session, record, added, clock_skew(policy))
        _check_filled_total(record, record.effective_fills() + added)
        recorded = session.append(*new)
        reallocation = (_reallocate(session, actor, order_id, "late-fill", recorded[-1])
                        if record.allocation is not None else None)
        return FillsResult(recorded, already, reallocation)


@dataclass(frozen=True, slots=True)
class FillChange:
    """A correction or bust as recorded, and the re-allocation it caused (if allocated)."""

    event: Event
    reallocation: AllocationRecord | None


def correct_fill(ledger: Ledger, actor: Actor, order_id: str, fill_id: str,
                 fill: dict[str, Any]) -> FillChange:
    """Record a broker's correction (FIX ExecType G) of fill ``fill_id``: ``fill`` is the
    corrected execution under its own id (the correction's ExecID). The original stays in the
    record; the correction replaces it in what is allocated. Repeating the same correction
    answers with the same event; another correction under the same id is refused."""
    with ledger.write() as session:
        _require(session, actor, "fill")
        record = _entered_record(session, order_id)
        checked = _validated_fill(record, fill)
        payload = {"corrects": fill_id, "fill": checked}
        existing = session.by_key(f"fill:{order_id}:{checked['id']}")
        if existing is not None:
            if existing.kind == "fill.corrected" and existing.data() == payload:
                return FillChange(existing, _reallocation_caused_by(record, existing))
            raise _conflict("fill-conflict", f"fill id {checked['id']} of order {order_id} is "
                            "already recorded with different content")
        in_force = record.effective_fills()
        if fill_id not in {f["id"] for f in in_force}:
            raise _refused("fill-not-in-force", f"order {order_id} has no fill {fill_id!r} in force "
                           "to correct (never recorded, or already corrected or busted)")
        policy = _governing(session, record)
        _check_fill_times(session, record, [checked], clock_skew(policy))
        _check_filled_total(record, [checked if f["id"] == fill_id else f for f in in_force])
        (event,) = session.append(NewEvent("fill.corrected", actor, payload, order_id=order_id,
                                           key=f"fill:{order_id}:{checked['id']}"))
        return FillChange(event, _reallocate(session, actor, order_id, "fill-corrected", event))


def bust_fill(ledger: Ledger, actor: Actor, order_id: str, fill_id: str,
              bust_id: str | None = None) -> FillChange:
    """Record a broker's bust (FIX ExecType H) of fill ``fill_id``, under the bust's own id
    (default ``bust:FILL_ID``). The original stays in the record; it is no longer allocated."""
    key_id = bust_id or f"bust:{fill_id}"
    payload = {"busts": fill_id, "id": key_id}
    with ledger.write() as session:
        _require(session, actor, "fill")
        record = _entered_record(session, order_id)
        existing = session.by_key(f"fill:{order_id}:{key_id}")
        if existing is not None:
            if existing.kind == "fill.busted" and existing.data() == payload:
                return FillChange(existing, _reallocation_caused_by(record, existing))
            raise _conflict("fill-conflict", f"fill id {key_id} of order {order_id} is already "
                            "recorded with different content")
        if fill_id not in {f["id"] for f in record.effective_fills()}:
            raise _refused("fill-not-in-force", f"order {order_id} has no fill {fill_id!r} in force "
                           "to bust (never recorded, or already corrected or busted)")
        (event,) = session.append(NewEvent("fill.busted", actor, payload, order_id=order_id,
                                           key=f"fill:{order_id}:{key_id}"))
        return FillChange(event, _reallocate(session, actor, order_id, "fill-busted", event))


@dataclass(frozen=True, slots=True)
class AllocationRecord:
    event: Event
    document: dict[str, Any]
    late: bool
    deadline: str | None
    rotation_before: dict[str, Any] | None
    rotation_after: dict[str, Any] | None

    @staticmethod
    def of(event: Event) -> AllocationRecord:
        data = event.data()
        return AllocationRecord(event, data["document"], data["late"], data["deadline"],
                                data["rotation_before"], data["rotation_after"])


@dataclass(frozen=True, slots=True)
class Computation:
    """An allocation computed from recorded inputs, and which recorded events it read."""

    document: dict[str, Any]
    rotation_before: dict[str, Any] | None
    rotation_after: dict[str, Any] | None
    policy: Policy
    inputs: tuple[int, ...]


def compute_allocation(session: Session, record: OrderRecord, before_seq: int | None,
                       rotation_at: int | None = None) -> Computation:
    """Run the engine on the recorded inputs.

    ``before_seq`` limits fills to what was recorded before that event (replay); None means
    everything recorded so far. The rotation position is the one the ledger held before
    ``rotation_at`` (default ``before_seq``): a re-allocation starts from the position its order's
    first allocation started from, and moves no later order's position. The fairness state is read
    the same way: the ``fairness`` entry of the document of the last allocation in the order's
    fairness group (topic ``fairness:GROUP``), so it is persisted, versioned and replayed with the
    allocations that produced it."""
    assert record.entered is not None
    policy = _governing(session, record)
    trade = load_trade(record.trade_document(before_seq), file=f"ledger:{record.order_id}")
    group = policy.rotation_group(trade)
    before: dict[str, Any] | None = None
    rotation_seq = 0
    if group is not None:
        previous = session.query(topic=f"rotation:{group}",
                                 before_seq=rotation_at if rotation_at is not None else before_seq)
        if previous:
            before = previous[-1].data()["rotation_after"]
            rotation_seq = previous[-1].seq
    state = RotationState.from_json(before, file="ledger") if before is not None else None
    fairness, fairness_seq = _fairness_state(session, policy.fairness_group(trade),
                                             rotation_at if rotation_at is not None else before_seq)
    result = allocate(policy, trade, rotation=state, file=f"ledger:{record.order_id}", fairness=fairness)
    document: dict[str, Any] = result.document()
    after = result.rotation_after.to_json() if result.rotation_after is not None else None
    inputs = (max(e.seq for e in (record.statement, record.entered, *record.fills) if e is not None),
              rotation_seq, fairness_seq)
    return Computation(document, before, after, policy, inputs)


def _fairness_state(session: Session, group: str | None,
                    before_seq: int | None) -> tuple[FairnessState | None, int]:
    """The fairness group's state after its last allocation before ``before_seq`` (and that
    event's seq; 0 with none): a group's first order starts with every account at 0."""
    if group is None:
        return None, 0
    previous = session.query(topic=f"fairness:{group}", before_seq=before_seq)
    if not previous:
        return None, 0
    return FairnessState.from_json(previous[-1].data()["document"]["fairness"]["after"], file="ledger"), previous[-1].seq


def _topic(document: dict[str, Any], rotation_after: dict[str, Any] | None) -> str | None:
    """The group an allocation advances: its rotation group, or its fairness group (a policy
    with a ``fairness`` section has no rotation, so an allocation advances at most one)."""
    if rotation_after is not None:
        return f"rotation:{rotation_after['group']}"
    if "fairness" in document:
        return f"fairness:{document['fairness']['after']['group']}"
    return None


def _lateness(session: Session, record: OrderRecord, policy: Policy) -> tuple[bool, str | None]:
    assert record.entered is not None
    trade_date = dt.date.fromisoformat(record.entered.data()["order"]["trade_date"])
    deadline = policy.allocation_deadline(trade_date)
    late = deadline is not None and _time(session.now) > deadline
    return late, deadline.isoformat() if deadline else None


def allocate_order(ledger: Ledger, actor: Actor, order_id: str) -> AllocationRecord:
    """Allocate the order's fills under its governing policy; advance its rotation atomically.

    The engine runs before the write lock is taken, on a snapshot; under the lock the step checks
    that none of the inputs it read (the order's events, the rotation position) has moved, and
    computes again only if one has. Allocating an allocated order again answers with the
    allocation recorded the first time."""
    return allocate_order_with_inputs(ledger, actor, order_id)[0]


def allocate_order_with_inputs(ledger: Ledger, actor: Actor,
                               order_id: str) -> tuple[AllocationRecord, dict[str, Any]]:
    """:func:`allocate_order`, and the trade document the allocation was computed from (the
    order, its statement and the fills in force before the allocation), read in the same
    transaction."""
    allocation, record = _allocate_order(ledger, actor, order_id)
    return allocation, record.trade_document(before_seq=allocation.event.seq)


def _allocate_order(ledger: Ledger, actor: Actor, order_id: str) -> tuple[AllocationRecord, OrderRecord]:
    with ledger.read() as snapshot:
        record = order_record(snapshot, order_id)
        early = (compute_allocation(snapshot, record, None)
                 if record.entered is not None and record.allocation is None and record.effective_fills()
                 else None)
    with ledger.write() as session:
        _require(session, actor, "allocate")
        record = order_record(session, order_id)
        if record.entered is None:
            raise _refused("order-not-entered", f"order {order_id} has not been entered")
        if record.allocation is not None:
            return AllocationRecord.of(record.allocation), record
        if not record.effective_fills():
            raise _refused("order-not-filled", f"order {order_id} has no recorded fill to allocate")
        computed = early
        if computed is None or _inputs(session, record, computed) != computed.inputs:
            computed = compute_allocation(session, record, None)
        late, cutoff = _lateness(session, record, computed.policy)
        after = computed.rotation_after
        topic = _topic(computed.document, after)
        payload = {"document": computed.document, "rotation_before": computed.rotation_before,
                   "rotation_after": after, "late": late, "deadline": cutoff}
        new = [NewEvent("order.allocated", actor, payload, order_id=order_id,
                        key=f"allocation:{order_id}", topic=topic)]
        if late:
            new.append(NewEvent("alert.raised", actor, {
                "alert": "late-allocation", "for": "cco",
                "message": f"order {order_id} allocated at {session.now}, after the policy's "
                           f"cut-off {cutoff}"},
                order_id=order_id, topic="alerts"))
        return AllocationRecord.of(session.append(*new)[0]), record


def _inputs(session: Session, record: OrderRecord, computed: Computation) -> tuple[int, ...]:
    """What :attr:`Computation.inputs` would be now, without running the engine again."""
    latest = max(e.seq for e in (record.statement, record.entered, *record.fills) if e is not None)
    group = computed.rotation_after["group"] if computed.rotation_after else None
    rotation = session.latest(f"rotation:{group}") if group is not None else None
    fairness = computed.document.get("fairness")
    fair = session.latest(f"fairness:{fairness['after']['group']}") if fairness is not None else None
    return (latest, rotation.seq if rotation is not None else 0, fair.seq if fair is not None else 0)


_REALLOCATION_REASONS = {
    "late-fill": "a fill arrived after the allocation",
    "fill-corrected": "the broker corrected a fill",
    "fill-busted": "the broker busted a fill",
}


def _reallocate(session: Session, actor: Actor, order_id: str, reason: str,
                cause: Event) -> AllocationRecord | None:
    """After a fill change on an allocated order: allocate again with the fills now in force,
    from the rotation position the first allocation started at, and alert the CCO."""
    record = order_record(session, order_id)
    if record.allocation is None:
        return None
    document, before, after = reallocation_inputs(session, record, None)
    late, cutoff = _lateness(session, record, _governing(session, record))
    current = record.current_allocation
    assert current is not None
    payload = {"document": document, "rotation_before": before, "rotation_after": after,
               "late": late, "deadline": cutoff, "reason": reason, "cause": cause.seq,
               "replaces": current.seq}
    event, _alert = session.append(
        NewEvent("order.reallocated", actor, payload, order_id=order_id,
                 key=f"reallocation:{order_id}:{cause.seq}"),
        NewEvent("alert.raised", actor, {
            "alert": "reallocation", "for": "cco", "reason": reason,
            "message": f"order {order_id} was re-allocated: {_REALLOCATION_REASONS[reason]} "
                       f"(event {cause.seq}); the earlier allocation (event {current.seq}) stays "
                       "in the record"},
            order_id=order_id, topic="alerts"),
    )
    return AllocationRecord.of(event)


def reallocation_inputs(session: Session, record: OrderRecord, before_seq: int | None) -> tuple[
        dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    """(document, rotation before, rotation after) of a re-allocation with the fills in force
    before ``before_seq``, from the rotation position the first allocation started at. With no
    fill left in force (every one busted) nothing is allocated: an empty allocation document."""
    assert record.allocation is not None
    if not record.effective_fills(before_seq):
        return ({"order_id": record.order_id, "filled": 0, "allocations": []},
                record.allocation.data()["rotation_before"], None)
    computed = compute_allocation(session, record, before_seq, rotation_at=record.allocation.seq)
    return computed.document, computed.rotation_before, computed.rotation_after


def _reallocation_caused_by(record: OrderRecord, cause: Event) -> AllocationRecord | None:
    for event in record.reallocations:
        if event.data()["cause"] == cause.seq:
            return AllocationRecord.of(event)
    return None


def seed_rotation(ledger: Ledger, actor: Actor, state: RotationState) -> Event:
    """Record where a rotation group stands before the ledger's first allocation in it — for a
    firm whose rotation began in another system. Refused once the group has allocations: moving
    a running rotation would let someone choose who goes first."""
    group = state.group
    payload = {"rotation_after": state.to_json()}
    with ledger.write() as session:
        _require(session, actor, "seed-rotation")
        existing = session.by_key(f"rotation-seed:{group}")
        if existing is not None and existing.data() == payload:
            return existing
        if session.latest(f"rotation:{group}") is not None:
            raise _conflict("rotation-already-started",
                            f"rotation group {group!r} already has a recorded position",
                            hint="a running rotation only advances through allocations")
        (event,) = session.append(
            NewEvent("rotation.seeded", actor, payload,
                     key=f"rotation-seed:{group}", topic=f"rotation:{group}")
        )
        return event


def request_override(ledger: Ledger, actor: Actor, order_id: str, quantities: dict[str, Decimal],
                     reason_code: str, memo: str) -> Event:
    """Ask to replace the engine's allocation; pending until a CCO reviews it (alert raised).
    The same request again while it is pending answers with the same event."""
    with ledger.write() as session:
        _require(session, actor, "override")
        record = order_record(session, order_id)
        current = record.current_allocation
        if current is None:
            raise _refused("order-not-allocated", f"order {order_id} has no allocation to override")
        assert record.entered is not None
        ref = record.entered.data()["policy"]
        allowed = _governing(session, record).reason_codes
        if reason_code not in allowed:
            raise _refused("override-reason-not-allowed",
                           f"reason code {reason_code!r} is not one the policy "
                           f"{ref['id']}@{ref['version']} allows"
                           + (f" ({', '.join(sorted(allowed))})" if allowed else " (it allows none)"))
        if not memo.strip():
            raise _refused("override-memo-required",
                           "an override needs a written memo explaining the objective reason")
        document = current.data()["document"]
        assert record.statement is not None  # an allocated order always has its statement
        accounts = {_name(a["account"], "account-id-invalid", fold_case=False): a["account"]
                    for a in record.statement.data()["statement"]["accounts"]}
        named: dict[str, Decimal] = {}
        for account, amount in quantities.items():
            key = _name(account, "account-id-invalid", fold_case=False)
            if key not in accounts:
                raise _refused("override-unknown-account",
                               f"account {escape(account)} is not in the order's pre-trade statement")
            named[accounts[key]] = amount
        if any(q < 0 for q in named.values()):
            raise _refused("override-negative", "override quantities cannot be negative")
        total = sum(named.values(), Decimal(0))
        filled = quantity(document["filled"])
        if total != filled:
            raise _refused("override-total-mismatch",
                           f"the override allocates {quantity_json(total)} but "
                           f"{quantity_json(filled)} were filled")
        # Every statement account is named, those left out with 0, so the record is explicit.
        complete = {account: named.get(account, Decimal(0)) for account in accounts.values()}
        payload = {"allocations": [{"account": a, "quantity": quantity_json(q)}
                                   for a, q in sorted(complete.items())],
                   "reason_code": reason_code, "memo": memo, "status": "pending-review",
                   "replaces": current.seq}
        pending = record.pending_override()
        if pending is not None:
            if pending.data() == payload:
                return pending
            raise _conflict("override-pending", f"order {order_id} already has an override "
                            "pending review", hint="a CCO must review it first")
        event, _alert = session.append(
            NewEvent("override.requested", actor, payload, order_id=order_id, topic="overrides"),
            NewEvent("alert.raised", actor, {
                "alert": "override-pending-review", "for": "cco",
                "message": f"{actor.name} overrode the allocation of order {order_id} ({reason_code})"},
                order_id=order_id, topic="alerts"),
        )
        return event


def review_override(ledger: Ledger, actor: Actor, order_id: str, approve: bool, memo: str) -> Event:
    """A CCO's decision on the pending override; never by the user who requested it. The same
    decision again by the same reviewer answers with the recorded review."""
    decision = "approved" if approve else "rejected"
    with ledger.write() as session:
        _require(session, actor, "review")
        record = order_record(session, order_id)
        pending = record.pending_override()
        if pending is None:
            last = record.reviews[-1] if record.reviews else None
            if (last is not None and last.actor == actor.name
                    and last.data()["decision"] == decision and last.data()["memo"] == memo):
                return last
            raise _refused("override-not-pending", f"order {order_id} has no override pending review")
        if pending.actor == actor.name:
            raise _refused("review-by-requester",
                           f"{escape(actor.name)} requested this override and cannot also review it",
                           hint="another user with the cco role must review it")
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
