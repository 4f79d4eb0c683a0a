"""``ledger verify``: re-check, from the database alone, everything the record claims.

Verification is a list of independent checks; each reports located findings with stable codes
(tested one by one), and a ledger is intact only when none reports anything. The checks that
read the chain walk it once, together, as a stream (:class:`RowCheck`); the others read the
database's own set-up (:data:`SESSION_CHECKS`, or any passed as ``extra``).

**The hash chain** (:class:`ChainCheck`) — the first break:

* ``ledger-empty`` — the ledger holds no event at all: not even its bootstrap; an emptied or
  never-initialised ledger proves nothing and is not "intact";
* ``ledger-event-missing`` — a gap in the event numbers: an event was deleted;
* ``ledger-events-reordered`` — an event links to one recorded after it: events were swapped;
* ``ledger-chain-broken`` — an event's link is not the previous event's hash: the previous event
  was rewritten with a recomputed (forged) hash, or this link itself was altered;
* ``ledger-event-edited`` — an event's content no longer matches its hash;
* ``ledger-hash-forged`` — an event's stored hash was replaced while its content, and the next
  event's link, still agree with the original hash;
* ``ledger-time-reversed`` — recorded times go backwards, which the writer never does;
* ``ledger-anchor-mismatch`` — the chain does not reach a head recorded elsewhere (``--anchor``):
  the tail was cut, or the whole chain rewritten.

**Authority** (:class:`AuthorityCheck`) — walking the chain, every event's actor held the role
its step needs at that point:

* ``authority-no-bootstrap`` — the first event is not the bootstrap grant of the first admin;
* ``authority-bootstrap-late`` — a bootstrap grant anywhere but as the first event;
* ``authority-role-missing`` — the actor did not hold a role the step needs (for a grant: admin)
  when the event was recorded;
* ``authority-service-missing`` — a token subject's event vouched for by a service that did not
  hold the ``service`` role then;
* ``authority-self-review`` — an override reviewed by the user who requested it;
* ``authority-last-admin-removed`` — a revocation left the ledger without an admin;
* ``authority-unexpected-event`` — an event of a kind the workflow never records, or an alert
  not raised by the step recorded with it.

**Append-only protection** (:func:`check_protection`): on SQLite the triggers are present and
exactly as created; on PostgreSQL they are present, enabled and run the unmodified functions,
and the connected role neither owns the table nor is a superuser:

* ``ledger-trigger-missing``, ``ledger-trigger-modified``, ``ledger-trigger-disabled``,
  ``ledger-trigger-unexpected`` (a trigger the ledger did not create), ``ledger-connected-as-owner``.

A chain is only as trustworthy as its head: someone able to drop the triggers and rewrite every
hash from an edited event onwards produces a self-consistent chain. A head kept outside the
database (``ledger head``, an export's ``head.json``, a signed checkpoint) exposes that.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fairalloc.errors import Diagnostic, Location
from fairalloc.ledger.chain import GENESIS, Event, recompute
from fairalloc.ledger.schema import POSTGRES_FUNCTIONS, POSTGRES_TRIGGERS, SQLITE_TRIGGERS
from fairalloc.ledger.store import Session, identity_of
from fairalloc.ledger.workflow import KIND_ACTION, MAY

MAX_FINDINGS = 100
"""Authority findings reported in full; beyond this the check reports how many more there are."""


@dataclass(frozen=True, slots=True)
class Anchor:
    """A chain head recorded outside the ledger: event number and its hash."""

    seq: int
    hash: str


@dataclass(slots=True)
class VerifyReport:
    """What a verification walked and what it found (empty ``findings`` means intact)."""

    events: int
    head: Event | None
    findings: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def _at(seq: int) -> Location:
    return Location(pointer=f"/events/{seq}")


class RowCheck(Protocol):
    """A check that reads the chain once, in order, batch by batch (raw rows in :class:`Event`
    column order): every such check sees each batch before the next one is fetched."""

    def feed(self, rows: Sequence[tuple[Any, ...]]) -> None: ...

    def findings(self) -> list[Diagnostic]: ...


SessionCheck = Callable[[Session], list[Diagnostic]]
"""A check that reads the database on its own (its set-up, or something kept outside it)."""


class ChainCheck:
    """The hash chain: report the first break, then check the anchor.

    The rows are consumed as a stream: an intact chain is checked in constant memory, however
    long. Only after a break is the rest kept, to tell a reordering from a rewrite."""

    def __init__(self, anchor: Anchor | None = None) -> None:
        self.anchor = anchor
        self.count = 0
        self.prev_hash = GENESIS
        self.prev_time = ""
        self.last: tuple[Any, ...] | None = None
        self.anchored: str | None = None
        self.broken: tuple[Any, ...] | None = None
        self.rest: list[tuple[Any, ...]] = []

    def feed(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if self.broken is not None:
            self.rest.extend(rows)
            return
        count, prev_hash, prev_time = self.count, self.prev_hash, self.prev_time
        anchor_seq = self.anchor.seq if self.anchor is not None else None
        for index, raw in enumerate(rows):
            count += 1
            # The hash first: a field that is not text (a hand-stored BLOB) then fails to match
            # before anything compares it.
            if raw[0] == count and raw[8] == prev_hash and recompute(raw) == raw[9] and raw[1] >= prev_time:
                if raw[0] == anchor_seq:
                    self.anchored = raw[9]
                prev_hash, prev_time = raw[9], raw[1]
                continue
            self.broken = raw
            self.rest.extend(rows[index + 1:])
            break
        self.count, self.prev_hash, self.prev_time = count, prev_hash, prev_time
        if self.broken is None and rows:
            self.last = rows[-1]

    @property
    def events(self) -> int:
        return self.count + len(self.rest)

    @property
    def head(self) -> Event | None:
        tail = self.rest[-1] if self.rest else self.broken if self.broken is not None else self.last
        return Event(*tail) if tail is not None else None

    def findings(self) -> list[Diagnostic]:
        if self.broken is not None:
            return [_diagnose(Event(*self.broken), self.count, self.prev_hash, self.prev_time,
                              self.rest)]
        if self.count == 0:
            return [Diagnostic("ledger-empty", "the ledger holds no event, not even its bootstrap: "
                               "an empty chain proves nothing", _at(1),
                               hint="a ledger begins with fairalloc ledger init; an emptied one "
                                    "was truncated or replaced")]
        anchor = self.anchor
        if anchor is not None and self.anchored != anchor.hash:
            seen = "is missing" if self.anchored is None else f"has hash {self.anchored}"
            return [Diagnostic(
                "ledger-anchor-mismatch",
                f"the anchored head {anchor.seq}:{anchor.hash} is not in the chain: "
                f"event {anchor.seq} {seen}",
                _at(anchor.seq),
                hint="the tail was removed or the chain rewritten after the anchor was taken",
            )]
        return []


def check_chain(rows: Iterable[tuple[Any, ...]], anchor: Anchor | None = None) -> VerifyReport:
    """The hash chain of ``rows`` alone (events or raw rows in event column order, by ``seq``)."""
    chain = ChainCheck(anchor)
    chain.feed(list(rows))
    return VerifyReport(events=chain.events, head=chain.head, findings=chain.findings())


class AuthorityCheck:
    """Re-derive, walking the chain, that every event's actor held the role its step needs.

    Roles are replayed from the grants and revocations in chain order, so "held" means held at
    that point: a grant made by someone who was not an admin then is itself a finding, and gives
    its grantee nothing. A token subject's event also needs its vouching service to hold the
    ``service`` role. Payloads are parsed only for grants, revocations and override events."""

    _MISSING = "?"

    def __init__(self) -> None:
        self.roles: dict[str, set[str]] = {}
        self.requesters: dict[int, str] = {}
        self.prev: tuple[Any, ...] | None = None
        self.found: list[Diagnostic] = []
        self.more = 0
        self.seen_any = False

    def _report(self, code: str, seq: int, message: str) -> None:
        if len(self.found) < MAX_FINDINGS:
            self.found.append(Diagnostic(code, message, _at(seq)))
        else:
            self.more += 1

    def _holds(self, user: str | None, allowed: frozenset[str]) -> bool:
        held = self.roles.get(user or "")
        return held is not None and not allowed.isdisjoint(held)

    def feed(self, rows: Sequence[tuple[Any, ...]]) -> None:
        step = self._step
        for raw in rows:
            step(raw)

    def _step(self, raw: tuple[Any, ...]) -> None:
        seq, recorded_at, actor, kind = raw[0], raw[1], raw[2], raw[3]
        first = not self.seen_any
        self.seen_any = True
        prev, self.prev = self.prev, raw
        action = KIND_ACTION.get(kind, self._MISSING)
        if action == self._MISSING:
            self._report("authority-unexpected-event", seq,
                         f"event {seq} is of kind {kind!r}, which the workflow never records")
            return
        if action is None:
            if prev is None or prev[1] != recorded_at or prev[2] != actor:
                self._report("authority-unexpected-event", seq,
                             f"alert event {seq} was not raised by the step recorded with it")
            return
        if kind in ("user.role_granted", "user.role_revoked"):
            self._grant(raw, first)
            return
        if first:
            self._report("authority-no-bootstrap", seq,
                         f"the first event ({kind}) is not the bootstrap grant of the first admin")
        allowed = MAY[action]
        held = self.roles.get(actor)
        # The common case, cheaply: not a token event, and the actor holds a role it needs.
        if held is None or allowed.isdisjoint(held) or (len(raw) > 10 and raw[10] == "token"):
            self._check_roles(raw, allowed, action)
        if kind == "override.requested":
            self.requesters[seq] = actor
        elif kind == "override.reviewed":
            requested = json.loads(raw[7]).get("override_seq")
            if self.requesters.get(requested) == actor:
                self._report("authority-self-review", seq,
                             f"event {seq}: {actor} reviewed the override it requested (event "
                             f"{requested})")

    def _check_roles(self, raw: tuple[Any, ...], allowed: frozenset[str], action: str) -> bool:
        seq, actor, kind = raw[0], raw[2], raw[3]
        ok = True
        if len(raw) > 10 and raw[10] == "token" and not self._holds(raw[11], frozenset({"service"})):
            self._report("authority-service-missing", seq,
                         f"event {seq} ({kind}) for token subject {actor} was vouched for by "
                         f"{raw[11]}, which did not hold the service role then")
            ok = False
        if not self._holds(actor, allowed):
            self._report("authority-role-missing", seq,
                         f"event {seq} ({kind}) by {actor}: it did not hold any of the roles "
                         f"{', '.join(sorted(allowed))} needed to {action} at that point")
            ok = False
        return ok

    def _grant(self, raw: tuple[Any, ...], first: bool) -> None:
        seq, actor, kind = raw[0], raw[2], raw[3]
        data = json.loads(raw[7])
        user, role = data.get("user"), data.get("role")
        # Ledgers begun before the bootstrap was marked start with the admin granting itself.
        bootstrap = data.get("bootstrap") is True or (first and role == "admin" and user == actor
                                                       and kind == "user.role_granted")
        if bootstrap:
            if not first:
                self._report("authority-bootstrap-late", seq,
                             f"event {seq} is a bootstrap grant of admin to {user}, but only a new "
                             "ledger's first event may be one")
                return
        else:
            if first:
                self._report("authority-no-bootstrap", seq,
                             f"the first event ({kind}) is not the bootstrap grant of the first admin")
            if not self._check_roles(raw, MAY["grant"], "grant"):
                return  # an unauthorised grant gives its grantee nothing
        held = self.roles.setdefault(str(user), set())
        if kind == "user.role_granted":
            held.add(str(role))
            return
        held.discard(str(role))
        if role == "admin" and not any("admin" in roles for roles in self.roles.values()):
            self._report("authority-last-admin-removed", seq,
                         f"event {seq} revoked admin from {user}, the last admin")

    def findings(self) -> list[Diagnostic]:
        if self.more:
            return [*self.found, Diagnostic("authority-role-missing",
                                            f"... and {self.more} more authority findings")]
        return self.found


def _protection(code: str, name: str, message: str) -> Diagnostic:
    return Diagnostic(code, message, Location(pointer=f"/protection/{name}"))


def check_protection(session: Session) -> list[Diagnostic]:
    """The append-only protection is in place (see the module's documentation)."""
    if session.conn.dialect.name == "postgresql":
        return _postgres_protection(session)
    rows = session.conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'").all()
    held = {str(name): str(sql) for name, sql in rows}
    found: list[Diagnostic] = []
    for name, sql in SQLITE_TRIGGERS.items():
        if name not in held:
            found.append(_protection("ledger-trigger-missing", name,
                                     f"the append-only trigger {name} is missing: it was dropped"))
        elif held[name] != sql:
            found.append(_protection("ledger-trigger-modified", name,
                                     f"the append-only trigger {name} is not the one the ledger "
                                     "created: it was replaced"))
    for name in sorted(set(held) - set(SQLITE_TRIGGERS)):
        found.append(_protection("ledger-trigger-unexpected", name,
                                 f"the events table has a trigger the ledger did not create: {name}"))
    return found


def _postgres_protection(session: Session) -> list[Diagnostic]:
    rows = session.conn.exec_driver_sql(
        "SELECT t.tgname::text, t.tgenabled::text, p.proname::text, p.prosrc, "
        "pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
        "WHERE t.tgrelid = 'events'::regclass AND NOT t.tgisinternal").all()
    held = {str(r[0]): (str(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows}
    found: list[Diagnostic] = []
    for name, (timing, function) in POSTGRES_TRIGGERS.items():
        if name not in held:
            found.append(_protection("ledger-trigger-missing", name,
                                     f"the append-only trigger {name} is missing: it was dropped"))
            continue
        enabled, proname, body, definition = held[name]
        if enabled not in ("O", "A"):
            found.append(_protection("ledger-trigger-disabled", name,
                                     f"the append-only trigger {name} is disabled "
                                     "(ALTER TABLE events DISABLE TRIGGER)"))
        expected = f"CREATE TRIGGER {name} {timing} EXECUTE FUNCTION {function}()"
        shown = definition.replace(" ON public.events ", " ON events ")
        if proname != function or body != POSTGRES_FUNCTIONS[function] or shown != expected:
            found.append(_protection("ledger-trigger-modified", name,
                                     f"the append-only trigger {name} no longer runs the function "
                                     f"{function} as the ledger created it: it was replaced"))
    for name in sorted(set(held) - set(POSTGRES_TRIGGERS)):
        found.append(_protection("ledger-trigger-unexpected", name,
                                 f"the events table has a trigger the ledger did not create: {name}"))
    identity = identity_of(session.conn)
    if identity.privileged and not session.test_database:
        found.append(_protection(
            "ledger-connected-as-owner", "role",
            f"connected as {identity.name}, which owns the events table or is a superuser: it "
            "can disable or replace the triggers, so the database cannot hold it to append-only"))
    return found


SESSION_CHECKS: tuple[SessionCheck, ...] = (check_protection,)
"""The checks of the database's set-up that every verification runs after the chain walk."""


def _diagnose(row: Event, expected: int, prev_hash: str, prev_time: str,
              rest: list[tuple[Any, ...]]) -> Diagnostic:
    """Name what broke at ``row``, the first event that failed a check; ``rest`` follows it."""
    if row.seq != expected:
        return Diagnostic(
            "ledger-event-missing",
            f"event {expected} is missing (the next event recorded is {row.seq}): "
            "events were deleted",
            _at(expected),
        )
    if row.prev_hash != prev_hash:
        later = next((r[0] for r in rest if r[9] == row.prev_hash), None)
        if later is not None:
            return Diagnostic(
                "ledger-events-reordered",
                f"event {row.seq} links to event {later}, recorded after it: "
                "events were reordered",
                _at(row.seq),
            )
        return Diagnostic(
            "ledger-chain-broken",
            f"event {row.seq} does not link to event {row.seq - 1}: event {row.seq - 1} "
            "was rewritten with a new hash, or this link was altered",
            _at(row.seq),
        )
    computed = recompute(row)
    if computed != row.hash:
        if rest and rest[0][8] == computed:
            return Diagnostic(
                "ledger-hash-forged",
                f"event {row.seq}'s stored hash was replaced; its content and the next "
                "event's link still agree with the original",
                _at(row.seq),
            )
        return Diagnostic(
            "ledger-event-edited",
            f"event {row.seq} ({row.kind}) does not match its hash: it was edited "
            "after it was recorded",
            _at(row.seq),
        )
    return Diagnostic(
        "ledger-time-reversed",
        f"event {row.seq} is recorded at {row.recorded_at}, before event "
        f"{row.seq - 1} ({prev_time})",
        _at(row.seq),
    )


def verify(session: Session, anchor: Anchor | None = None, *,
           extra: Sequence[SessionCheck] = ()) -> VerifyReport:
    """Verify the whole ledger as one consistent snapshot: the chain and authority walks (one
    pass), then :data:`SESSION_CHECKS` and any ``extra`` checks, in that order."""
    chain = ChainCheck(anchor)
    walks: tuple[RowCheck, ...] = (chain, AuthorityCheck())
    for rows in session.stream_batches():
        for walk in walks:
            walk.feed(rows)
    report = VerifyReport(events=chain.events, head=chain.head)
    for walk in walks:
        report.findings += walk.findings()
    for check in (*SESSION_CHECKS, *extra):
        report.findings += check(session)
    return report
